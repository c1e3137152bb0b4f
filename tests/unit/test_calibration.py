"""Calibration figures (triptych.stats.calibration) against torchmetrics'
MulticlassCalibrationError, the test oracle, on planted answers: well
calibrated, over-confident, and with confidences of exactly 0 and 1 at the edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from triptych.stats.calibration import bin_index, from_samples

CLASSES = 10


def torchmetrics_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Probabilities whose top-1 is `confidence` on class 0 (the rest shared out),
    targets 0 when right, else 1."""
    n = len(confidence)
    probs = np.empty((n, CLASSES))
    probs[:] = ((1 - confidence) / (CLASSES - 1))[:, None]
    probs[:, 0] = confidence
    target = np.where(correct, 0, 1)
    metric = MulticlassCalibrationError(num_classes=CLASSES, n_bins=bins, norm="l1")
    return float(metric(torch.tensor(probs, dtype=torch.float64), torch.tensor(target)))


@pytest.mark.parametrize("overconfidence", [0.0, 0.15, 0.3])
def test_ece_matches_torchmetrics(overconfidence):
    rng = np.random.default_rng(int(overconfidence * 100))
    confidence = rng.uniform(0.15, 1.0, 5000)  # above 1/CLASSES: the top-1 stays class 0
    correct = rng.random(5000) < np.clip(confidence - overconfidence, 0, 1)
    ours = from_samples(confidence, correct)
    assert ours["ece"] == pytest.approx(torchmetrics_ece(confidence, correct), abs=1e-6)
    assert ours["n"] == 5000 and sum(b["count"] for b in ours["bins"]) == 5000
    if overconfidence:
        assert ours["ece"] == pytest.approx(overconfidence, abs=0.03)
    else:
        assert ours["ece"] < 0.03


def test_bins_take_their_lower_edge_and_one_goes_in_the_last():
    assert bin_index(np.array([0.0, 0.0999, 0.1, 0.95, 1.0])).tolist() == [0, 0, 1, 9, 9]
    result = from_samples(np.array([0.2, 1.0, 1.0]), np.array([True, True, False]))
    last = result["bins"][-1]
    assert (last["count"], last["confidence"], last["accuracy"]) == (2, 1.0, 0.5)
    assert result["bins"][3]["count"] == 0 and result["bins"][3]["accuracy"] is None
    assert from_samples(np.array([]), np.array([]))["ece"] is None
