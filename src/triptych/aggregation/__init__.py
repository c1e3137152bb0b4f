"""Turning the models' answers into comparisons and rolling metrics."""
