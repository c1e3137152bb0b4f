"""Significance and calibration over a time range, read from Postgres: what `GET
/stats/significance`, `GET /stats/calibration`, GraphQL and the Compare page
show, each from one query (newest first, sampled as the Compare page's other
figures) and one computation."""

from __future__ import annotations

from datetime import datetime

from ..db.queries import calibration_bins, correctness_patterns
from .calibration import reliability
from .paired import significance, verdict


def range_significance(cur, start: datetime, end: datetime, models: list[str], label=lambda name: name) -> dict:
    """`significance` of the range, each pair with its verdict in words (models named by `label`)."""
    result = significance(models, correctness_patterns(cur, start, end, models))
    for pair in result["pairs"]:
        pair["verdict"] = verdict(pair, label)
    return result


def range_calibration(cur, start: datetime, end: datetime) -> dict[str, dict]:
    """Per model: its reliability bins and expected calibration error on the labelled images of the range."""
    return {model: reliability(b["counts"], b["confidence_sums"], b["correct_sums"])
            for model, b in calibration_bins(cur, start, end).items()}
