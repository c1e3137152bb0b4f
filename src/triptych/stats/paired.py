"""Is one model really more accurate than another on the same labelled images?

Every model answered every image, so the comparison is paired: only the images
where exactly one of two models is right say anything about which is better
(b: only the first right, c: only the second). McNemar's exact test asks whether
b and c differ more than a fair coin would make them; Cochran's Q asks the same
of three or more models at once; a paired bootstrap gives the interval of the
accuracy difference. The input is the count of each right/wrong pattern across
the models, which is all these statistics depend on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from statsmodels.stats.contingency_tables import cochrans_q, mcnemar

# A pattern: for each model in order, was it right on the image.
Patterns = Mapping[tuple[bool, ...], int]

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class PairTest:
    models: tuple[str, str]
    n: int  # labelled images both answered
    b: int  # only the first model right
    c: int  # only the second model right
    accuracy: tuple[float, float]
    accuracy_difference: float  # first minus second, in [-1, 1]
    p_value: float  # McNemar's exact test
    ci_low: float
    ci_high: float
    more_labels_needed: int | None  # at these rates, about how many more would give p < alpha; None: no gap seen

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: an undefined figure (no image) is None, never NaN."""

        def defined(x: float | None) -> float | None:
            return None if isinstance(x, float) and math.isnan(x) else x

        return {
            "models": list(self.models),
            "n": self.n,
            "b": self.b,
            "c": self.c,
            "accuracy": [defined(a) for a in self.accuracy],
            "accuracy_difference": defined(self.accuracy_difference),
            "p_value": self.p_value,
            "ci_low": defined(self.ci_low),
            "ci_high": defined(self.ci_high),
            "more_labels_needed": self.more_labels_needed,
        }


def matrix(patterns: Patterns, width: int) -> NDArray[Any]:
    """The (images x models) 0/1 matrix the patterns stand for, rows in pattern order."""
    rows = [np.tile(np.array(p, dtype=np.int8), (count, 1)) for p, count in sorted(patterns.items()) if count]
    return np.concatenate(rows) if rows else np.zeros((0, width), dtype=np.int8)


def mcnemar_p(b: int, c: int) -> float:
    """McNemar's exact test: two-sided binomial on the discordant pairs."""
    if b + c == 0:
        return 1.0
    return float(mcnemar([[0, b], [c, 0]], exact=True).pvalue)


def bootstrap_interval(first: NDArray[Any], second: NDArray[Any], seed: int = 0) -> tuple[float, float]:
    """The paired bootstrap's percentile interval of accuracy(first) - accuracy(second)."""
    if len(first) < 2 or np.array_equal(first, second):
        diff = float(np.mean(first) - np.mean(second)) if len(first) else 0.0
        return diff, diff  # no variation to resample
    result = stats.bootstrap(
        (first, second),
        lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def more_labels_needed(b: int, c: int, n: int, alpha: float = 1 - CONFIDENCE, limit: int = 10_000_000) -> int | None:
    """Roughly how many more labelled images would make McNemar's p fall below
    `alpha`, if b/n and c/n held as they are; 0 when it already does, None when
    no gap is seen (b == c) to extrapolate."""
    if b == c or n == 0:
        return None
    if mcnemar_p(b, c) < alpha:
        return 0
    total = n
    while total < limit:  # doubling, then a bisection: a dozen exact tests at most
        total *= 2
        if mcnemar_p(round(b * total / n), round(c * total / n)) < alpha:
            break
    else:
        return None
    low, high = total // 2, total
    while high - low > max(1, high // 100):
        mid = (low + high) // 2
        if mcnemar_p(round(b * mid / n), round(c * mid / n)) < alpha:
            high = mid
        else:
            low = mid
    return high - n


def pair_test(models: tuple[str, str], first: NDArray[Any], second: NDArray[Any], seed: int = 0) -> PairTest:
    n = len(first)
    b = int(np.sum((first == 1) & (second == 0)))
    c = int(np.sum((first == 0) & (second == 1)))
    accuracy = (float(first.mean()), float(second.mean())) if n else (math.nan, math.nan)
    low, high = bootstrap_interval(first, second, seed) if n else (math.nan, math.nan)
    return PairTest(
        models=models,
        n=n,
        b=b,
        c=c,
        accuracy=accuracy,
        accuracy_difference=(b - c) / n if n else math.nan,
        p_value=mcnemar_p(b, c),
        ci_low=low,
        ci_high=high,
        more_labels_needed=more_labels_needed(b, c, n),
    )


def cochran(correct: NDArray[Any]) -> tuple[float, float] | None:
    """Cochran's Q and its p-value over (images x models) correctness; None when it
    is undefined (fewer than two images or models, or no image splits them)."""
    if correct.shape[0] < 2 or correct.shape[1] < 2:
        return None
    totals = correct.sum(axis=1)
    if not np.any((totals > 0) & (totals < correct.shape[1])):
        return None
    result = cochrans_q(correct)
    return float(result.statistic), float(result.pvalue)


def significance(models: list[str], patterns: Patterns) -> dict[str, Any]:
    """Every pair's McNemar test and bootstrap interval, and Cochran's Q over all,
    from the right/wrong patterns of the labelled images every model answered."""
    correct = matrix(patterns, len(models))
    pairs = [
        pair_test((models[i], models[j]), correct[:, i], correct[:, j], seed=i * 31 + j).as_dict()
        for i, j in combinations(range(len(models)), 2)
    ]
    q = cochran(correct)
    return {
        "models": models,
        "n": int(correct.shape[0]),
        "pairs": pairs,
        "cochran_q": None if q is None else {"q": q[0], "p_value": q[1], "df": len(models) - 1},
    }


def verdict(pair: dict[str, Any], label: Callable[[str], str] = str, alpha: float = 1 - CONFIDENCE) -> str:
    """The pair's result in words, the better model first when there is one."""
    first, second = (label(m) for m in pair["models"])
    if pair["n"] == 0:
        return f"{first} and {second}: no labelled image both answered in this range."
    diff, low, high = pair["accuracy_difference"], pair["ci_low"], pair["ci_high"]
    if diff < 0:  # the better one first
        first, second, diff, low, high = second, first, -diff, -high, -low
    figures = (
        f"{100 * diff:+.1f} points (95 % CI {100 * low:.1f} to {100 * high:.1f}), "
        f"{format_p(pair['p_value'])} over {pair['n']:,} labelled images"
    )
    if pair["p_value"] < alpha:
        return f"{first} is more accurate than {second}: {figures}."
    if pair["more_labels_needed"] is None:
        return (
            f"No difference between {first} and {second}: on the {pair['b'] + pair['c']:,} labelled images "
            f"where only one was right, each was right as often ({pair['n']:,} labelled in all)."
        )
    return (
        f"Not enough evidence that {first} is more accurate than {second}: {figures}. "
        f"About {_round(pair['more_labels_needed'])} more labels would settle a gap this size."
    )


def format_p(value: float) -> str:
    return "p < 0.0001" if value < 1e-4 else f"p = {value:.2g}" if value < 0.01 else f"p = {value:.2f}"


def _round(count: int) -> str:
    """1,234 -> "1,200": an estimate, said as one."""
    digits = max(0, len(str(count)) - 2)
    return f"{round(count, -digits):,}"
