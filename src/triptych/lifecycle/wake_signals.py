"""What KEDA wakes the shadow and int8 twins on, on Kubernetes: one gauge, 1 while
a wake condition holds and 0 once it no longer does, set by the jobs function's
minute-by-minute review (`triptych.runtime.kube_scaling` queries it).

A value, never a series that comes and goes: in a function pod every Nuclio
trigger runs in a worker process of its own, and their metrics are one registry
through prometheus_client's multiprocess mode (`triptych.sdk.metrics.serve_in_pod`),
where a removed series keeps its last value. `mostrecent`: the value last set, by
whichever process set it, is the one served.
"""

from __future__ import annotations

from prometheus_client import Gauge

WAKE_CONDITION = Gauge(
    "triptych_wake_condition",
    "1 while the condition holds (challenger: a challenger is in shadow; int8: a champion has a published int8 export)",
    ("condition",),
    multiprocess_mode="mostrecent",
)


def signal(condition: str, holds: bool) -> None:
    WAKE_CONDITION.labels(condition).set(1 if holds else 0)
