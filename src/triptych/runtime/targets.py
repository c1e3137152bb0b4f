"""Prometheus file-based service discovery of the functions. Every replica writes
its own target file (`<data dir>/functions/targets/<function>-<replica>.json`)
once its metrics endpoint listens and removes it when it exits; the supervisor
removes a slot's file when it starts the slot again (a replica killed with -9
leaves one behind) and writes its own target beside them. Prometheus reads the
folder (`stack/services/monitoring.py`), so a replica run by hand (`triptych
functions serve`) is scraped as well."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ..config import Settings


def write_json_atomically(path: Path, data) -> None:
    """Readers (Prometheus, `triptych status`) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def targets_dir(settings: Settings) -> Path:
    return settings.data_dir / "functions" / "targets"


def replica_target_path(settings: Settings, function: str, index: int) -> Path:
    return targets_dir(settings) / f"{function}-{index}.json"


def supervisor_target_path(settings: Settings) -> Path:
    return settings.data_dir / "functions" / "supervisor-target.json"


def write_target(path: Path, host: str, port: int, labels: dict[str, str]) -> None:
    write_json_atomically(path, [{"targets": [f"{host}:{port}"], "labels": labels}])


def all_targets(settings: Settings) -> list[dict]:
    """Every target group of this host (its supervisor and each replica), in
    Prometheus' service-discovery format: what a remote Prometheus reads."""
    groups = []
    for path in [supervisor_target_path(settings), *sorted(targets_dir(settings).glob("*.json"))]:
        try:
            groups += json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # gone between the listing and the read (a replica that just exited)
    return groups
