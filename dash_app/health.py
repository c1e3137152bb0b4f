"""Stack and function health for the Live page: the same status `triptych status`
prints, probed at most every few seconds however many tabs are open."""

from __future__ import annotations

import threading
import time

from triptych.db.alerts import active_alerts
from triptych.runtime.supervisor import replica_counts
from triptych.stack.manager import Stack

from . import data

PROBE_EVERY_S = 5.0
_lock = threading.Lock()
_cached: tuple[float, dict] = (0.0, {})


def snapshot() -> dict:
    """{"services": [{name, state, url, rss_mb}], "functions": {name: {desired, running, starting, restarts}},
    "alerts": [Prometheus alerts firing now, from system_events]}"""
    global _cached
    with _lock:
        at, value = _cached
        if value and time.monotonic() - at < PROBE_EVERY_S:
            return value
        settings = data.settings()
        services = [s.as_dict() for s in Stack(settings).status() if s.name != "dashboard"]
        functions = replica_counts(settings)
        try:
            alerts = data.read(active_alerts)
        except Exception:  # noqa: BLE001 - Postgres away: the services list says so already
            alerts = []
        value = {"services": services, "functions": functions, "alerts": alerts}
        _cached = (time.monotonic(), value)
        return value
