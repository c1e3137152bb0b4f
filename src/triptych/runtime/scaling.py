"""The supervisor's scaler loop: every few seconds, for each function the scaler
owns (not pinned with `functions scale NAME N`), read what waits for it and how
busy its replicas are, ask `autoscale.Scaler` for a replica count, and say why.

- **What waits**: the lag of each of its Kafka triggers' consumer groups
  (`bus.GroupLag`), summed. A group that never committed (a shadow group that
  starts at the newest offset) has nothing waiting for it.
- **How busy**: the growth of `triptych_function_handler_seconds_sum` on each
  replica's own /metrics since the last tick, over the tick's wall time and the
  replicas: the share of their time spent in the handler.

Each change is returned as a `Decision`; the supervisor applies it, writes it to
the status file (the Live page and `functions list` show "1 -> 2 (lag 340)") and
to `system_events`.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from ..bus import GroupLag
from ..config import Settings
from ..contracts import TOPICS
from .autoscale import Bounds, Decision, Observation, Policy, Scaler
from .spec import FunctionSpec

log = logging.getLogger("triptych.runtime.scaling")

TICK_S = 5.0
HANDLER_SUM = "triptych_function_handler_seconds"


def bounds_of(spec: FunctionSpec) -> Bounds:
    """The declared bounds, `max` capped by the fewest partitions of its Kafka topics."""
    partitions = dict(TOPICS)
    topics = [t for trigger in spec.kafka_triggers for t in trigger.topics]
    return Bounds(spec.replicas, spec.max_replicas or spec.replicas,
                  min((partitions.get(t, 1) for t in topics), default=None))


def handler_seconds(port: int, host: str = "127.0.0.1") -> float | None:
    """Seconds a replica has spent in its handler since it started (None: no answer)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=1) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == HANDLER_SUM:
            total += sum(s.value for s in family.samples if s.name == f"{HANDLER_SUM}_sum")
    return total


@dataclass
class _Reading:
    at: float
    handler_s: dict[int, float]  # replica index -> handler seconds so far


class AutoScaling:
    def __init__(self, functions: dict[str, FunctionSpec], settings: Settings, policy: Policy | None = None):
        self.settings = settings
        self.functions = {name: spec for name, spec in functions.items() if (spec.max_replicas or spec.replicas)
                          != spec.replicas}  # a function with min == max has nothing to scale
        self.scalers = {name: Scaler(bounds_of(spec), policy or Policy()) for name, spec in self.functions.items()}
        self._lags = {name: [GroupLag(settings, t.consumer_group, topic, from_latest=t.initial_offset == "latest")
                             for t in spec.kafka_triggers for topic in t.topics]
                      for name, spec in self.functions.items()}
        self._last: dict[str, _Reading] = {}
        self._next_tick = 0.0

    def due(self, now: float) -> bool:
        return now >= self._next_tick

    def tick(self, current: dict[str, int], metrics_ports: dict[str, dict[int, int]],
             pinned: set[str]) -> dict[str, Decision]:
        """Decisions for the functions the scaler owns, given the replicas asked for
        now and each running replica's metrics port."""
        now = time.monotonic()
        self._next_tick = now + TICK_S
        decisions = {}
        for name, scaler in self.scalers.items():
            if name in pinned:
                continue
            observation = Observation(at=now, current=current.get(name, 0), lag=self._lag(name),
                                      busy=self._busy(name, now, metrics_ports.get(name, {})))
            decisions[name] = scaler.decide(observation)
        return decisions

    def _lag(self, name: str) -> int | None:
        if not self._lags[name]:
            return None
        try:
            return sum(lag() for lag in self._lags[name])
        except Exception as exc:  # noqa: BLE001 - Kafka away: hold the count rather than guess
            log.warning("lag of %s unknown: %s", name, exc)
            return None

    def _busy(self, name: str, now: float, ports: dict[int, int]) -> float:
        reading = _Reading(now, {i: s for i, port in ports.items() if (s := handler_seconds(port)) is not None})
        last, self._last[name] = self._last.get(name), reading
        if last is None or not reading.handler_s or now <= last.at:
            return 0.0
        grown = sum(max(0.0, s - last.handler_s.get(i, 0.0)) for i, s in reading.handler_s.items())
        return min(1.0, grown / ((now - last.at) * len(reading.handler_s)))

    def close(self) -> None:
        for lags in self._lags.values():
            for lag in lags:
                lag.close()
