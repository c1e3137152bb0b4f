"""The dashboard's own Prometheus metrics (`/metrics`): requests by kind and
status, their time, and the process' CPU and memory (prometheus_client's defaults)."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter("triptych_dashboard_requests_total", "Dashboard HTTP requests", ("kind", "status"))
SECONDS = Histogram(
    "triptych_dashboard_request_seconds",
    "Dashboard request time",
    ("kind",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def _kind(path: str) -> str:
    """A bounded label: callbacks, media, assets, pages (never the raw path)."""
    if path.startswith("/_dash-update-component"):
        return "callback"
    if path.startswith("/media/"):
        return "media"
    if path.startswith(("/assets/", "/_dash-component-suites/", "/_favicon")):
        return "static"
    return "page"


def register_metrics(server: Flask) -> None:
    @server.before_request
    def started():
        g.started = time.perf_counter()

    @server.after_request
    def count(response):
        if request.path != "/metrics":
            kind = _kind(request.path)
            REQUESTS.labels(kind, str(response.status_code)).inc()
            SECONDS.labels(kind).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        return response

    @server.route("/metrics")
    def metrics():
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
