"""What this is (`/`), whether it can work (`/health`), and its metrics (`/metrics`)."""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...observe.prometheus import PrometheusUnavailable
from ...observe.replicas import replica_health
from ...stack.manager import Stack
from ..deps import Svc
from ..schemas import Health

router = APIRouter(tags=["meta"])

# The servers a request may need; the dashboard and the API itself are not dependencies.
DEPENDENCIES = ("postgres", "kafka", "minio", "mlflow")
PROBE_EVERY_S = 2.0
_probe_lock = threading.Lock()
_probed: dict[int, tuple[float, dict]] = {}  # per settings object (one per app)


@router.get("/")
def root(request: Request, svc: Svc):
    """Links to everything this API serves."""
    base = str(request.base_url).rstrip("/")
    return {
        "name": "Triptych query API",
        "what": "three image classifiers compared live; read their answers, upload images, manage models",
        "docs": f"{base}/docs",
        "openapi": f"{base}/openapi.json",
        "graphql": f"{base}/graphql",
        "health": f"{base}/health",
        "metrics": f"{base}/metrics",
        "dashboard": svc.settings.dashboard_url,
        "auth": "writes need an API key (Authorization: Bearer <key> or X-API-Key); `triptych keys create`",
    }


def probe(settings) -> dict:
    """Each dependency's state and each function's replicas, probed at most every 2 s."""
    with _probe_lock:
        at, value = _probed.get(id(settings), (0.0, {}))
        if value and time.monotonic() - at < PROBE_EVERY_S:
            return value
        stack = Stack(settings)
        services = {name: stack.service(name).status().state for name in DEPENDENCIES}
        problems = [f"{name} is {state}" for name, state in services.items() if state != "up"]
        # Replicas may run on any host: Prometheus, which scrapes every supervisor, counts them.
        try:
            replicas = replica_health(settings)
            functions = {
                name: {k: c[k] for k in ("desired", "running", "starting")} for name, c in replicas.functions.items()
            }
            problems += replicas.problems()
        except PrometheusUnavailable as exc:
            functions = {}
            if settings.monitoring_autostart or settings.prometheus_endpoint:  # else none was ever wanted
                problems.append(f"function replicas unknown: {exc}")
        value = {
            "status": "degraded" if problems else "ok",
            "services": services,
            "functions": functions,
            "problems": problems,
        }
        _probed[id(settings)] = (time.monotonic(), value)
        return value


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "a dependency is down"}})
def health(svc: Svc):
    """Each dependency's real state (Postgres, Kafka, MinIO, MLflow) and each function's
    replicas; 503 when any is down. Open, like /metrics: probes carry no key, and it
    shows no image, label or result."""
    value = probe(svc.settings)
    return JSONResponse(value, status_code=200 if value["status"] == "ok" else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics():
    """Prometheus metrics of this API process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
