"""Does a model's 90 % confidence mean 90 %? Top-1 confidence binned into equal
widths, each bin's observed accuracy beside its mean confidence (a reliability
diagram), and the expected calibration error: the bins' gaps between the two,
weighted by how many answers each holds. The same binning as torchmetrics'
`MulticlassCalibrationError(norm="l1")`, which checks it in the tests."""

from __future__ import annotations

import numpy as np

BINS = 10


def bin_index(confidence: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Bin k holds [k/bins, (k+1)/bins); a confidence of exactly 1 goes in the last."""
    return np.minimum((np.asarray(confidence) * bins).astype(int), bins - 1)


def reliability(counts: np.ndarray, confidence_sums: np.ndarray, correct_sums: np.ndarray) -> dict:
    """From per-bin totals (answers, summed confidence, right answers): the bins,
    with mean confidence and accuracy (None where empty), and the ECE."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    bins = len(counts)
    rows, ece = [], 0.0
    for k in range(bins):
        n = int(counts[k])
        confidence = float(confidence_sums[k] / n) if n else None
        accuracy = float(correct_sums[k] / n) if n else None
        if n:
            ece += n / total * abs(accuracy - confidence)
        rows.append(
            {"lower": k / bins, "upper": (k + 1) / bins, "count": n, "confidence": confidence, "accuracy": accuracy}
        )
    return {"n": int(total), "ece": float(ece) if total else None, "bins": rows}


def from_samples(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> dict:
    """`reliability` of individual answers (top-1 confidence, right or not)."""
    index = bin_index(confidence, bins)
    return reliability(
        np.bincount(index, minlength=bins),
        np.bincount(index, np.asarray(confidence, float), bins),
        np.bincount(index, np.asarray(correct, float), bins),
    )
