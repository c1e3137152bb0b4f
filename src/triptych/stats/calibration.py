"""Does a model's 90 % confidence mean 90 %? Top-1 confidence binned into equal
widths, each bin's observed accuracy beside its mean confidence (a reliability
diagram), and the expected calibration error: the bins' gaps between the two,
weighted by how many answers each holds. The same binning as torchmetrics'
`MulticlassCalibrationError(norm="l1")`, which checks it in the tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

BINS = 10


def bin_index(confidence: NDArray[Any], bins: int = BINS) -> NDArray[Any]:
    """Bin k holds [k/bins, (k+1)/bins); a confidence of exactly 1 goes in the last."""
    return np.minimum((np.asarray(confidence) * bins).astype(int), bins - 1)


def reliability(counts: ArrayLike, confidence_sums: ArrayLike, correct_sums: ArrayLike) -> dict[str, Any]:
    """From per-bin totals (answers, summed confidence, right answers): the bins,
    with mean confidence and accuracy (None where empty), and the ECE."""
    totals = np.asarray(counts, dtype=float)
    confidences, corrects = np.asarray(confidence_sums, dtype=float), np.asarray(correct_sums, dtype=float)
    total = totals.sum()
    bins = len(totals)
    rows: list[dict[str, Any]] = []
    ece = 0.0
    for k in range(bins):
        n = int(totals[k])
        confidence = float(confidences[k] / n) if n else None
        accuracy = float(corrects[k] / n) if n else None
        if confidence is not None and accuracy is not None:
            ece += n / total * abs(accuracy - confidence)
        rows.append(
            {"lower": k / bins, "upper": (k + 1) / bins, "count": n, "confidence": confidence, "accuracy": accuracy}
        )
    return {"n": int(total), "ece": float(ece) if total else None, "bins": rows}


def from_samples(confidence: NDArray[Any], correct: NDArray[Any], bins: int = BINS) -> dict[str, Any]:
    """`reliability` of individual answers (top-1 confidence, right or not)."""
    index = bin_index(confidence, bins)
    return reliability(
        np.bincount(index, minlength=bins),
        np.bincount(index, np.asarray(confidence, float), bins),
        np.bincount(index, np.asarray(correct, float), bins),
    )
