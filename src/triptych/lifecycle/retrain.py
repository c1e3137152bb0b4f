"""The retrain function's logic: a retraining run started over HTTP (or by its
weekly cron) returns at once with a run id; the run is the project's `retrain`
MLRun workflow (gather, train in parallel, evaluate, gate: see
triptych.lifecycle), run in the background, its steps and outcome recorded in
`pipeline_runs` and `pipeline_steps`.

One run at a time per replica: training takes every core, and a second request
while one runs gets 409 with the running run's id instead of thrashing both.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from ..config import Settings
from ..db import runs
from ..db.connection import Database
from ..models.priority import lower_for_training
from ..models.zoo import ARCHITECTURES
from ..sdk.metrics import BACKGROUND_WORK
from ..security import AuthError, Guard

WORKFLOW = "retrain"

# An HTTP answer: (status, JSON body, extra headers).
Reply = tuple[int, dict, dict[str, str]]


class RetrainRequest(BaseModel):
    """What to retrain, and how a better model gets promoted."""

    model_config = {"extra": "forbid"}

    models: list[str] = Field(
        default_factory=lambda: list(ARCHITECTURES), min_length=1, description=f"any of {', '.join(ARCHITECTURES)}"
    )
    quick: bool = Field(False, description="a smoke budget (minutes) instead of the full one")
    policy: Literal["if-better", "always", "never"] = Field(
        "if-better",
        description="if-better: the gate (better by the margin -> shadow -> champion); always: "
        "champion at once; never: register only",
    )
    dataset_id: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="the base data set in MinIO (default: the champions', "
        "else the generated one); images labelled since are added",
    )

    @field_validator("models")
    @classmethod
    def _known(cls, models: list[str]) -> list[str]:
        unknown = [m for m in models if m not in ARCHITECTURES]
        if unknown:
            raise ValueError(f"unknown models {unknown}; one of {list(ARCHITECTURES)}")
        return list(dict.fromkeys(models))


def parse_request(body: bytes | str | dict | None) -> RetrainRequest:
    """A request body as a RetrainRequest; ValueError with the reason for anything else."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body or "{}")
        except ValueError as exc:
            raise ValueError(f"the body must be JSON: {exc}") from exc
    try:
        return RetrainRequest.model_validate(body or {})
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        ) from exc


class Busy(RuntimeError):
    def __init__(self, run_id: str):
        super().__init__(f"retraining run {run_id} is still running; wait for it (GET /retrain/{run_id})")
        self.run_id = run_id


class Retrainer:
    def __init__(self, settings: Settings, db: Database | None = None, guard: Guard | None = None):
        self.settings = settings
        self.db = db or Database(settings)
        self.guard = guard or Guard(settings, self.db)
        self._lock = threading.Lock()
        self._running: str | None = None

    def recover(self) -> int:
        """Runs a dead process left unfinished (no heartbeat for a while) end as failed."""
        return self.db.transaction(
            lambda cur: runs.fail_unfinished(
                cur, WORKFLOW, "the retrain function stopped while this run was in progress"
            )
        )

    def start(self, request: RetrainRequest, requested_by: str, wait: bool = False) -> dict:
        """Record a run and train in the background (or here, with `wait`)."""
        with self._lock:
            running = self._running
            if running and not self.db.transaction(lambda cur: runs.cancel_requested(cur, running)):
                raise Busy(running)  # a cancelled run (through the API, the CLI) winds down beside a new one
            run = self.db.transaction(lambda cur: runs.create_run(cur, WORKFLOW, request.model_dump(), requested_by))
            run_id = self._running = str(run["run_id"])
        if wait:
            self._execute(run_id, request)
        else:
            threading.Thread(target=self._execute, args=(run_id, request), name="retrain", daemon=True).start()
        return run

    def _execute(self, run_id: str, request: RetrainRequest) -> None:
        from .workflow import (
            run_retrain_workflow,  # MLRun is imported when a run starts
        )

        result: dict = {}
        error = None
        cancelled = False
        done = threading.Event()

        def beat() -> None:  # a sign of life, so no other process takes this run for dead
            while not done.wait(runs.HEARTBEAT_S):
                try:
                    self.db.transaction(lambda cur: runs.heartbeat(cur, run_id))
                except Exception:  # noqa: BLE001 - a missed beat is retried at the next
                    pass

        threading.Thread(target=beat, name="retrain-heartbeat", daemon=True).start()
        # Gathering and rendering the data set is training work too: from here on this
        # thread, and the trainings it starts, yield the CPU to the stream.
        lower_for_training()
        BACKGROUND_WORK.inc()  # the function may scale to zero, never under a running run
        try:
            self.db.transaction(lambda cur: runs.start_run(cur, run_id))
            result = run_retrain_workflow(
                run_id, request.models, self.settings, request.quick, request.policy, request.dataset_id or "", self.db
            )
        except Exception as exc:  # noqa: BLE001 - the run records why it failed
            cancelled = self.db.transaction(lambda cur: runs.cancel_requested(cur, run_id))
            error = None if cancelled else f"{type(exc).__name__}: {exc}"
        finally:
            BACKGROUND_WORK.dec()
            done.set()
            self.db.transaction(lambda cur: runs.finish_run(cur, run_id, result, error, cancelled))
            with self._lock:
                if self._running == run_id:  # a cancel may have handed the slot to a new run already
                    self._running = None

    def cancel(self, run_id: str, by: str) -> dict | None:
        """Ask the run to stop (at its next progress report) and free the slot now, so
        a new run may start while this one winds down. None: no such run."""
        run = self.db.transaction(lambda cur: runs.request_cancel(cur, run_id, by))
        if run is not None and run["state"] in ("queued", "running"):
            with self._lock:
                if self._running == run_id:
                    self._running = None
        return run

    def handle(self, path: str, method: str, body, headers: dict[str, str]) -> Reply:
        """The function's HTTP surface: POST /retrain, GET /retrain, GET /retrain/{run_id},
        DELETE /retrain/{run_id} (cancel)."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["retrain"] or len(parts) > 2:
            return (
                404,
                {"error": f"no route {method} {path}; POST /retrain, GET /retrain/RUN_ID", "code": "not_found"},
                {},
            )
        try:
            if method == "GET":
                self.guard.check_read(headers)
                return self._show(parts[1] if len(parts) == 2 else None)
            if method == "DELETE" and len(parts) == 2:
                principal = self.guard.require(headers, "admin")
                return self._cancel(parts[1], principal.subject)
            if method != "POST" or len(parts) != 1:
                return (
                    405,
                    {
                        "error": f"{path} takes GET (DELETE cancels a run); POST /retrain starts a run",
                        "code": "method_not_allowed",
                    },
                    {},
                )
            principal = self.guard.require(headers, "admin")
            request = parse_request(body)
            run = self.start(request, principal.subject)
        except AuthError as exc:
            return exc.status, {"error": str(exc), "code": exc.code}, exc.headers
        except ValueError as exc:
            return 400, {"error": str(exc), "code": "bad_request"}, {}
        except Busy as exc:
            return 409, {"error": str(exc), "code": "busy", "run_id": exc.run_id}, {}
        return (
            202,
            {"run_id": str(run["run_id"]), "state": run["state"], "status_path": f"/retrain/{run['run_id']}"},
            {},
        )

    def _cancel(self, run_id: str, by: str) -> Reply:
        try:
            run_id = str(uuid.UUID(run_id))
        except ValueError:
            return 404, {"error": f"{run_id[:60]!r} is not a run id", "code": "not_found"}, {}
        run = self.cancel(run_id, by)
        if run is None:
            return 404, {"error": f"no retraining run {run_id}", "code": "not_found"}, {}
        if run["state"] not in ("queued", "running"):
            return (
                409,
                {"error": f"run {run_id} already ended {run['state']}", "code": "finished", "state": run["state"]},
                {},
            )
        return 202, json.loads(json.dumps(run, default=str)), {}

    def _show(self, run_id: str | None) -> Reply:
        if run_id is None:
            return 200, {"runs": json.loads(json.dumps(self.db.transaction(runs.recent_runs), default=str))}, {}
        try:
            run_id = str(uuid.UUID(run_id))
        except ValueError:
            return 404, {"error": f"{run_id[:60]!r} is not a run id", "code": "not_found"}, {}
        run = self.db.transaction(lambda cur: runs.get_run(cur, run_id))
        if run is None:
            return 404, {"error": f"no retraining run {run_id}", "code": "not_found"}, {}
        return 200, json.loads(json.dumps(run, default=str)), {}
