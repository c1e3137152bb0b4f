"""Significance and calibration over a time range, read from Postgres: what `GET
/stats/significance`, `GET /stats/calibration`, GraphQL and the Compare page
show (and the int8 twin beside fp32), each from one query (newest first, sampled as the Compare page's other
figures) and one computation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from ..db.queries import calibration_bins, correctness_patterns, int8_beside_fp32
from ..stats.calibration import reliability
from ..stats.paired import matrix, pair_test, significance, verdict


def range_significance(cur, start: datetime, end: datetime, models: list[str], label=lambda name: name) -> dict:
    """`significance` of the range, each pair with its verdict in words (models named by `label`)."""
    result = significance(models, correctness_patterns(cur, start, end, models))
    for pair in result["pairs"]:
        pair["verdict"] = verdict(pair, label)
    return result


def range_calibration(cur, start: datetime, end: datetime) -> dict[str, dict]:
    """Per model: its reliability bins and expected calibration error on the labelled images of the range."""
    return {
        model: reliability(b["counts"], b["confidence_sums"], b["correct_sums"])
        for model, b in calibration_bins(cur, start, end).items()
    }


def range_int8(cur, start: datetime, end: datetime, label=lambda name: name) -> list[dict]:
    """Per model version the int8 twin answered in the range: agreement with fp32,
    p50 forward times, and fp32 against int8 on the labelled images (McNemar's test,
    a paired bootstrap interval, and the verdict in words: the pair is named
    "<label> fp32" and "<label> int8")."""
    rows = int8_beside_fp32(cur, start, end)
    for row in rows:
        both, b, c = row["both_right"], row["fp32_only"], row["int8_only"]
        patterns: dict[tuple[bool, ...], int] = {
            (True, True): both,
            (True, False): b,
            (False, True): c,
            (False, False): row["labelled"] - both - b - c,
        }
        correct = matrix(patterns, 2)
        pair = pair_test(("fp32", "int8"), correct[:, 0], correct[:, 1]).as_dict()
        pair["verdict"] = verdict(pair, functools.partial(_twin, label, row["model_name"]))
        row["test"] = pair
    return rows


def _twin(label: Callable[[str], str], model: str, precision: str) -> str:
    """A twin named for a verdict: "<model's label> fp32" or "... int8"."""
    return f"{label(model)} {precision}"
