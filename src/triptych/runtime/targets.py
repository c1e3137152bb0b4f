"""Prometheus file-based service discovery of the functions. Every replica writes
its own target file (`<data dir>/functions/targets/<function>-<replica>.json`)
once its metrics endpoint listens and removes it when it exits; the supervisor
removes a slot's file when it starts the slot again (a replica killed with -9
leaves one behind) and writes its own target beside them. Prometheus reads the
folder (`stack/services/monitoring.py`), so a replica run by hand (`triptych
functions serve`) is scraped as well."""

from __future__ import annotations

import json
from pathlib import Path

from ..config import Settings
from ..control import supervisor_target_path, targets_dir, write_json_atomically


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
