"""The Prometheus metrics of a function's handler calls, recorded by the delivery
wrapper (retries, dead letters) and by the local runner (events, latency, batch
sizes, lag). One registry per process: every replica serves its own."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

LABELS = ("function", "trigger")

EVENTS = Counter("triptych_function_events_total", "Events handled successfully", LABELS)
ERRORS = Counter("triptych_function_errors_total", "Handler invocations that raised", LABELS)
RETRIES = Counter("triptych_function_retries_total", "Re-invocations after an error", LABELS)
DEAD_LETTERS = Counter("triptych_function_dead_letters_total", "Events given up on and dead-lettered", LABELS)
SKIPPED = Counter("triptych_function_skipped_total", "Replayed events addressed to another function", LABELS)
HANDLER_SECONDS = Histogram(
    "triptych_function_handler_seconds",
    "Handler latency per invocation (a batch counts once)",
    LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "triptych_function_batch_size", "Events per handler invocation", LABELS, buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
CONSUMER_LAG = Gauge(
    "triptych_function_consumer_lag", "Messages behind the end of the partition", ("function", "topic", "partition")
)
# Work a handler started and left running after it returned (a retraining run): the
# scaler never stops a replica that has some, however idle its handler looks.
BACKGROUND_WORK = Gauge("triptych_function_background_work", "Units of work running in the background of a replica")


# Set by the Helm chart on every NuclioFunction, with the pod annotations
# `prometheus.io/scrape` and `prometheus.io/port` that its Prometheus keeps.
POD_METRICS_PORT_ENV = "TRIPTYCH_POD_METRICS_PORT"


def serve_in_pod() -> int | None:
    """On Kubernetes, this process's metrics at `:$TRIPTYCH_POD_METRICS_PORT/metrics`,
    for the chart's Prometheus: the jobs function's wake gauges reach KEDA that way
    (`triptych_wake_condition` wakes infer-shadow). Nuclio's processor serves only its
    own Go metrics. Locally the variable is unset: each replica's admin endpoint
    serves the same registry. Returns the port, or None when nothing was started."""
    port = os.environ.get(POD_METRICS_PORT_ENV)
    if not port:
        return None
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every Nuclio trigger runs in a worker process of its own (the jobs function's
        # crons among them); the chart gives them one folder, and whichever process
        # holds the port serves all of theirs.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        start_http_server(int(port), registry=registry)
    except OSError:  # another worker process of this pod holds the port, and serves ours too
        return None
    return int(port)
