"""How many replicas a function should run, from its backlog and how busy its
replicas are: the decisions of the local runner's scaler, kept free of I/O.

The rules follow Kubernetes' HPA and KEDA's Kafka scaler, so that a function
behaves on a laptop as it will on a cluster:

- **Backlog** (KEDA's `lagThreshold`): enough replicas that each has at most
  `lag_per_replica` messages waiting, `ceil(lag / lag_per_replica)`.
- **Utilisation** (the HPA's ratio): `ceil(current * busy / target_busy)`, where
  `busy` is the share of wall time the replicas spent in their handler.
- The larger of the two, clamped to `[min, max]`, and `max` to the partitions of
  the function's topic: a replica beyond them would get no partition.
- **Up at once, by at most double or +4** a step (the HPA's default scale-up
  policy), and only while the host has cores to spare (`max_host_busy`: on a
  saturated host a replica more only shares the same cores, as Kubernetes' scheduler
  would leave it Pending); **down only to the highest recommendation of the stabilisation window**
  (the HPA's `stabilizationWindowSeconds`), so a lull between bursts does not
  stop replicas that the next burst needs again.
- **To zero** only when `min` is 0, nothing waits and the replicas were idle for
  `idle_to_zero_s`; **from zero** at once when a message or a request waits.
- **Several hosts**: each host's scaler reads the same lag and takes its share,
  `lag / hosts`, and at most `ceil(ceiling / hosts)` replicas, so the hosts together
  stay within max and the partitions. Min is each host's own: every live worker
  keeps a warm replica, and a dead host's partitions move to one at once.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bounds:
    min_replicas: int
    max_replicas: int
    partitions: int | None = None  # of the topic a Kafka-triggered function consumes

    def __post_init__(self):
        if self.min_replicas < 0 or self.max_replicas < max(1, self.min_replicas):
            raise ValueError(
                f"replica bounds must be 0 <= min <= max and max >= 1 (got {self.min_replicas}, {self.max_replicas})"
            )

    @property
    def ceiling(self) -> int:
        """The most replicas that can do work: max, or the topic's partitions if fewer."""
        return min(self.max_replicas, self.partitions) if self.partitions else self.max_replicas

    def ceiling_per_host(self, hosts: int) -> int:
        """This host's part of the ceiling when `hosts` workers share the function."""
        return max(1, math.ceil(self.ceiling / max(1, hosts)))


@dataclass(frozen=True)
class Policy:
    lag_per_replica: int = 100
    target_busy: float = 0.7
    stabilisation_s: float = 60.0
    idle_to_zero_s: float = 120.0
    max_step_factor: float = 2.0
    max_step_add: int = 4
    # A reversal this soon after the last change counts as a flap (what the window prevents).
    flap_window_s: float = 120.0
    # No scale-up while the host's cores are this busy (waking from zero is never held): a replica
    # more would only share the same cores and spend them loading (Kubernetes leaves such a pod Pending).
    max_host_busy: float = 0.9


@dataclass(frozen=True)
class Observation:
    at: float  # seconds, monotonic
    current: int  # replicas asked for now
    lag: int | None  # messages waiting in the function's consumer group; None: an HTTP/cron function
    busy: float  # share of wall time its replicas spent in the handler, 0..1 (summed over replicas / current)
    pending_requests: int = 0  # requests held at zero, a cron tick due soon, a challenger to judge
    hosts: int = 1  # live workers sharing the function (each reads the same lag)
    host_busy: float = 0.0  # share of the host's cores in use since the last tick, 0..1

    @property
    def waiting(self) -> int:
        """What waits for this host's replicas: its share of the lag, and what is held here."""
        return math.ceil((self.lag or 0) / max(1, self.hosts)) + self.pending_requests


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str

    def changes(self, current: int) -> bool:
        return self.desired != current


@dataclass
class Scaler:
    """One function's scaler: feed it an observation every tick, get the replicas
    to run and why. Keeps the window of recent recommendations and when it was last busy."""

    bounds: Bounds
    policy: Policy = field(default_factory=Policy)
    _window: deque = field(default_factory=deque)  # (at, recommended)
    _last_active: float | None = None
    _last_current: int | None = None
    flaps: int = 0  # direction reversals within flap_window_s of the last change
    _last_direction: int = 0
    _last_change: float | None = None

    def recommend(self, obs: Observation) -> tuple[int, str]:
        """What this observation alone asks for, before stabilisation."""
        policy, bounds = self.policy, self.bounds
        waiting = obs.waiting
        if obs.current == 0:
            return (
                (max(1, bounds.min_replicas), f"woken: {waiting} waiting") if waiting else (bounds.min_replicas, "idle")
            )
        by_lag = math.ceil(waiting / policy.lag_per_replica) if obs.lag is not None or waiting else 0
        by_busy = math.ceil(obs.current * obs.busy / policy.target_busy) if obs.busy > 0 else 0
        wanted = max(by_lag, by_busy)
        if by_lag < by_busy:
            reason = f"busy {obs.busy:.0%}"
        else:
            reason = f"lag {obs.lag}" if obs.lag is not None else f"{waiting} waiting"
        return wanted, reason

    def decide(self, obs: Observation) -> Decision:
        policy, bounds = self.policy, self.bounds
        # Work, or replicas just started (woken, or handed back to the scaler): the idle time counts from here.
        if obs.waiting or obs.busy > 0 or self._last_active is None or (obs.current and not self._last_current):
            self._last_active = obs.at
        self._last_current = obs.current
        wanted, reason = self.recommend(obs)
        ceiling = bounds.ceiling_per_host(obs.hosts)
        if wanted > ceiling:
            cap = "its topic's partitions" if bounds.partitions and bounds.partitions < bounds.max_replicas else "max"
            shared = f" on each of {obs.hosts} hosts" if obs.hosts > 1 else ""
            wanted, reason = ceiling, f"{reason}, held at {ceiling}{shared} ({cap})"

        # Down only as far as the window's highest recommendation (what the load asked for) allows.
        self._window.append((obs.at, wanted))
        while self._window and self._window[0][0] < obs.at - policy.stabilisation_s:
            self._window.popleft()
        if wanted < obs.current:
            held = min(max(w for _, w in self._window), obs.current)
            if held > wanted:
                wanted, reason = held, f"{reason}, held by the last {policy.stabilisation_s:.0f} s"
        # Up by at most a factor or a few replicas a step, and only onto cores that are free.
        if wanted > obs.current > 0:
            wanted = min(
                wanted, max(math.ceil(obs.current * policy.max_step_factor), obs.current + policy.max_step_add)
            )
            if obs.host_busy >= policy.max_host_busy:
                wanted, reason = obs.current, f"{reason}, held: the host's cores are {obs.host_busy:.0%} busy"
        # Never below min; at min 0, one replica stays until the function has been idle long enough.
        floor = bounds.min_replicas
        if floor == 0 and obs.current > 0 and not self._idle_long(obs.at):
            floor = 1
        if wanted < floor:
            wanted, reason = floor, "min" if floor == bounds.min_replicas else reason
        if wanted == 0 and obs.current > 0:
            reason = f"idle {policy.idle_to_zero_s:.0f} s"
        self._count_flap(obs, wanted)
        return Decision(wanted, reason)

    def _count_flap(self, obs: Observation, wanted: int) -> None:
        """A reversal (down after up, or up after down) within `flap_window_s` of the
        last change is a flap; a burst that drains and is scaled down later is not."""
        direction = (wanted > obs.current) - (wanted < obs.current)
        if not direction:
            return
        if (
            self._last_direction
            and direction != self._last_direction
            and self._last_change is not None
            and obs.at - self._last_change < self.policy.flap_window_s
        ):
            self.flaps += 1
        self._last_direction, self._last_change = direction, obs.at

    def _idle_long(self, now: float) -> bool:
        return self._last_active is not None and now - self._last_active >= self.policy.idle_to_zero_s
