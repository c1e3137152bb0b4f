"""Drift: is the stream still like what the models learned from?

Two kinds of detector, both cheap enough to run every minute on a laptop:

- **Output drift**, per model: ADWIN (river) over the live stream of each model's
  top-1 confidence, and over "all three agree" (1 or 0). ADWIN keeps a window whose
  halves it compares; when their means differ by more than its bound allows (delta),
  it drops the old half and says so. Confidence falling is the usual sign that the
  images changed; a rise after a retraining is a change too, and is reported as one.
- **Input drift**: per-image pixel statistics (brightness, contrast, saturation,
  sharpness, mean R, G, B; computed by ingest on the 64 px copy the models see)
  of the newest live images against the same statistics of the training set, a
  two-sample Kolmogorov-Smirnov test per statistic, Bonferroni across them.

Pure functions and picklable state: the drift job (triptych.lifecycle.drift) keeps
the state in Postgres between its runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from .pixels import FEATURES

ADWIN_DELTA = 0.002  # river's default: about one false alarm per 500 independent checks of a stable window
KS_ALPHA = 0.01  # family-wise, across the features
MIN_WINDOW = 100  # live images before the input test says anything
MIN_FOR_ADWIN = 30  # answers before a stream's estimate is shown


@dataclass(frozen=True)
class FeatureTest:
    feature: str
    statistic: float
    p_value: float
    reference_median: float
    live_median: float


@dataclass(frozen=True)
class InputDrift:
    n_reference: int
    n_live: int
    tests: list[FeatureTest]
    drifted: bool
    alpha: float

    @property
    def worst(self) -> FeatureTest | None:
        return min(self.tests, key=lambda t: t.p_value) if self.tests else None


def input_drift(
    reference: list[dict[str, Any]], live: list[dict[str, Any]], alpha: float = KS_ALPHA, min_live: int = MIN_WINDOW
) -> InputDrift:
    """KS test per feature of the live images' statistics against the reference's."""
    tests = []
    if reference and len(live) >= min_live:
        for name in FEATURES:
            ref = np.array([r[name] for r in reference if name in r], float)
            now = np.array([r[name] for r in live if name in r], float)
            if len(ref) and len(now):
                result = stats.ks_2samp(ref, now)
                tests.append(
                    FeatureTest(
                        name,
                        float(result.statistic),
                        float(result.pvalue),
                        float(np.median(ref)),
                        float(np.median(now)),
                    )
                )
    drifted = any(t.p_value < alpha / len(FEATURES) for t in tests)
    return InputDrift(len(reference), len(live), tests, drifted, alpha)


@dataclass
class StreamWatch:
    """ADWIN over one live stream of numbers; `detections` are the positions where it
    found a change, with the mean it had until then (the estimate shows the new level)."""

    delta: float = ADWIN_DELTA
    seen: int = 0
    detections: list[dict[str, Any]] = field(default_factory=list)
    _adwin: Any = None  # river's ADWIN, made on first use (river has no type hints)

    def update(self, values: Iterable[float]) -> list[dict[str, Any]]:
        """Feed values in order; the changes found among them."""
        from river.drift import ADWIN  # river is imported where a detector runs, not by every stats reader

        if self._adwin is None:
            self._adwin = ADWIN(delta=self.delta)  # type: ignore[no-untyped-call]
        found = []
        for value in values:
            before = self._adwin.estimation
            self._adwin.update(float(value))
            self.seen += 1
            if self._adwin.drift_detected:
                found.append({"at": self.seen, "mean_before": before})
        self.detections += found
        del self.detections[:-20]  # the newest few are what anyone reads
        return found

    @property
    def estimate(self) -> float | None:
        return self._adwin.estimation if self._adwin is not None and self._adwin.width >= MIN_FOR_ADWIN else None

    @property
    def width(self) -> int:
        return int(self._adwin.width) if self._adwin is not None else 0
