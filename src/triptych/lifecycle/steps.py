"""Recording a workflow step in `pipeline_steps` as it runs: started, progress,
and how it ended (with its MLflow run), so the run can be followed from the
dashboard, the API and `triptych runs show` while it goes."""

from __future__ import annotations

import logging
import time

from ..db import runs
from ..db.connection import Database

log = logging.getLogger("triptych.lifecycle")


class RunCancelled(RuntimeError):
    """Someone cancelled the run this step belongs to (`runs.request_cancel`)."""


class Step:
    """A context manager: the step succeeds when the block ends, fails (with the
    error) when it raises. Without a run id (a training outside a workflow, such as
    `models bootstrap`) nothing is recorded."""

    def __init__(self, db: Database | None, run_id: str | None, name: str, mlrun_run_uid: str | None = None):
        self.db = db if run_id else None
        self.run_id = run_id
        self.name = name
        self.mlrun_run_uid = mlrun_run_uid
        self.result: dict | None = None
        self.mlflow_run_id: str | None = None
        self.state = "succeeded"
        self._last_progress = 0.0

    def __enter__(self) -> Step:
        if self.db:
            self.db.transaction(lambda cur: runs.start_step(cur, self.run_id, self.name, self.mlrun_run_uid))
        return self

    def progress(self, fields: dict, every_s: float = 2.0, force: bool = False) -> None:
        """Record progress, at most every `every_s` seconds (training reports often),
        and stop here (RunCancelled) when the run has been cancelled meanwhile."""
        now = time.monotonic()
        if self.db and (force or now - self._last_progress >= every_s):
            self._last_progress = now
            asked = self.db.transaction(
                lambda cur: (
                    runs.step_progress(cur, self.run_id, self.name, fields),
                    runs.cancel_requested(cur, self.run_id),
                )[1]
            )
            if asked:
                raise RunCancelled(f"run {self.run_id} was cancelled")

    def done(self, result: dict, mlflow_run_id: str | None = None, state: str = "succeeded") -> None:
        self.result, self.mlflow_run_id, self.state = result, mlflow_run_id, state

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.db:
            if isinstance(exc, RunCancelled):
                self.db.transaction(
                    lambda cur: runs.finish_step(
                        cur, self.run_id, self.name, "cancelled", self.result, str(exc), self.mlflow_run_id
                    )
                )
            elif exc is not None:
                error = f"{type(exc).__name__}: {exc}"
                self.db.transaction(
                    lambda cur: runs.finish_step(
                        cur, self.run_id, self.name, "failed", self.result, error, self.mlflow_run_id
                    )
                )
            else:
                self.db.transaction(
                    lambda cur: runs.finish_step(
                        cur, self.run_id, self.name, self.state, self.result, None, self.mlflow_run_id
                    )
                )
        return False


def describe_step(step: dict) -> str:
    """One line for a step: its progress while it runs, else its outcome (CLI, dashboard)."""
    p, r = step.get("progress") or {}, step.get("result") or {}
    if step["state"] == "running" and p.get("images_total"):
        acc = f", held-out {p['test_accuracy']:.3f}" if p.get("test_accuracy") is not None else ""
        left = f", ~{p['seconds_left'] / 60:.1f} min left" if p.get("seconds_left") is not None else ""
        return f"epoch {p.get('epoch')}/{p.get('epochs')}, {p['images_done']}/{p['images_total']} images{acc}{left}"
    if step["state"] == "running" and p.get("stage"):
        return p["stage"]
    if step["state"] == "failed":
        return f"failed: {step.get('error')}"
    if step["state"] == "cancelled":
        return "cancelled"
    if "outcome" in r:
        return f"v{r.get('version')}: {r['outcome']} ({r.get('reason')})"
    if "accuracy" in r and "champion_accuracy" in r:
        if r["champion_accuracy"] is None:
            return (
                f"v{r.get('version')} held-out {r['accuracy']:.3f} on {r.get('held_out_images')} images (no champion)"
            )
        return (
            f"v{r.get('version')} held-out {r['accuracy']:.3f}, champion v{r.get('champion')} "
            f"{r['champion_accuracy']:.3f} on the same {r.get('held_out_images')} images"
        )
    if "version" in r:
        return f"v{r['version']} registered, {r.get('train_images')} images, {r.get('seconds', 0):.0f}s"
    if "dataset_id" in r:
        return (
            f"{r['dataset_id']}: +{r.get('labelled_train', 0)} labelled to train, +{r.get('labelled_test', 0)} held out"
        )
    return ", ".join(f"{k} {v}" for k, v in list(r.items())[:6]) if r else step["state"]
