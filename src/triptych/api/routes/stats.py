"""How the models do: a summary per model over a window, and the per-minute time
series the aggregate function keeps in `model_metrics`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query

from ...db import queries
from ..deps import Reader, Svc
from ..errors import ApiError, responses
from ..schemas import Instant, ModelStatsReply, PerformanceReply

router = APIRouter(prefix="/stats", tags=["stats"])

MAX_RANGE = timedelta(days=31)


@router.get("/models", response_model=ModelStatsReply, responses=responses(401, 422))
def model_stats(svc: Svc, _: Reader,
                window_s: Annotated[int, Query(ge=10, le=86_400, description="seconds back from now")] = 3600):
    """Per model over the last `window_s` seconds: predictions, p50/p95 latency, confidence, accuracy."""
    return {"window_s": window_s, "models": svc.read(queries.per_model, window_s)}


@router.get("/performance", response_model=PerformanceReply, responses=responses(400, 401, 422))
def performance(svc: Svc, _: Reader, since: Instant | None = None, until: Instant | None = None,
                model: str | None = None):
    """Per-minute windows of each model version (oldest first): counts, latency
    percentiles, confidence, accuracy, agreement. Default: the last hour; at most 31 days."""
    end = until or datetime.now(timezone.utc)
    try:
        start = since or end - timedelta(hours=1)
    except OverflowError as exc:
        raise ApiError(400, "bad_time_range", "`until` is out of range") from exc
    if not timedelta(0) < end - start <= MAX_RANGE:
        raise ApiError(400, "bad_time_range", "`since` must be before `until`, and at most 31 days before it")
    return {"since": start, "until": end, "windows": svc.read(queries.performance_series, start, end, model)}
