"""The supervisor's files: the one door to them for everyone who is not the
supervisor's own loop (the CLI, the stack, the benchmarks, the cluster manager).

- `desired.json`: what a person or a program asks for, per function: a pinned
  count, or `auto` (follow the scaler). Every writer goes through
  `update_desired`, a read-modify-write under an exclusive `flock`: two writers
  at once would otherwise each write back the file they read, and one change
  would be lost. The supervisor only reads it (every half second).
- `status.json`: what runs, written by the supervisor alone; read here.
- The Prometheus file-discovery targets of the replicas and the supervisor.

Nothing here imports the runner, so the stack manager, the dashboard and the API
can read the status without it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from .config import Settings

# In the desired file: the function follows the scaler (its declared min and max).
AUTO = "auto"
Pins = dict[str, "int | str"]


def write_json_atomically(path: Path, data) -> None:
    """Readers (the supervisor, Prometheus, `triptych status`) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def functions_dir(settings: Settings) -> Path:
    return settings.data_dir / "functions"


def desired_path(settings: Settings) -> Path:
    return functions_dir(settings) / "desired.json"


def status_path(settings: Settings) -> Path:
    return functions_dir(settings) / "status.json"


def targets_dir(settings: Settings) -> Path:
    return functions_dir(settings) / "targets"


def replica_target_path(settings: Settings, function: str, index: int) -> Path:
    return targets_dir(settings) / f"{function}-{index}.json"


def supervisor_target_path(settings: Settings) -> Path:
    return functions_dir(settings) / "supervisor-target.json"


def read_desired(settings: Settings) -> Pins:
    path = desired_path(settings)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def update_desired(settings: Settings, change: Callable[[Pins], Pins | None]) -> Pins | None:
    """Apply `change` to the pins under the lock and write the result (None: remove
    the file, every function as `autoscale` says). The one writer of desired.json."""
    path = desired_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pins = change(read_desired(settings))
        if pins is None:
            path.unlink(missing_ok=True)
        else:
            write_json_atomically(path, pins)
        return pins


def _check(replicas) -> None:
    if replicas not in (AUTO, None) and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
        raise ValueError("replicas must be 0 or more, or 'auto'")


def set_desired_replicas(settings: Settings, function: str, replicas: int | str | None) -> None:
    """Pin a function at `replicas`, hand it to the scaler with AUTO, or (None) let
    it run as `autoscale` says for every function."""
    _check(replicas)

    def change(pins: Pins) -> Pins:
        if replicas is None:
            pins.pop(function, None)
        else:
            pins[function] = replicas
        return pins

    update_desired(settings, change)


def replace_desired(settings: Settings, pins: Pins | None) -> None:
    """Every pin at once (a benchmark's mode, a cluster host's share); None removes the file."""
    for replicas in (pins or {}).values():
        _check(replicas)
    update_desired(settings, lambda _old: None if pins is None else dict(pins))


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
