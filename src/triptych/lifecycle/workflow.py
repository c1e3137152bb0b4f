"""Running the project's `retrain` workflow (projects/workflows/retrain.py) with
MLRun's local engine, for one recorded run (`pipeline_runs`)."""

from __future__ import annotations

import os
import tempfile

from ..config import REPO_ROOT, Settings
from ..db import runs
from ..db.connection import Database

WORKFLOW = "retrain"


def load_project():
    """The MLRun project as declared in project.yaml (functions, jobs, workflows)."""
    os.environ.setdefault("MLRUN_LOG_LEVEL", "ERROR")  # it warns on every call that no API server is set
    import mlrun

    return mlrun.load_project(context=str(REPO_ROOT), name="triptych", save=False)


def run_retrain_workflow(
    run_id: str,
    models: list[str],
    settings: Settings,
    quick: bool = False,
    policy: str = "if-better",
    dataset_id: str = "",
    db: Database | None = None,
    overrides: dict | None = None,
) -> dict:
    """Run the workflow to its end; raises with the workflow's error when it failed.
    Returns each model's outcome, read from the steps the run recorded."""
    db = db or Database(settings)
    project = load_project()
    with tempfile.TemporaryDirectory(prefix="triptych-mlrun-") as artifacts:  # models go to MLflow, not here
        status = project.run(
            WORKFLOW,
            arguments={
                "run_id": run_id,
                "models": ",".join(models),
                "dataset_id": dataset_id,
                "quick": quick,
                "policy": policy,
                "parallel": settings.retrain_parallel,
                "overrides": overrides or {},
            },
            engine="local",
            local=True,
            watch=False,
            artifact_path=artifacts,
        )
    if status.run_id:
        db.transaction(lambda cur: runs.set_workflow_id(cur, run_id, status.run_id))
    if status.exc is not None or str(status.state).lower() != "succeeded":
        raise RuntimeError(f"the retrain workflow failed: {status.exc or status.state}")
    steps = db.transaction(lambda cur: runs.steps_of(cur, [run_id]))[run_id]
    return {
        "outcomes": {s["step"].split(":", 1)[1]: s["result"] for s in steps if s["step"].startswith("gate:")},
        "training_set": next((s["result"] for s in steps if s["step"] == "gather"), None),
    }
