"""Stack and function health for the Live page, probed at most every few seconds
however many tabs are open. The servers are probed directly; the function
replicas come from Prometheus (`triptych.observe.replicas`), which scrapes the
supervisor of every host, so the list is as right for a cluster as for a laptop."""

from __future__ import annotations

import logging
import threading
import time

from triptych.db.alerts import active_alerts
from triptych.db.scaler_decisions import latest_scaling
from triptych.observe.prometheus import PrometheusUnavailable
from triptych.observe.replicas import replica_health
from triptych.stack.manager import Stack

from . import data

log = logging.getLogger("triptych.dashboard.health")

PROBE_EVERY_S = 5.0
# A page waits at most this long for the very first probe; after that it is always
# answered at once from the last one (issue 25: the list within 2 s of loading,
# even while training keeps the CPUs busy and a probe takes seconds).
FIRST_PROBE_WAIT_S = 1.5
# The probing thread stops when no page has asked for this long.
IDLE_STOP_S = 60.0

_lock = threading.Condition()
_cached: dict = {}
_asked_at = 0.0
_prober: threading.Thread | None = None


def snapshot(wait_s: float = FIRST_PROBE_WAIT_S) -> dict | None:
    """{"services": [{name, state, url, rss_mb}], "functions": {name: {desired, running, starting, restarts}},
    "replica_problems": [why the replica counts are missing or short: a supervisor or Prometheus away],
    "alerts": [Prometheus alerts firing now, from system_events],
    "scaling": {function: the scaler's last decision of the hour, from system_events},
    "probed_at": time.time() of the probe}, as last probed by a background thread
    (every PROBE_EVERY_S while pages ask). None when the first probe is not done
    after `wait_s`."""
    global _asked_at, _prober
    with _lock:
        _asked_at = time.monotonic()
        if _prober is None or not _prober.is_alive():
            _prober = threading.Thread(target=_probe_while_asked, name="health-prober", daemon=True)
            _prober.start()
        if not _cached:
            _lock.wait(wait_s)
        return dict(_cached) or None


def _probe_while_asked() -> None:
    global _cached
    while True:
        with _lock:
            if time.monotonic() - _asked_at > IDLE_STOP_S:
                _cached = {}  # stale by now: the next page waits for a fresh probe
                return
        try:
            value = probe()
        except Exception as exc:  # noqa: BLE001 - the thread must outlive one bad probe
            log.warning("health probe failed: %s", exc)
            value = {
                "services": [],
                "functions": {},
                "replica_problems": [f"health probe failed: {exc}"],
                "alerts": [],
                "scaling": {},
                "probed_at": time.time(),
            }
        with _lock:
            _cached = value
            _lock.notify_all()
        time.sleep(PROBE_EVERY_S)


def probe() -> dict:
    """One probe of the servers (directly), the replicas (Prometheus), alerts and scaling (Postgres)."""
    settings = data.settings()
    services = [s.as_dict() for s in Stack(settings).status() if s.name != "dashboard"]
    try:
        replicas = replica_health(settings)
        functions = replicas.functions
        replica_problems = replicas.supervisor_problems()
    except PrometheusUnavailable:
        functions, replica_problems = (
            {},
            [f"replica health comes from Prometheus ({settings.prometheus_url}), which does not answer"],
        )
    try:
        alerts, scaling = data.read(active_alerts), data.read(latest_scaling)
    except Exception:  # noqa: BLE001 - Postgres away: the services list says so already
        alerts, scaling = [], {}
    return {
        "services": services,
        "functions": functions,
        "replica_problems": replica_problems,
        "alerts": alerts,
        "scaling": scaling,
        "probed_at": time.time(),
    }
