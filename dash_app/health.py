"""Stack and function health for the Live page: the same status `triptych status`
prints, probed at most every few seconds however many tabs are open."""

from __future__ import annotations

import threading
import time

from triptych.runtime.supervisor import replica_counts
from triptych.stack.manager import Stack

from . import data

PROBE_EVERY_S = 5.0
_lock = threading.Lock()
_cached: tuple[float, dict] = (0.0, {})


def snapshot() -> dict:
    """{"services": [{name, state, url, rss_mb}], "functions": {name: {desired, running, starting, restarts}}}"""
    global _cached
    with _lock:
        at, value = _cached
        if value and time.monotonic() - at < PROBE_EVERY_S:
            return value
        settings = data.settings()
        services = [s.as_dict() for s in Stack(settings).status() if s.name != "dashboard"]
        functions = replica_counts(settings)
        value = {"services": services, "functions": functions}
        _cached = (time.monotonic(), value)
        return value
