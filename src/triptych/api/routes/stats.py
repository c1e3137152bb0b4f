"""How the models do: a summary per model over a window, and the per-minute time
series the aggregate function keeps in `model_metrics`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from ...db import queries
from ...figures.ranges import range_calibration, range_int8, range_significance
from ..deps import Reader, Svc
from ..errors import responses
from ..schemas import (
    CalibrationReply,
    DriftReply,
    Instant,
    Int8Reply,
    ModelStatsReply,
    PerformanceReply,
    SignificanceReply,
)
from ..time_window import stats_window

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("/models", response_model=ModelStatsReply, responses=responses(401, 422))
def model_stats(
    svc: Svc, _: Reader, window_s: Annotated[int, Query(ge=10, le=86_400, description="seconds back from now")] = 3600
):
    """Per model over the last `window_s` seconds: predictions, p50/p95 latency, confidence, accuracy, and
    the expected calibration error on the labelled images."""
    end = datetime.now(UTC)
    models = svc.read(queries.per_model, window_s)
    calibration = svc.read(range_calibration, end - timedelta(seconds=window_s), end)
    return {
        "window_s": window_s,
        "models": [{**m, "ece": calibration.get(m["model_name"], {}).get("ece")} for m in models],
    }


@router.get("/performance", response_model=PerformanceReply, responses=responses(400, 401, 422))
def performance(
    svc: Svc, _: Reader, since: Instant | None = None, until: Instant | None = None, model: str | None = None
):
    """Per-minute windows of each model version (oldest first): counts, latency
    percentiles, confidence, accuracy, agreement. Default: the last hour; at most 31 days."""
    start, end = stats_window(since, until)
    return {"since": start, "until": end, "windows": svc.read(queries.performance_series, start, end, model)}


@router.get("/significance", response_model=SignificanceReply, responses=responses(400, 401, 422))
def significance(svc: Svc, _: Reader, since: Instant | None = None, until: Instant | None = None):
    """Is one model really more accurate than another? On the labelled images every
    model answered in [since, until) (default: the last hour; the newest 10,000
    compared images at most): for each pair, McNemar's exact test on the images
    only one of the two got right (`b`, `c`) and a 95 % paired bootstrap interval of
    the accuracy difference; for all models at once, Cochran's Q."""
    start, end = stats_window(since, until)
    result = svc.read(range_significance, start, end, list(svc.settings.active_models))
    return {"since": start, "until": end, **result}


@router.get("/int8", response_model=Int8Reply, responses=responses(400, 401, 422))
def int8(svc: Svc, _: Reader, since: Instant | None = None, until: Instant | None = None):
    """int8 beside fp32, live: per champion version the int8 twin (`infer-int8`) answered
    in [since, until) (default: the last hour), the top-1 agreement with the same version's
    fp32 answers to the same images, each one's p50 forward time, and on the labelled
    images fp32 against int8 (McNemar's exact test, its interval and verdict). Empty
    while no champion has a published int8 export (`triptych models quantize`)."""
    start, end = stats_window(since, until)
    return {"since": start, "until": end, "models": svc.read(range_int8, start, end)}


@router.get("/calibration", response_model=CalibrationReply, responses=responses(400, 401, 422))
def calibration(svc: Svc, _: Reader, since: Instant | None = None, until: Instant | None = None):
    """Does 90 % confidence mean 90 %? Per model, on the labelled images in [since, until)
    (default: the last hour; the newest 30,000 answers at most): 10 equal-width bins
    of top-1 confidence, each with its answers, mean confidence and accuracy (a
    reliability diagram), and the expected calibration error."""
    start, end = stats_window(since, until)
    models = svc.read(range_calibration, start, end)
    return {"since": start, "until": end, "models": [{"model_name": m, **c} for m, c in models.items()]}


@router.get("/drift", response_model=DriftReply, responses=responses(401, 422))
def drift(svc: Svc, _: Reader):
    """Each drift detector's state as the drift job (every minute) last left it."""
    detectors = svc.read(queries.drift_state)
    return {"detectors": detectors, "drifting": [d["detector"] for d in detectors if d["status"] == "drift"]}
