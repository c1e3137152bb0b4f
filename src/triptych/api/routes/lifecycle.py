"""The models' lifecycle: which version serves, retraining runs, and clearing results."""

from __future__ import annotations

import json
from uuid import UUID

import httpx2 as httpx
from fastapi import APIRouter, Request

from ...db import runs
from ...lifecycle.retrain import RetrainRequest
from ..deps import Admin, Reader, Svc
from ..errors import ApiError, responses
from ..schemas import ClearReply, ClearRequest, ModelEntry, PipelineRun, RetrainStarted

router = APIRouter(tags=["models"])
admin_router = APIRouter(tags=["admin"])


@router.get("/models", response_model=list[ModelEntry], responses=responses(401, 503))
def models(svc: Svc, _: Reader):
    """Each model's champion (serving), challenger (in waiting) and newest versions, from the MLflow registry."""
    from ...models import registry

    try:
        overview = registry.overview(svc.settings)
    except Exception as exc:  # noqa: BLE001 - MLflow away is a 503, not a crash
        raise ApiError(503, "registry_unavailable", f"the MLflow registry cannot be reached: {exc}") from exc
    entries = []
    for name, versions in overview.items():
        rows = [{**v.__dict__, "aliases": list(v.aliases)} for v in versions]
        entries.append(
            {
                "model_name": name,
                "versions": rows,
                "champion": next((r for r in rows if registry.CHAMPION in r["aliases"]), None),
                "challenger": next((r for r in rows if registry.CHALLENGER in r["aliases"]), None),
            }
        )
    return entries


@router.post("/retrain", status_code=202, response_model=RetrainStarted, responses=responses(400, 401, 403, 409, 503))
def retrain(body: RetrainRequest, request: Request, svc: Svc, _: Admin):
    """Start a retraining run on the retrain function; returns at once with its id."""
    auth = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")}
    try:
        reply = httpx.post(f"{svc.settings.retrain_url}/retrain", json=body.model_dump(), headers=auth, timeout=30)
    except httpx.HTTPError as exc:
        raise ApiError(
            503,
            "retrain_unavailable",
            f"the retrain function at {svc.settings.retrain_url} cannot be reached ({exc}); is it scaled to 0?",
        ) from exc
    answer = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
    if reply.status_code != 202:
        raise ApiError(
            reply.status_code if reply.status_code < 500 else 503,
            answer.get("code", "retrain_refused"),
            answer.get("error", reply.text[:300]),
            {"run_id": answer["run_id"]} if "run_id" in answer else None,
        )
    return {
        "run_id": answer["run_id"],
        "state": answer["state"],
        "status_url": f"{svc.settings.results_base_url}/retrain/{answer['run_id']}",
    }


@router.get("/retrain", response_model=list[PipelineRun], responses=responses(401))
def retrain_runs(svc: Svc, _: Reader):
    """The newest retraining runs, newest first, each with its steps."""
    return svc.read(runs.recent_runs, 20, "retrain", True)


@router.get("/retrain/{run_id}", response_model=PipelineRun, responses=responses(401, 404, 422))
def retrain_run(run_id: UUID, svc: Svc, _: Reader):
    """A retraining run's state: queued, running, succeeded (with each model's outcome) or failed (with why),
    and each step's (gather, train, evaluate and gate per model) with its progress."""
    run = svc.read(runs.get_run, str(run_id))
    if run is None:
        raise ApiError(404, "unknown_run", f"no retraining run {run_id}")
    return run


@router.delete(
    "/retrain/{run_id}", status_code=202, response_model=PipelineRun, responses=responses(401, 403, 404, 409, 422)
)
def cancel_retrain_run(run_id: UUID, svc: Svc, admin: Admin):
    """Cancel a retraining run: its training stops at the next progress report (a few batches), the run and the
    step end `cancelled` with who asked, the champion stays as it was, and the retrain function takes a new run."""
    run = svc.db.transaction(lambda cur: runs.request_cancel(cur, str(run_id), admin.subject))
    if run is None:
        raise ApiError(404, "unknown_run", f"no retraining run {run_id}")
    if run["state"] not in ("queued", "running"):
        raise ApiError(409, "finished", f"run {run_id} already ended {run['state']}")
    return {**run, "steps": svc.read(runs.steps_of, [str(run_id)]).get(str(run_id), [])}


CLEAR = """
WITH p AS (DELETE FROM predictions WHERE %(before)s::timestamptz IS NULL OR created_at < %(before)s RETURNING 1),
     -- the int8 twin's answers (int8_predictions) count as predictions: they go with them
     i AS (DELETE FROM int8_predictions WHERE %(before)s::timestamptz IS NULL OR created_at < %(before)s RETURNING 1),
     c AS (DELETE FROM model_comparisons WHERE %(before)s::timestamptz IS NULL OR created_at < %(before)s RETURNING 1),
     m AS (DELETE FROM model_metrics WHERE %(before)s::timestamptz IS NULL OR window_start < %(before)s RETURNING 1)
SELECT (SELECT count(*) FROM p) + (SELECT count(*) FROM i) AS predictions, (SELECT count(*) FROM c) AS comparisons,
       (SELECT count(*) FROM m) AS metrics_windows
"""


@admin_router.post("/admin/clear-predictions", response_model=ClearReply, responses=responses(401, 403, 422))
def clear_predictions(body: ClearRequest, svc: Svc, principal: Admin):
    """Delete predictions, comparisons and metric windows (all, or those older than
    `older_than`). Images and their bytes stay; the deletion is recorded in system_events,
    in the same transaction: no deletion without its record."""

    def clear(cur):
        cur.execute(CLEAR, {"before": body.older_than})
        counts = dict(cur.fetchone())
        cur.execute(
            "SELECT log_system_event('predictions_cleared', 'warning', 'api', %s, %s::jsonb)",
            (
                f"{principal.subject} cleared {counts['predictions']} predictions",
                json.dumps({**counts, "older_than": body.older_than}, default=str),
            ),
        )
        return counts

    return svc.db.transaction(clear)
