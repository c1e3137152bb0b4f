"""The supervisor: keeps the declared number of replicas of every function running.

It is one long-lived process (started by `triptych up` or `triptych functions
supervise`). Each replica is a child process: `python -m triptych.runtime.replica
NAME --replica I` under the local runner, `python -m
triptych.runtime.nuclio_replica ...` under Nuclio's processor (setting
`functions_runtime`). Replicas die with the supervisor, even when it is killed
with -9 (PR_SET_PDEATHSIG). A replica that exits is started again after an exponential backoff.

How many replicas: a function whose declared min and max differ follows the scaler
(`runtime.scaler_loop`, every few seconds; a request held on its port wakes it at once);
`triptych functions scale NAME N` pins it, `... auto` hands it back, through a small
JSON file re-read every half second. A replica scaled away is told to stop and
drains (finishes and commits its batch) while the loop goes on. The supervisor
owns the HTTP triggers' ports (`runtime.listeners`), so a function at zero refuses
no request. It writes `status.json` (what runs) and the Prometheus targets of the
replicas it runs and of itself (`runtime.targets`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import Counter, Gauge

from ..config import Settings
from ..control import (
    AUTO,
    desired_path,
    replica_target_path,
    status_path,
    supervisor_target_path,
    write_json_atomically,
)
from .admin import AdminServer
from .autoscale import Decision
from .listeners import Listeners
from .process_death import die_with_parent
from .replica import replica_info_path
from .scaler_loop import AutoScaling, bounds_of, scalable
from .spec import FunctionSpec
from .targets import all_targets, write_target

log = logging.getLogger("triptych.runtime.supervisor")

MAX_BACKOFF_S = 30.0
HEALTHY_RUN_S = 30.0  # a replica that ran this long starts its backoff afresh
DRAIN_TIMEOUT_S = 60.0


# The supervisor's own metrics: what "no healthy replica" is judged against.
REPLICAS_DESIRED = Gauge("triptych_function_replicas_desired", "Replicas the supervisor is asked to run", ("function",))
REPLICAS_RUNNING = Gauge(
    "triptych_function_replicas_running", "Replica processes alive (not necessarily ready)", ("function",)
)
REPLICAS_READY = Gauge(
    "triptych_function_replicas_ready",
    "Replicas ready to serve (listening; an inference replica with its champion loaded)",
    ("function",),
)
SCALE_DECISIONS = Counter(
    "triptych_function_scale_decisions_total", "Replica count changes by the scaler", ("function", "direction")
)
RESTARTS = Gauge(
    "triptych_function_replica_restarts",
    "Restarts of a function's replicas since the supervisor started",
    ("function",),
)


@dataclass
class ReplicaSlot:
    function: str
    index: int
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    consecutive_failures: int = 0
    not_before: float = 0.0
    last_exit_code: int | None = None
    log_path: Path = field(default=Path("/dev/null"))
    stop_deadline: float = 0.0  # while draining: when it is killed if still alive


class Supervisor:
    def __init__(self, functions: dict[str, FunctionSpec], settings: Settings, project_file: Path):
        self.functions = functions
        self.settings = settings
        self.project_file = project_file
        self.slots: dict[tuple[str, int], ReplicaSlot] = {}
        self.stopping = False
        self.draining: list[ReplicaSlot] = []  # scaled away, finishing their batch
        self._overrides_read: tuple[int, dict[str, int | str]] = (0, {})
        # Nuclio's processor binds its ports itself; the local runner's replicas take ours.
        self.listeners = Listeners(functions, settings.bind_host) if settings.functions_runtime == "local" else None
        # Functions whose min and max differ follow the scaler unless pinned (`functions scale NAME N`).
        self.autoscaling = AutoScaling(functions, settings, self.listeners)
        self.scaled: dict[str, int] = {}  # the scaler's count, per function it owns
        self.reasons: dict[str, str] = {}  # its last change, as the Live page shows it
        self._events = ThreadPoolExecutor(1, thread_name_prefix="scale-events")  # Postgres away never stalls us
        self._ticks = ThreadPoolExecutor(1, thread_name_prefix="scaler")
        self._tick: Future | None = None
        self._tick_basis: dict[str, int] = {}  # the counts the tick in flight decides from

    def _overrides(self) -> dict[str, int | str]:
        """desired.json: pinned counts and `auto`, re-read when it changes."""
        path = desired_path(self.settings)
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if stamp != self._overrides_read[0]:
            try:
                raw = json.loads(path.read_text())
            except ValueError:
                return self._overrides_read[1]  # a half-written file: keep the last counts this round
            self._overrides_read = (stamp, {k: v for k, v in raw.items() if k in self.functions})
        return self._overrides_read[1]

    def pinned(self) -> set[str]:
        return {name for name, value in self._overrides().items() if value != AUTO}

    def owned(self) -> set[str]:
        """The functions the scaler sets: every scalable one not pinned, or with
        `autoscale` off only those handed to it with `functions scale NAME auto`."""
        overrides = self._overrides()
        return {
            name
            for name in self.autoscaling.scalers
            if overrides.get(name) == AUTO or (self.settings.autoscale and name not in overrides)
        }

    def fixed_count(self, spec: FunctionSpec) -> int:
        """A function nobody scales: its min (with `autoscale` off, 1 where min is 0)."""
        low = bounds_of(spec, self.settings.functions_runtime).min_replicas
        return low if self.settings.autoscale or not scalable(spec, self.settings.functions_runtime) else max(1, low)

    def desired(self) -> dict[str, int]:
        overrides, owned = self._overrides(), self.owned()
        wanted = {}
        for name, spec in self.functions.items():
            if name in owned:
                # Handed over, the scaler starts from what runs (or, at start, from min).
                wanted[name] = self.scaled.setdefault(name, self._running_count(name, spec))
            elif overrides.get(name, AUTO) != AUTO:
                wanted[name] = int(overrides[name])
            else:
                wanted[name] = self.fixed_count(spec)
            if name not in owned:
                self.scaled.pop(name, None)
        return wanted

    def _running_count(self, name: str, spec: FunctionSpec) -> int:
        alive = sum(1 for (function, _), slot in self.slots.items() if function == name and slot.process)
        return alive if alive else bounds_of(spec, self.settings.functions_runtime).min_replicas

    def mode(self, name: str) -> str:
        if name in self.pinned():
            return "pinned"
        return "auto" if name in self.owned() else "fixed"

    def _metrics_ports(self, wanted: dict[str, int]) -> dict[str, dict[int, int]]:
        ports: dict[str, dict[int, int]] = {}
        for function, count in wanted.items():
            ports[function] = {}
            for index in range(count):
                try:
                    info = json.loads(replica_info_path(self.settings, function, index).read_text())
                except (OSError, ValueError):
                    continue
                if info.get("metrics_port"):
                    ports[function][index] = info["metrics_port"]
        return ports

    def _autoscale(self, now: float, wanted: dict[str, int]) -> None:
        """Start a scaler tick in its thread (it reads Kafka, MLflow and the replicas,
        any of which may be slow or away: the loop never waits on them); apply the
        decisions of the last one once it is done."""
        if self._tick is not None and self._tick.done():
            try:
                decisions = self._tick.result()
            except Exception as exc:  # noqa: BLE001 - a failed tick changes nothing; the next tries again
                log.warning("scaler tick failed: %s", exc)
                decisions = {}
            self._tick = None
            owned = self.owned()
            for function, decision in decisions.items():
                # Not pinned meanwhile, nor woken by a held request since the tick read its count.
                if function in owned and wanted.get(function) == self._tick_basis.get(function):
                    self._apply(function, wanted.get(function, 0), decision)
        if self._tick is None and self.autoscaling.due(now):
            self._tick_basis = dict(wanted)
            self._tick = self._ticks.submit(
                self.autoscaling.tick, dict(wanted), self._metrics_ports(wanted), self.owned()
            )

    def _wake_held(self, wanted: dict[str, int]) -> None:
        """A request waits on the port of a function at zero: start it now, not at the next tick."""
        for function in self.owned():
            if wanted.get(function) == 0 and self.autoscaling.held(function):
                low = self.autoscaling.bounds[function].min_replicas
                self._apply(function, 0, Decision(max(1, low), "woken: a request held"))

    def _apply(self, function: str, before: int, decision: Decision) -> None:
        self.scaled[function] = decision.desired
        if not decision.changes(before):
            return
        change = f"{before} → {decision.desired} ({decision.reason})"
        self.reasons[function] = change
        log.info("scaled %s %s", function, change)
        SCALE_DECISIONS.labels(function, "up" if decision.desired > before else "down").inc()
        self._events.submit(self._record, function, before, decision)

    def _record(self, function: str, before: int, decision) -> None:
        from ..db.events import log_system_event

        try:
            log_system_event(
                "function_scaled",
                "info",
                function,
                f"{function} {before} → {decision.desired} ({decision.reason})",
                {"function": function, "from": before, "to": decision.desired, "reason": decision.reason},
                settings=self.settings,
            )
        except Exception as exc:  # noqa: BLE001 - the decision stands; its record is best-effort
            log.warning("scale event of %s not recorded: %s", function, exc)

    def _command(self, function: str, index: int) -> list[str]:
        module = (
            "triptych.runtime.nuclio_replica"
            if self.settings.functions_runtime == "nuclio"
            else "triptych.runtime.replica"
        )
        return [sys.executable, "-m", module, function, "--replica", str(index), "--project", str(self.project_file)]

    def _start(self, slot: ReplicaSlot) -> None:
        slot.log_path = self.settings.data_dir / "logs" / "functions" / f"{slot.function}-{slot.index}.log"
        slot.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._forget(slot)
        sockets = self.listeners.env_for(slot.function) if self.listeners else {}
        with open(slot.log_path, "ab") as out:
            slot.process = subprocess.Popen(
                self._command(slot.function, slot.index),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent(),
                env={**os.environ, **sockets} if sockets else None,
                pass_fds=self.listeners.fds_for(slot.function) if sockets else (),
            )
        slot.started_at = time.monotonic()

    def _stop(self, slot: ReplicaSlot) -> None:
        if slot.process and slot.process.poll() is None:
            slot.process.terminate()
            try:
                slot.process.wait(timeout=DRAIN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()
        self._forget(slot)

    def _retire(self, slot: ReplicaSlot) -> None:
        """Scaled away: tell it to stop (it finishes and commits its batch, then leaves
        its group) and watch it drain from the loop, which goes on meanwhile."""
        if slot.process and slot.process.poll() is None:
            slot.process.terminate()
            slot.stop_deadline = time.monotonic() + DRAIN_TIMEOUT_S
            self.draining.append(slot)
        else:
            self._forget(slot)

    def _reap_drained(self, now: float) -> None:
        for slot in list(self.draining):
            if slot.process.poll() is None and now < slot.stop_deadline:
                continue
            if slot.process.poll() is None:
                log.warning("%s[%d] still draining after %.0f s; killed", slot.function, slot.index, DRAIN_TIMEOUT_S)
                slot.process.kill()
                slot.process.wait()
            self.draining.remove(slot)
            if (slot.function, slot.index) not in self.slots:
                self._forget(slot)

    def _draining(self, function: str, index: int) -> bool:
        return any(s.function == function and s.index == index for s in self.draining)

    def _forget(self, slot: ReplicaSlot) -> None:
        """What a replica leaves behind (info, Prometheus target), gone once it is."""
        replica_info_path(self.settings, slot.function, slot.index).unlink(missing_ok=True)
        replica_target_path(self.settings, slot.function, slot.index).unlink(missing_ok=True)

    def reconcile(self) -> None:
        now = time.monotonic()
        self._reap_drained(now)
        wanted = self.desired()
        if self.autoscaling.scalers:
            self._wake_held(wanted)
            self._autoscale(now, wanted)
            wanted = self.desired()
        for function, count in wanted.items():
            for index in range(count):
                slot = self.slots.setdefault((function, index), ReplicaSlot(function, index))
                if slot.process is not None and slot.process.poll() is not None:
                    slot.last_exit_code = slot.process.returncode
                    ran = now - slot.started_at
                    slot.consecutive_failures = 0 if ran >= HEALTHY_RUN_S else slot.consecutive_failures + 1
                    slot.not_before = now + min(MAX_BACKOFF_S, 0.5 * 2**slot.consecutive_failures)
                    slot.restarts += 1
                    slot.process = None
                    log.warning("%s[%d] exited with %s; restarting", function, index, slot.last_exit_code)
                # The same index scaled away a moment ago starts once its old process has drained.
                if slot.process is None and now >= slot.not_before and not self._draining(function, index):
                    self._start(slot)
        for key, slot in list(self.slots.items()):
            function, index = key
            if index >= wanted.get(function, 0):
                del self.slots[key]
                self._retire(slot)
        self._write_status(wanted)

    def _write_status(self, wanted: dict[str, int]) -> None:
        status = {}
        for function, count in wanted.items():
            replicas = []
            for index in range(count):
                slot = self.slots.get((function, index))
                info_path = replica_info_path(self.settings, function, index)
                info = json.loads(info_path.read_text()) if info_path.exists() else {}
                running = bool(slot and slot.process and slot.process.poll() is None)
                replicas.append(
                    {
                        "index": index,
                        "pid": slot.process.pid if running else None,
                        "state": "running" if running and info else ("starting" if running else "restarting"),
                        "restarts": slot.restarts if slot else 0,
                        "last_exit_code": slot.last_exit_code if slot else None,
                        "metrics_port": info.get("metrics_port"),
                        "log": str(slot.log_path) if slot else None,
                    }
                )
            bounds = bounds_of(self.functions[function], self.settings.functions_runtime)
            status[function] = {
                "desired": count,
                "replicas": replicas,
                "mode": self.mode(function),
                "min": bounds.min_replicas,
                "max": bounds.max_replicas,
                "draining": sum(s.function == function for s in self.draining),
                "observed": self.autoscaling.observed.get(function),
                "reason": self.reasons.get(function),
            }
        write_json_atomically(
            status_path(self.settings),
            {
                "updated_at": time.time(),
                "pid": os.getpid(),
                "runtime": self.settings.functions_runtime,
                "functions": status,
            },
        )
        for function, entry in status.items():
            REPLICAS_DESIRED.labels(function).set(entry["desired"])
            REPLICAS_RUNNING.labels(function).set(sum(r["pid"] is not None for r in entry["replicas"]))
            REPLICAS_READY.labels(function).set(sum(r["state"] == "running" for r in entry["replicas"]))
            RESTARTS.labels(function).set(sum(r["restarts"] for r in entry["replicas"]))

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        # /targets: this host's replicas, for a Prometheus on another host (HTTP service discovery).
        admin = AdminServer(
            health=lambda: {"healthy": not self.stopping, "pid": os.getpid()},
            host=self.settings.bind_host,
            port=self.settings.supervisor_port,
            routes={"/targets": lambda: all_targets(self.settings)},
        )
        admin.start()
        write_target(
            supervisor_target_path(self.settings), self.settings.bind_host, admin.port, {"component": "supervisor"}
        )
        try:
            while not self.stopping:
                self.reconcile()
                time.sleep(0.5)
        finally:
            # Whatever ends the loop (a signal, or an error such as the data dir
            # vanishing), no replica outlives its supervisor as an orphan.
            self._drain()
            self._ticks.shutdown(wait=False, cancel_futures=True)
            self.autoscaling.close()
            self._events.shutdown(wait=False)
            supervisor_target_path(self.settings).unlink(missing_ok=True)
            admin.stop()

    def _drain(self) -> None:
        # A deliberate stop is no outage: wanting none, the "no healthy replica" alert stays quiet.
        for function in self.functions:
            REPLICAS_DESIRED.labels(function).set(0)
        # All replicas in parallel: signal every one, then wait.
        slots = [*self.slots.values(), *self.draining]
        for slot in slots:
            if slot.process and slot.process.poll() is None:
                slot.process.terminate()
        for slot in slots:
            self._stop(slot)
        if self.listeners:
            self.listeners.close()
        status_path(self.settings).unlink(missing_ok=True)


def main() -> int:
    """`python -m triptych.runtime.supervisor [--project FILE]`: what `triptych up` starts."""
    import argparse

    from .. import logs
    from ..config import get_settings
    from .spec import load_functions

    parser = argparse.ArgumentParser(description="Keep every function of the project at its replica count.")
    parser.add_argument("--project", type=Path, default=None)
    args = parser.parse_args()
    logs.configure()
    settings = get_settings()
    project = (args.project or settings.project_file).resolve()
    Supervisor(load_functions(project), settings, project).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
