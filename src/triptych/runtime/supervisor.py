"""The supervisor: keeps the declared number of replicas of every function running.

It is one long-lived process (started by `triptych up` or `triptych functions
supervise`). Each replica is a child process: `python -m triptych.runtime.replica
NAME --replica I` under the local runner, `python -m
triptych.runtime.nuclio_replica ...` under Nuclio's processor (setting
`functions_runtime`). Replicas die with the supervisor, even when it is killed
with -9 (PR_SET_PDEATHSIG). A replica that exits is started again after an exponential backoff;
`triptych functions scale NAME N` changes the desired count in a small JSON file
that the supervisor re-reads every half second. It writes `status.json` (what runs)
and the Prometheus targets of the replicas it runs and of itself (`runtime.targets`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import Counter, Gauge

from ..config import Settings
from .admin import AdminServer
from .process_death import die_with_parent
from .replica import replica_info_path
from .scaling import AutoScaling
from .spec import FunctionSpec
from .targets import (
    replica_target_path,
    all_targets,
    supervisor_target_path,
    write_json_atomically,
    write_target,
)

log = logging.getLogger("triptych.runtime.supervisor")

MAX_BACKOFF_S = 30.0
HEALTHY_RUN_S = 30.0  # a replica that ran this long starts its backoff afresh
DRAIN_TIMEOUT_S = 60.0


def functions_dir(settings: Settings) -> Path:
    return settings.data_dir / "functions"


def desired_path(settings: Settings) -> Path:
    return functions_dir(settings) / "desired.json"


def status_path(settings: Settings) -> Path:
    return functions_dir(settings) / "status.json"


# In the desired file: the function follows the scaler (its declared min and max).
AUTO = "auto"


def set_desired_replicas(settings: Settings, function: str, replicas: int | str) -> None:
    """Pin a function at `replicas`, or hand it back to the scaler with AUTO."""
    if replicas != AUTO and (not isinstance(replicas, int) or replicas < 0):
        raise ValueError("replicas must be 0 or more, or 'auto'")
    path = desired_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Read-modify-write under an exclusive lock: two `functions scale` at once
    # would otherwise each write back the file they read, and one change is lost.
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        desired = json.loads(path.read_text()) if path.exists() else {}
        desired[function] = replicas
        write_json_atomically(path, desired)


# The supervisor's own metrics: what "no healthy replica" is judged against.
REPLICAS_DESIRED = Gauge("triptych_function_replicas_desired", "Replicas the supervisor is asked to run",
                         ("function",))
REPLICAS_RUNNING = Gauge("triptych_function_replicas_running", "Replica processes alive (not necessarily ready)",
                         ("function",))
REPLICAS_READY = Gauge("triptych_function_replicas_ready",
                       "Replicas ready to serve (listening; an inference replica with its champion loaded)",
                       ("function",))
SCALE_DECISIONS = Counter("triptych_function_scale_decisions_total", "Replica count changes by the scaler",
                          ("function", "direction"))
RESTARTS = Gauge("triptych_function_replica_restarts", "Restarts of a function's replicas since the supervisor started",
                 ("function",))


def read_status(settings: Settings) -> dict:
    path = status_path(settings)
    return json.loads(path.read_text()) if path.exists() else {}


def replica_counts(settings: Settings) -> dict[str, dict[str, int]]:
    """{function: {desired, running, starting, restarts}} from the supervisor's status file."""
    counts = {}
    for name, entry in read_status(settings).get("functions", {}).items():
        replicas = entry.get("replicas", [])
        counts[name] = {
            "desired": entry.get("desired", 0),
            "running": sum(r["state"] == "running" for r in replicas),
            # An inference replica stays "starting" until a champion exists to load.
            "starting": sum(r["state"] == "starting" for r in replicas),
            "restarts": sum(r.get("restarts", 0) for r in replicas),
        }
    return counts


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


class Supervisor:
    def __init__(self, functions: dict[str, FunctionSpec], settings: Settings, project_file: Path):
        self.functions = functions
        self.settings = settings
        self.project_file = project_file
        self.slots: dict[tuple[str, int], ReplicaSlot] = {}
        self.stopping = False
        # Functions whose min and max differ follow the scaler unless pinned (`functions scale NAME N`).
        self.autoscaling = AutoScaling(functions, settings)
        self.scaled: dict[str, int] = {}  # the scaler's count, per function it owns
        self.reasons: dict[str, str] = {}  # its last change, as the Live page shows it
        self._events = ThreadPoolExecutor(1, thread_name_prefix="scale-events")  # Postgres away never stalls us

    def _overrides(self) -> dict[str, int | str]:
        path = desired_path(self.settings)
        if not path.exists():
            return {}
        try:
            return {k: v for k, v in json.loads(path.read_text()).items() if k in self.functions}
        except ValueError:
            return {}  # a half-written file: keep the counts this round

    def pinned(self) -> set[str]:
        return {name for name, value in self._overrides().items() if value != AUTO}

    def desired(self) -> dict[str, int]:
        wanted = {name: self.scaled.get(name, spec.replicas) for name, spec in self.functions.items()}
        wanted.update({k: int(v) for k, v in self._overrides().items() if v != AUTO})
        return wanted

    def mode(self, name: str) -> str:
        if name in self.pinned():
            return "pinned"
        return "auto" if name in self.autoscaling.scalers else "fixed"

    def _autoscale(self, wanted: dict[str, int]) -> None:
        ports = {}
        for function, count in wanted.items():
            ports[function] = {}
            for index in range(count):
                info_path = replica_info_path(self.settings, function, index)
                try:
                    info = json.loads(info_path.read_text())
                except (OSError, ValueError):
                    continue
                if info.get("metrics_port"):
                    ports[function][index] = info["metrics_port"]
        for function, decision in self.autoscaling.tick(wanted, ports, self.pinned()).items():
            before = wanted.get(function, 0)
            self.scaled[function] = decision.desired
            if not decision.changes(before):
                continue
            change = f"{before} → {decision.desired} ({decision.reason})"
            self.reasons[function] = change
            log.info("scaled %s %s", function, change)
            SCALE_DECISIONS.labels(function, "up" if decision.desired > before else "down").inc()
            self._events.submit(self._record, function, before, decision)

    def _record(self, function: str, before: int, decision) -> None:
        from ..db.events import log_system_event

        try:
            log_system_event("function_scaled", "info", function,
                             f"{function} {before} → {decision.desired} ({decision.reason})",
                             {"function": function, "from": before, "to": decision.desired,
                              "reason": decision.reason}, settings=self.settings)
        except Exception as exc:  # noqa: BLE001 - the decision stands; its record is best-effort
            log.warning("scale event of %s not recorded: %s", function, exc)

    def _command(self, function: str, index: int) -> list[str]:
        module = "triptych.runtime.nuclio_replica" if self.settings.functions_runtime == "nuclio" \
            else "triptych.runtime.replica"
        return [sys.executable, "-m", module, function, "--replica", str(index), "--project", str(self.project_file)]

    def _start(self, slot: ReplicaSlot) -> None:
        slot.log_path = self.settings.data_dir / "logs" / "functions" / f"{slot.function}-{slot.index}.log"
        slot.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._forget(slot)
        with open(slot.log_path, "ab") as out:
            slot.process = subprocess.Popen(
                self._command(slot.function, slot.index), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent(),
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

    def _forget(self, slot: ReplicaSlot) -> None:
        """What a replica leaves behind (info, Prometheus target), gone once it is."""
        replica_info_path(self.settings, slot.function, slot.index).unlink(missing_ok=True)
        replica_target_path(self.settings, slot.function, slot.index).unlink(missing_ok=True)

    def reconcile(self) -> None:
        now = time.monotonic()
        wanted = self.desired()
        if self.autoscaling.scalers and self.autoscaling.due(now):
            self._autoscale(wanted)
            wanted = self.desired()
        for function, count in wanted.items():
            for index in range(count):
                slot = self.slots.setdefault((function, index), ReplicaSlot(function, index))
                if slot.process is not None and slot.process.poll() is not None:
                    slot.last_exit_code = slot.process.returncode
                    ran = now - slot.started_at
                    slot.consecutive_failures = 0 if ran >= HEALTHY_RUN_S else slot.consecutive_failures + 1
                    slot.not_before = now + min(MAX_BACKOFF_S, 0.5 * 2 ** slot.consecutive_failures)
                    slot.restarts += 1
                    slot.process = None
                    log.warning("%s[%d] exited with %s; restarting", function, index, slot.last_exit_code)
                if slot.process is None and now >= slot.not_before:
                    self._start(slot)
        for key, slot in list(self.slots.items()):
            function, index = key
            if index >= wanted.get(function, 0):
                self._stop(slot)
                del self.slots[key]
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
                replicas.append({
                    "index": index,
                    "pid": slot.process.pid if running else None,
                    "state": "running" if running and info else ("starting" if running else "restarting"),
                    "restarts": slot.restarts if slot else 0,
                    "last_exit_code": slot.last_exit_code if slot else None,
                    "metrics_port": info.get("metrics_port"),
                    "log": str(slot.log_path) if slot else None,
                })
            spec = self.functions.get(function)
            status[function] = {"desired": count, "replicas": replicas, "mode": self.mode(function),
                                "min": spec.replicas if spec else count,
                                "max": (spec.max_replicas or spec.replicas) if spec else count,
                                "reason": self.reasons.get(function)}
        write_json_atomically(status_path(self.settings), {
            "updated_at": time.time(), "pid": os.getpid(), "runtime": self.settings.functions_runtime,
            "functions": status})
        for function, entry in status.items():
            REPLICAS_DESIRED.labels(function).set(entry["desired"])
            REPLICAS_RUNNING.labels(function).set(sum(r["pid"] is not None for r in entry["replicas"]))
            REPLICAS_READY.labels(function).set(sum(r["state"] == "running" for r in entry["replicas"]))
            RESTARTS.labels(function).set(sum(r["restarts"] for r in entry["replicas"]))

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        # /targets: this host's replicas, for a Prometheus on another host (HTTP service discovery).
        admin = AdminServer(health=lambda: {"healthy": not self.stopping, "pid": os.getpid()},
                            host=self.settings.bind_host, port=self.settings.supervisor_port,
                            routes={"/targets": lambda: all_targets(self.settings)})
        admin.start()
        write_target(supervisor_target_path(self.settings), self.settings.bind_host, admin.port,
                     {"component": "supervisor"})
        try:
            while not self.stopping:
                self.reconcile()
                time.sleep(0.5)
        finally:
            # Whatever ends the loop (a signal, or an error such as the data dir
            # vanishing), no replica outlives its supervisor as an orphan.
            self._drain()
            self.autoscaling.close()
            self._events.shutdown(wait=False)
            supervisor_target_path(self.settings).unlink(missing_ok=True)
            admin.stop()

    def _drain(self) -> None:
        # A deliberate stop is no outage: wanting none, the "no healthy replica" alert stays quiet.
        for function in self.functions:
            REPLICAS_DESIRED.labels(function).set(0)
        # All replicas in parallel: signal every one, then wait.
        for slot in self.slots.values():
            if slot.process and slot.process.poll() is None:
                slot.process.terminate()
        for slot in self.slots.values():
            self._stop(slot)
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
