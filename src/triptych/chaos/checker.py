"""The checker: the history of a chaos run against the pipeline's promises. Pure:
it is given what was put, what PostgreSQL holds, and the faults, and says whether
every image put was registered once and compared once with one prediction per
champion model, whether any comparison mixed versions of a model, whether a dead
letter is left unexplained, and how long each heal took to bring comparisons back.

The verdict names the first image that broke a rule and the faults active when it
was put: where to start looking, in the replayed run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .schedule import Fault, active_at, overlapping


@dataclass(frozen=True)
class ImageRecord:
    """What PostgreSQL holds for one image put (by its object key)."""

    key: str
    rows: int  # image rows for the key (1: registered once)
    comparisons: int
    predictions: dict[str, int]  # champion model -> predictions of it
    versions: dict[str, int]  # model -> distinct versions among its predictions
    compared_at: float | None  # seconds after the run's start


@dataclass
class Verdict:
    images: int
    compared_once: int
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    mixed_versions: list[str] = field(default_factory=list)
    unexplained_dead_letters: int = 0
    faults: int = 0
    overlapping: int = 0
    recovery_s: list[float] = field(default_factory=list)
    first_broken: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not (self.lost or self.doubled or self.mixed_versions or self.unexplained_dead_letters)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "images": self.images,
            "compared_once": self.compared_once,
            "lost": len(self.lost),
            "doubled": len(self.doubled),
            "mixed_versions": len(self.mixed_versions),
            "unexplained_dead_letters": self.unexplained_dead_letters,
            "faults": self.faults,
            "overlapping": self.overlapping,
            "recovery_p99_s": percentile(self.recovery_s, 99),
            "recovery_max_s": max(self.recovery_s, default=None),
            "first_broken": self.first_broken,
            "lost_keys": self.lost[:20],
            "doubled_keys": self.doubled[:20],
        }


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def recovery_times(faults: list[Fault], compared_at: list[float], end_s: float) -> list[float]:
    """Per healed fault: seconds from its heal to the first comparison after it
    (the run's end when none came, which is a recovery that never happened)."""
    times = sorted(compared_at)
    out = []
    for fault in faults:
        after = next((t for t in times if t >= fault.heal_s), None)
        out.append(round((after if after is not None else end_s) - fault.heal_s, 1))
    return out


def check(
    put: dict[str, float],
    records: dict[str, ImageRecord],
    models: list[str],
    faults: list[Fault],
    dead_letters: int,
    explained_dead_letters: int,
    end_s: float,
) -> Verdict:
    """`put`: object key -> seconds after the start it was acknowledged by the bucket."""
    verdict = Verdict(images=len(put), compared_once=0, faults=len(faults), overlapping=len(overlapping(faults)))
    broken: list[tuple[float, str, str]] = []
    for key, at in sorted(put.items(), key=lambda kv: kv[1]):
        record = records.get(key)
        if record is None or record.rows == 0 or record.comparisons == 0:
            verdict.lost.append(key)
            broken.append((at, key, "lost: never compared"))
            continue
        once = record.rows == 1 and record.comparisons == 1 and all(record.predictions.get(m) == 1 for m in models)
        if once:
            verdict.compared_once += 1
        else:
            verdict.doubled.append(key)
            broken.append(
                (
                    at,
                    key,
                    f"not once: {record.rows} rows, {record.comparisons} comparisons, predictions {record.predictions}",
                )
            )
        if any(n > 1 for n in record.versions.values()):
            verdict.mixed_versions.append(key)
            broken.append((at, key, f"versions mixed: {record.versions}"))
    verdict.unexplained_dead_letters = max(0, dead_letters - explained_dead_letters)
    verdict.recovery_s = recovery_times(
        faults, [r.compared_at for r in records.values() if r.compared_at is not None], end_s
    )
    if broken:
        at, key, why = min(broken)
        verdict.first_broken = {
            "key": key,
            "put_at_s": round(at, 1),
            "why": why,
            "faults_active": [f.as_dict() for f in active_at(faults, at, grace_s=30.0)],
        }
    return verdict
