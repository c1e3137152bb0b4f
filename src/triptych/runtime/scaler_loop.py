"""The supervisor's scaler loop: every `scale_tick_s`, for each function the scaler
owns, read what waits for it and how busy its replicas are, ask
`autoscale.Scaler` for a replica count, and say why.

- **What waits**: the lag of each of its Kafka triggers' consumer groups
  (`bus.GroupLag`), summed (a group that starts at the newest offset and never
  committed has nothing waiting); a request held on its HTTP port while it is at
  zero (`listeners`); a cron tick due soon, or its declared condition (`wake`).
- **How busy**: the growth of `triptych_function_handler_seconds_sum` on each
  replica's own /metrics since the last tick, over the tick's wall time and the
  replicas; a replica with background work (a retraining run) counts as busy.
- **Sharing**: with several workers (`scale_peers`), the live ones (their
  supervisors answer /health) each take their share of the lag and of the ceiling.

Each decision is returned; the supervisor applies it, writes it to the status file
(the Live page and `functions list` show "1 → 2 (lag 340)") and to `system_events`.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psutil
from prometheus_client.parser import text_string_to_metric_families

from ..bus import GroupLag
from ..config import Settings
from ..contracts import TOPICS
from . import wake
from .autoscale import Bounds, Decision, Observation, Policy, Scaler
from .listeners import Listeners
from .spec import FunctionSpec, HttpTriggerSpec

log = logging.getLogger("triptych.runtime.scaling")

HANDLER_SUM = "triptych_function_handler_seconds"
BACKGROUND = "triptych_function_background_work"


def bounds_of(spec: FunctionSpec, runtime: str = "local") -> Bounds:
    """The declared bounds, `max` capped by the fewest partitions of its Kafka topics.
    Under Nuclio's processor an HTTP function keeps one replica: the processor binds
    its own port, so no supervisor socket can hold a request while it is at zero."""
    partitions = dict(TOPICS)  # the project's own topics; another's count is not known here: no cap
    topics = [t for trigger in spec.kafka_triggers for t in trigger.topics if t in partitions]
    low = spec.replicas
    if low == 0 and runtime == "nuclio" and any(isinstance(t, HttpTriggerSpec) for t in spec.triggers):
        low = 1
    return Bounds(low, max(low, spec.max_replicas or spec.replicas), min((partitions[t] for t in topics), default=None))


def policy_of(settings: Settings) -> Policy:
    return Policy(
        lag_per_replica=settings.scale_lag_per_replica,
        target_busy=settings.scale_target_busy,
        stabilisation_s=settings.scale_stabilisation_s,
        idle_to_zero_s=settings.scale_idle_to_zero_s,
        max_host_busy=settings.scale_max_host_busy,
    )


def scalable(spec: FunctionSpec, runtime: str = "local") -> bool:
    bounds = bounds_of(spec, runtime)
    return bounds.min_replicas != bounds.max_replicas


@dataclass(frozen=True)
class ReplicaLoad:
    handler_s: float  # seconds spent in its handler since it started
    background: float  # work it left running (a retraining run)


def replica_load(port: int, host: str = "127.0.0.1") -> ReplicaLoad | None:
    """What a replica's /metrics says about its work (None: no answer)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=1) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    handler = background = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == HANDLER_SUM:
            handler += sum(s.value for s in family.samples if s.name == f"{HANDLER_SUM}_sum")
        elif family.name == BACKGROUND:
            background += sum(s.value for s in family.samples)
    return ReplicaLoad(handler, background)


def peer_alive(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/health", timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


class AutoScaling:
    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        settings: Settings,
        listeners: Listeners | None = None,
        policy: Policy | None = None,
    ):
        self.settings = settings
        self.listeners = listeners
        runtime = settings.functions_runtime
        self.functions = {name: spec for name, spec in functions.items() if scalable(spec, runtime)}
        self.bounds = {name: bounds_of(spec, runtime) for name, spec in self.functions.items()}
        self.scalers = {name: Scaler(self.bounds[name], policy or policy_of(settings)) for name in self.functions}
        self._lags = {
            name: [
                GroupLag(settings, t.consumer_group, topic, from_latest=t.initial_offset == "latest")
                for t in spec.kafka_triggers
                for topic in t.topics
            ]
            for name, spec in self.functions.items()
        }
        self._last: dict[str, tuple[float, dict[int, float]]] = {}  # at, replica -> handler seconds
        self.observed: dict[str, dict] = {}  # what the last tick saw, per function (the status file shows it)
        self._next_tick = 0.0
        self._peers = ThreadPoolExecutor(4, thread_name_prefix="scale-peers") if settings.scale_peers else None

    def due(self, now: float) -> bool:
        return now >= self._next_tick

    def held(self, name: str) -> bool:
        """A request waits on the function's port (checked every loop, not every tick)."""
        return self.listeners is not None and self.listeners.held(name)

    def hosts(self) -> int:
        """Live workers sharing each function: this one and the peers whose supervisor answers."""
        if not self._peers:
            return 1
        return max(1, sum(self._peers.map(peer_alive, self.settings.scale_peers)))

    def tick(
        self, current: dict[str, int], metrics_ports: dict[str, dict[int, int]], owned: set[str]
    ) -> dict[str, Decision]:
        """Decisions for the functions the scaler owns, given the replicas asked for
        now and each running replica's metrics port."""
        now = time.monotonic()
        self._next_tick = now + self.settings.scale_tick_s
        hosts = self.hosts() if owned else 1
        host_busy = psutil.cpu_percent(interval=None) / 100  # since the last tick: this host's cores
        decisions = {}
        for name in owned & set(self.scalers):
            spec, count = self.functions[name], current.get(name, 0)
            lag, busy, pending = self._lag(name), *self._load(name, now, metrics_ports.get(name, {}))
            met = self._condition(spec) if spec.wake_when else None
            if met is False:
                lag, busy, pending = (0 if lag is not None else None), 0.0, 0  # nothing to do, whatever arrives
            elif spec.wake_when:
                pending += 1
                if count == 0:
                    self._from_newest(name)
            if self.held(name):
                pending += 1
            if self.bounds[name].min_replicas == 0 and wake.cron_due(spec, self.settings.scale_cron_lead_s):
                pending += 1
            observation = Observation(
                at=now, current=count, lag=lag, busy=busy, pending_requests=pending, hosts=hosts, host_busy=host_busy
            )
            decisions[name] = self.scalers[name].decide(observation)
            self.observed[name] = {
                "lag": lag,
                "busy": round(busy, 3),
                "pending": pending,
                "hosts": hosts,
                "host_busy": round(host_busy, 3),
                "flaps": self.scalers[name].flaps,
                **({"condition": {spec.wake_when: met}} if spec.wake_when else {}),
            }
        return decisions

    def _condition(self, spec: FunctionSpec) -> bool:
        try:
            return wake.condition(spec.wake_when or "")(self.settings)
        except Exception as exc:  # noqa: BLE001 - its server away: keep the function as it is
            log.warning("wake condition %s of %s unknown: %s", spec.wake_when, spec.name, exc)
            return True

    def _from_newest(self, name: str) -> None:
        """A group that starts at the newest offset (a shadow phase judges what arrives
        from now on) restarts there when it wakes, not where it stopped long ago."""
        for lag in self._lags[name]:
            if lag.from_latest:
                try:
                    lag.skip_to_end()
                except Exception as exc:  # noqa: BLE001 - it then starts where it stopped
                    log.warning("could not move %s to the newest offset: %s", lag.group, exc)

    def _lag(self, name: str) -> int | None:
        if not self._lags[name]:
            return None
        try:
            return sum(lag() for lag in self._lags[name])
        except Exception as exc:  # noqa: BLE001 - Kafka away: hold the count rather than guess
            log.warning("lag of %s unknown: %s", name, exc)
            return None

    def _load(self, name: str, now: float, ports: dict[int, int]) -> tuple[float, int]:
        """(busy share of the replicas' wall time, 1 if any has background work)."""
        loads = {i: load for i, port in ports.items() if (load := replica_load(port)) is not None}
        handler_s = {i: load.handler_s for i, load in loads.items()}
        last_at, last = self._last.get(name, (None, {}))
        self._last[name] = (now, handler_s)
        background = int(any(load.background > 0 for load in loads.values()))
        if last_at is None or not handler_s or now <= last_at:
            return 0.0, background
        grown = sum(max(0.0, s - last.get(i, 0.0)) for i, s in handler_s.items())
        return min(1.0, grown / ((now - last_at) * len(handler_s))), background

    def close(self) -> None:
        if self._peers:
            self._peers.shutdown(wait=False)
        for lags in self._lags.values():
            for lag in lags:
                lag.close()
