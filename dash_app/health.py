"""Stack and function health for the Live page, probed at most every few seconds
however many tabs are open. The servers are probed directly; the function
replicas come from Prometheus (`triptych.observe.replicas`), which scrapes the
supervisor of every host, so the list is as right for a cluster as for a laptop."""

from __future__ import annotations

import threading
import time

from triptych.db.alerts import active_alerts
from triptych.db.scaling import latest_scaling
from triptych.observe.prometheus import PrometheusUnavailable
from triptych.observe.replicas import replica_health
from triptych.stack.manager import Stack

from . import data

PROBE_EVERY_S = 5.0
_lock = threading.Lock()
_cached: tuple[float, dict] = (0.0, {})


def snapshot() -> dict:
    """{"services": [{name, state, url, rss_mb}], "functions": {name: {desired, running, starting, restarts}},
    "replica_problems": [why the replica counts are missing or short: a supervisor or Prometheus away],
    "alerts": [Prometheus alerts firing now, from system_events],
    "scaling": {function: the scaler's last decision of the hour, from system_events}}"""
    global _cached
    with _lock:
        at, value = _cached
        if value and time.monotonic() - at < PROBE_EVERY_S:
            return value
        settings = data.settings()
        services = [s.as_dict() for s in Stack(settings).status() if s.name != "dashboard"]
        try:
            replicas = replica_health(settings)
            functions = replicas.functions
            replica_problems = replicas.supervisor_problems()
        except PrometheusUnavailable:
            functions, replica_problems = {}, [f"replica health comes from Prometheus ({settings.prometheus_url}), "
                                               "which does not answer"]
        try:
            alerts, scaling = data.read(active_alerts), data.read(latest_scaling)
        except Exception:  # noqa: BLE001 - Postgres away: the services list says so already
            alerts, scaling = [], {}
        value = {"services": services, "functions": functions, "replica_problems": replica_problems,
                 "alerts": alerts, "scaling": scaling}
        _cached = (time.monotonic(), value)
        return value
