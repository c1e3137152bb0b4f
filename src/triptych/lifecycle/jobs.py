"""Running a scheduled job by name, as an MLRun job (local), recorded as a
`pipeline_runs` row with one step, so the Models page and `triptych runs` show
when each job ran and what it found."""

from __future__ import annotations

import importlib.util

from ..config import REPO_ROOT, Settings
from ..db import runs
from ..db.connection import Database

JOB_FILE = REPO_ROOT / "projects" / "jobs" / "lifecycle_jobs.py"
# name -> (MLRun handler, recorded as a run?)
JOBS = {
    "data-quality": ("data_quality", True),
    "metrics": ("metrics_snapshot", True),
    "shadow-gate": ("shadow_gate", False),  # every minute: only its decisions are recorded (system_events)
    "drift": ("drift_watch", False),  # every minute: only detections are recorded (system_events)
}


# When the `jobs` function's cron triggers run each (see projects/triptych_project.py).
SCHEDULES = {
    "data-quality": "daily at 02:30 UTC",
    "metrics": "hourly at :05",
    "shadow-gate": "every 60 s",
    "drift": "every 60 s",
}


class UnknownJob(ValueError):
    pass


def run_job(name: str, settings: Settings, requested_by: str = "cli", db: Database | None = None) -> dict:
    """Run the job to its end; returns {"run_id", "state", "result", "error"}."""
    if name not in JOBS:
        raise UnknownJob(f"no job {name!r}; one of {', '.join(JOBS)}")
    handler, recorded = JOBS[name]
    db = db or Database(settings)
    run_id = None
    if recorded:
        run_id = str(db.transaction(lambda cur: runs.create_run(cur, name, {}, requested_by))["run_id"])
        db.transaction(lambda cur: runs.start_run(cur, run_id))
    error = None
    result: dict = {}
    try:
        if _mlrun_installed():
            from ..models.bootstrap import run_local_job  # MLRun is imported when a job runs

            run = run_local_job(name, JOB_FILE, handler, {"run_id": run_id or ""})
            result = dict(run.status.results)
            if run.status.state != "completed":
                error = run.status.error or f"the job ended {run.status.state}"
        else:
            result = _run_plain(handler, run_id)
    except Exception as exc:  # noqa: BLE001 - recorded on the run
        error = f"{type(exc).__name__}: {exc}"
    if run_id:
        db.transaction(lambda cur: runs.finish_run(cur, run_id, result, error))
    return {"run_id": run_id, "state": "failed" if error else "succeeded", "result": result, "error": error}


def _mlrun_installed() -> bool:
    return importlib.util.find_spec("mlrun") is not None


class _Results:
    """The part of MLRun's context the job handlers use: the results they log."""

    def __init__(self) -> None:
        self.results: dict = {}

    def log_result(self, key: str, value: object) -> None:
        self.results[key] = value

    def log_results(self, results: dict) -> None:
        self.results.update(results)


def _run_plain(handler: str, run_id: str | None) -> dict:
    """Where MLRun is not installed (the serving image the `jobs` function runs from on
    Kubernetes: MLRun's wheels would double it), the handler is a plain call."""
    from . import job_handlers

    context = _Results()
    getattr(job_handlers, handler)(context, run_id=run_id or "")
    return context.results
