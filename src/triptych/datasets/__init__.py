"""Labelled image data sets: a generated one that works offline, and loaders for
CIFAR-10 and image folders, all yielding (name, image bytes or array, label)."""
