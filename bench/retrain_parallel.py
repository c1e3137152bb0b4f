"""Retraining wall time: the `retrain` workflow's trainings one after another
(parallel 1, as the retrain function did before) vs at once, one per core (the
default), in the same run, on the same training set and budget.

Each variant is a real workflow run (gather, train, evaluate, gate) recorded in
pipeline_runs, with promotion policy `never`, so the registry's champions stay.
Prints each variant's wall time, each training step's time, and the ratio.

    .venv/bin/triptych up      # the stack must be running
    .venv/bin/python bench/retrain_parallel.py [--models resnet50,mobilenet_v2,efficientnet_b0]
                                               [--quick] [--train-count 2000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import time

from triptych.config import Settings
from triptych.db import runs
from triptych.db.connection import Database
from triptych.lifecycle.workflow import run_retrain_workflow


def variant(settings: Settings, db: Database, models: list[str], parallel: int, quick: bool,
            overrides: dict) -> tuple[float, dict[str, float]]:
    settings = Settings(**{**settings.model_dump(), "retrain_parallel": parallel})
    run_id = str(db.transaction(lambda cur: runs.create_run(cur, "retrain", {"bench": parallel}, "bench"))["run_id"])
    db.transaction(lambda cur: runs.start_run(cur, run_id))
    started = time.monotonic()
    error = None
    try:
        result = run_retrain_workflow(run_id, models, settings, quick=quick, policy="never", db=db,
                                      overrides=overrides)
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised
        error, result = str(exc), {}
        raise
    finally:
        wall = time.monotonic() - started
        db.transaction(lambda cur: runs.finish_run(cur, run_id, result, error))
    steps = db.transaction(lambda cur: runs.steps_of(cur, [run_id]))[run_id]
    trainings = {s["step"]: (s["ended_at"] - s["started_at"]).total_seconds() for s in steps
                 if s["step"].startswith("train:")}
    accuracy = {s["step"].split(":")[1]: s["result"]["accuracy"] for s in steps if s["step"].startswith("evaluate:")}
    print(f"  parallel={parallel or os.cpu_count()}: {wall:.0f}s wall; trainings "
          + ", ".join(f"{k} {v:.0f}s" for k, v in trainings.items())
          + "; held-out " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()), flush=True)
    return wall, trainings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet50,mobilenet_v2,efficientnet_b0")
    parser.add_argument("--quick", action="store_true", help="the QUICK budget (else FULL) before overrides")
    parser.add_argument("--train-count", type=int, default=2000)
    parser.add_argument("--test-count", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    settings, models = Settings(), args.models.split(",")
    db = Database(settings)
    overrides = {"train_count": args.train_count, "test_count": args.test_count, "epochs": args.epochs}
    print(f"{len(models)} models, {overrides}, {os.cpu_count()} cores", flush=True)
    sequential, _ = variant(settings, db, models, 1, args.quick, overrides)
    parallel, _ = variant(settings, db, models, 0, args.quick, overrides)
    print(f"sequential {sequential:.0f}s, parallel {parallel:.0f}s: parallel takes {parallel / sequential:.2f}x "
          f"the time ({sequential / parallel:.2f}x faster)")


if __name__ == "__main__":
    main()
