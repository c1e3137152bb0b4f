"""The `retrain` workflow: gather the training set, train the chosen
architectures in parallel (one job run each), and in each: register, evaluate
beside the champion on the same held-out images, and apply the gate.

Declared in the project (`project.set_workflow`), so on an MLRun CE cluster
`project.run("retrain", arguments=...)` runs it on Kubeflow Pipelines (the
trainings become parallel steps, visible in the MLRun UI). Locally the retrain
function runs it with the local engine, the trainings in threads, at most one
per core (see triptych.lifecycle.workflow). No kfp import here: the local
engine has no kfp installed.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import mlrun


def kfpipeline(
    run_id: str,
    models: str = "resnet50,mobilenet_v2,efficientnet_b0",
    dataset_id: str = "",
    quick: bool = False,
    policy: str = "if-better",
    parallel: int = 0,
    overrides: dict | None = None,
):
    from triptych.models.bootstrap import FULL, QUICK

    project = mlrun.get_current_project()
    names = [m for m in models.split(",") if m]
    # `overrides` (e.g. {"train_count": 300, "epochs": 1}) applies to every model: tests and smoke runs.
    budgets = {name: {**budget, **(overrides or {})} for name, budget in (QUICK if quick else FULL).items()}
    gather = project.run_function(
        "gather",
        params={
            "run_id": run_id,
            "dataset_id": dataset_id,
            "train_count": max(budgets[m]["train_count"] for m in names),
            "test_count": max(budgets[m]["test_count"] for m in names),
        },
        outputs=["training_set"],
    )
    if _failed([("gather", gather)]):
        raise RuntimeError(f"gather failed: {gather.status.error}")
    training_set = gather.outputs["training_set"]

    # Locally each training gets its share of the cores; on a cluster each is its own pod.
    workers = max(1, min(len(names), parallel or os.cpu_count() or 1))
    threads = max(1, (os.cpu_count() or 1) // workers)

    def train(name: str):
        budget = {k: v for k, v in budgets[name].items() if k not in ("train_count", "test_count")}
        return project.run_function(
            "train",
            name=f"train-{name.replace('_', '-')}",
            params={
                "model_name": name,
                "policy": policy,
                "training_set": training_set,
                "run_id": run_id,
                "threads": threads,
                **budget,
            },
        )

    with ThreadPoolExecutor(workers, thread_name_prefix="train") as pool:
        trainings = list(pool.map(train, names))
    failed = _failed(list(zip(names, trainings)))
    if failed:
        raise RuntimeError(f"training failed for {', '.join(failed)}")


def _failed(runs: list) -> list[str]:
    """The names of local runs that did not complete. Without an MLRun DB a failed
    local run keeps a non-final state, and the local engine would wait for it
    forever: it is marked ended here. (On KFP the steps are not RunObjects.)"""
    failed = []
    for name, run in runs:
        if isinstance(run, mlrun.model.RunObject) and run.status.state != "completed":
            run.status.state = "error"
            failed.append(name)
    return failed
