"""Giving every model a champion: trained here on the generated set (offline,
as MLRun jobs), or torchvision's ImageNet weights (online)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..config import REPO_ROOT, Settings
from . import registry
from .card import ModelCard
from .champion_alias import promote
from .zoo import ARCHITECTURES, build_pretrained

TRAIN_JOB = REPO_ROOT / "projects" / "jobs" / "train_model.py"

# Training budgets per model on the generated set (measured on 2 CPU cores; see
# docs/models.md). All train at 64 px: at 32 px the final feature maps are 1x1 and
# ResNet50 stalled at 72 %, EfficientNet-B0 barely learned. EfficientNet-B0 takes a
# higher rate: 1e-3 reached 69 % on a 4,000-image probe where 4e-3 reached 80 %.
FULL = {
    "resnet50": {"train_count": 12000, "test_count": 1000, "epochs": 3, "input_size": 64, "learning_rate": 1e-3},
    "mobilenet_v2": {"train_count": 12000, "test_count": 1000, "epochs": 3, "input_size": 64, "learning_rate": 2e-3},
    "efficientnet_b0": {"train_count": 12000, "test_count": 1000, "epochs": 3, "input_size": 64, "learning_rate": 4e-3},
}
# A smoke budget for tests and quick demos: 0.5-2 min per model, ~50 % held-out
# (chance is 10 %). One epoch of 1,500 left MobileNetV2 and EfficientNet-B0 at chance.
QUICK = {
    name: {**budget, "train_count": 2000, "test_count": 300, "epochs": 2, "batch_size": 16}
    for name, budget in FULL.items()
}


def missing_champions(settings: Settings, models: list[str] | None = None) -> list[str]:
    return [
        m for m in (models or list(ARCHITECTURES)) if registry.version_for_alias(m, registry.CHAMPION, settings) is None
    ]


def run_local_job(name: str, command: Path, handler: str, params: dict):
    """Run a handler of a job file as an MLRun job, in this process (local=True);
    returns MLRun's run object (its state says whether it completed)."""
    os.environ.setdefault("MLRUN_LOG_LEVEL", "ERROR")  # it warns on every call that no API server is set
    import mlrun

    function = mlrun.new_function(name=name, kind="job", command=str(command), handler=handler)
    # Results go to MLflow and Postgres: nothing is kept in MLRun's artifact folder.
    with tempfile.TemporaryDirectory(prefix="triptych-mlrun-") as artifacts:
        return function.run(local=True, params=params, artifact_path=artifacts)


def train_as_mlrun_job(model_name: str, budgets: dict[str, dict], policy: str = "if-better", **overrides) -> dict:
    """Run projects/jobs/train_model.py as an MLRun job, in this process (local=True)."""
    params = {"model_name": model_name, "policy": policy, **budgets[model_name], **overrides}
    run = run_local_job(f"train-{model_name.replace('_', '-')}", TRAIN_JOB, "train_model", params)
    if run.status.state != "completed":
        raise RuntimeError(
            f"the training job for {model_name} failed ({run.status.state}: "
            f"{run.status.error or 'see the traceback MLRun logged above'})"
        )
    return dict(run.status.results)


def register_pretrained(model_name: str, settings: Settings) -> str:
    """torchvision's ImageNet weights as the champion (needs network access once)."""
    try:
        model, categories = build_pretrained(model_name)
    except Exception as exc:  # noqa: BLE001 - re-raised with what to do
        raise RuntimeError(
            f"cannot fetch torchvision's pretrained {model_name} weights ({exc}). This needs network access; "
            "offline, use `triptych models bootstrap --train`."
        ) from exc
    card = ModelCard(
        model_name=model_name,
        labels=categories,
        input_size=224,
        resize="shorter-side-crop",
        dataset_id="imagenet-1k",
        origin="pretrained",
    )
    version = registry.register(model, card, settings=settings).version
    promote(model_name, version, "torchvision ImageNet weights", settings)
    return version
