"""A seeded fault schedule (Jepsen's nemesis, planned ahead): which fault, on which
host, when, for how long. Pure: the same seed and hosts give the same schedule, so
a run that broke a rule can be replayed (`triptych chaos --replay FILE`).

The rules of the draw:
- at most `max_overlap` faults at once, never two on one host;
- a fault may start while an earlier one heals or has just healed (recovery under way);
- no fault starts in the last `quiet_s` of the run: everything is healed before the drain.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

# Each kind of fault, and the hosts it may hit (by role).
KINDS: dict[str, str] = {
    "worker-host": "worker",  # every process of a worker -9, as if the machine died; `up` again to heal
    "replica": "worker",  # one replica -9; its supervisor restarts it
    "worker-supervisor": "worker",  # a worker's supervisor -9 (its replicas die with it); `up` again to heal
    "worker-slow-link": "worker",  # a worker's link slowed and lossy; restored to heal
    "broker": "kafka",  # a broker -9; `up` again to heal
    "broker-link": "kafka",  # a broker cut off the network; the link back up to heal
    "minio-node": "minio",  # a MinIO node -9; `up` again to heal
    "postgres": "postgres",  # PostgreSQL -9; `up` again to heal
}
# Faults whose harm is over at once (the supervisor heals them): drawn with a short "duration".
INSTANT = {"replica"}


@dataclass(frozen=True)
class Fault:
    at_s: float  # seconds after the run's start
    duration_s: float  # until it is healed
    kind: str
    host: str

    @property
    def heal_s(self) -> float:
        return self.at_s + self.duration_s

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(
    seed: int,
    minutes: float,
    hosts_by_role: dict[str, list[str]],
    kinds: list[str] | None = None,
    max_overlap: int = 2,
    gap_s: tuple[float, float] = (5.0, 30.0),
    duration_s: tuple[float, float] = (10.0, 45.0),
    quiet_s: float = 30.0,
) -> list[Fault]:
    """The faults of a run of `minutes`, drawn from `seed`."""
    rng = random.Random(seed)
    end = minutes * 60 - quiet_s
    candidates = [k for k in (kinds or list(KINDS)) if hosts_by_role.get(KINDS[k])]
    if not candidates:
        raise ValueError("no host can take any of these faults")
    faults: list[Fault] = []
    at = rng.uniform(*gap_s)
    while at < end:
        active = [f for f in faults if f.at_s <= at < f.heal_s]
        busy_hosts = {f.host for f in active}
        if len(active) < max_overlap:
            kind = rng.choice(candidates)
            free = [h for h in hosts_by_role[KINDS[kind]] if h not in busy_hosts]
            if free:
                length = 1.0 if kind in INSTANT else rng.uniform(*duration_s)
                faults.append(Fault(round(at, 1), round(min(length, max(1.0, end - at)), 1), kind, rng.choice(free)))
        # Sometimes the next fault comes right on the heels of one (recovery under way).
        at += rng.uniform(0.5, 3.0) if rng.random() < 0.25 else rng.uniform(*gap_s)
    return faults


def overlapping(faults: list[Fault]) -> list[int]:
    """The indexes of the faults active at the same time as another."""
    return sorted(
        {
            i
            for i, a in enumerate(faults)
            for j, b in enumerate(faults)
            if i != j and a.at_s < b.heal_s and b.at_s < a.heal_s
        }
    )


def active_at(faults: list[Fault], at_s: float, grace_s: float = 0.0) -> list[Fault]:
    """The faults in force at `at_s` (or healed less than `grace_s` before it)."""
    return [f for f in faults if f.at_s <= at_s < f.heal_s + grace_s]


def from_dicts(rows: list[dict[str, Any]]) -> list[Fault]:
    return [Fault(float(r["at_s"]), float(r["duration_s"]), str(r["kind"]), str(r["host"])) for r in rows]
