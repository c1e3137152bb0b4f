"""One architecture's way through a retraining run: train a candidate, register
it with its lineage, judge it and the champion on the same held-out images, and
apply the gate. Each part is a recorded step (train:<model>, evaluate:<model>,
gate:<model>); `models bootstrap` uses the same path without a run."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import Settings
from ..db.connection import Database
from ..db.events import log_system_event
from ..models import registry
from ..models.backends import load_backend
from ..models.card import ModelCard
from ..models.preprocess import resize, to_batch
from ..models.training import TrainConfig, train
from . import gate
from .steps import Step
from .training_set import TrainingSet

log = logging.getLogger("triptych.lifecycle")


@dataclass
class TrainOutcome:
    model_name: str
    version: str
    accuracy: float  # the candidate's, on the held-out set the gate used
    champion_before: str | None
    champion_accuracy: float | None  # the champion's, on the same images
    promoted: bool
    decision: str  # champion | challenger | rejected | registered
    reason: str
    train_seconds: float
    total_seconds: float
    dataset_id: str = ""
    held_out_images: int = 0
    skipped_images: int = 0
    mlflow_run_id: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def predict_labels(backend, card: ModelCard, images: np.ndarray, batch_size: int = 128) -> list[str]:
    """Each image's predicted label, preprocessed the way `card` says."""
    out: list[str] = []
    for start in range(0, len(images), batch_size):
        batch = to_batch([resize(image, card) for image in images[start : start + batch_size]], card)
        out.extend(card.labels[i] for i in backend.predict(batch).argmax(axis=1))
    return out


def confusion(truth: list[str], predicted: list[str], classes: list[str]) -> dict:
    """Rows are true classes, columns predicted ones (labels outside `classes` count as 'other')."""
    columns = [*classes, "other"]
    matrix = [[0] * len(columns) for _ in classes]
    for t, p in zip(truth, predicted):
        matrix[classes.index(t)][columns.index(p) if p in classes else len(classes)] += 1
    return {"classes": classes, "columns": columns, "matrix": matrix}


def evaluate(
    model_name: str, version: str, images: np.ndarray, truth: list[str], settings: Settings, folder: Path
) -> tuple[float, list[str]]:
    """A registered version's accuracy on labelled images, loaded as the inference functions load it."""
    card, local = registry.download(model_name, version, folder / version, settings)
    predicted = predict_labels(load_backend("torch", local, card), card, images)
    return float(np.mean([p == t for p, t in zip(predicted, truth)])), predicted


def train_candidate(
    model_name: str,
    training_set: TrainingSet,
    config: TrainConfig,
    settings: Settings,
    policy: str = "if-better",
    run_id: str | None = None,
    mlrun_run_uid: str | None = None,
    log_epoch: Callable[[dict], None] = lambda _row: None,
    db: Database | None = None,
) -> TrainOutcome:
    db = db if db is not None else (Database(settings) if run_id else None)
    started = time.monotonic()
    with Step(db, run_id, f"train:{model_name}", mlrun_run_uid) as step:
        step.progress({"stage": f"loading {training_set.dataset_id}"}, force=True)
        train_set = training_set.load("train", config.input_size, settings)
        test_set = training_set.load("test", config.input_size, settings)
        for problem in train_set.skipped + test_set.skipped:
            log.warning("skipped an image that does not decode: %s", problem)
        run_key = run_id or mlrun_run_uid or "adhoc"
        log_system_event(
            "training_started",
            "info",
            "training",
            f"training {model_name} on {training_set.dataset_id}: {len(train_set.labels)} images, "
            f"{config.epochs} epochs",
            details={
                "model_name": model_name,
                "dataset_id": training_set.dataset_id,
                "epochs": config.epochs,
                "train_count": len(train_set.labels),
                "run": run_key,
            },
            dedup_key=f"train-start:{model_name}:{run_key}:{mlrun_run_uid}",
            settings=settings,
        )

        def on_epoch(row: dict) -> None:
            log_epoch(row)
            step.progress(
                {
                    **row,
                    "epochs": config.epochs,
                    "images_total": config.epochs * len(train_set.labels),
                    "images_done": row["epoch"] * len(train_set.labels),
                },
                force=True,
            )
            log_system_event(
                "training_epoch",
                "info",
                "training",
                f"{model_name} epoch {row['epoch']}/{config.epochs}: held-out accuracy {row['test_accuracy']:.3f}",
                details={
                    "model_name": model_name,
                    "dataset_id": training_set.dataset_id,
                    "epochs": config.epochs,
                    "run": run_key,
                    **row,
                },
                dedup_key=f"train-epoch:{model_name}:{run_key}:{mlrun_run_uid}:{row['epoch']}",
                settings=settings,
            )

        result = train(
            model_name,
            train_set.images,
            train_set.labels,
            test_set.images,
            test_set.labels,
            train_set.classes,
            training_set.dataset_id,
            config,
            on_epoch,
            step.progress,
        )
        card = result.card.model_copy(update={"mlrun_run_uid": mlrun_run_uid})
        lineage = {
            "dataset_id": training_set.dataset_id,
            "dataset_base": training_set.base,
            "dataset_labelled": training_set.labelled or "",
            "split": training_set.split,
            "workflow_run_id": run_id or "",
        }
        registered = registry.register(
            result.model,
            card,
            settings=settings,
            tags=lineage,
            history=result.history,
            params={
                "epochs": config.epochs,
                "batch_size": config.batch_size,
                "learning_rate": config.learning_rate,
                "train_count": len(train_set.labels),
                "test_count": len(test_set.labels),
                "labelled_train": training_set.labelled_train,
                "labelled_test": training_set.labelled_test,
            },
        )
        step.done(
            {
                "version": registered.version,
                "train_images": len(train_set.labels),
                "seconds": result.seconds,
                "accuracy": card.metrics["accuracy"],
            },
            registered.run_id,
        )

    champion = registry.version_for_alias(model_name, registry.CHAMPION, settings)
    with (
        Step(db, run_id, f"evaluate:{model_name}", mlrun_run_uid) as step,
        tempfile.TemporaryDirectory(prefix="triptych-eval-") as tmp,
    ):
        # As decoded, not resized: each model preprocesses the same images its own way.
        held_out = training_set.load("test", None, settings)
        truth = [held_out.classes[i] for i in held_out.labels]
        accuracy, predicted = evaluate(model_name, registered.version, held_out.images, truth, settings, Path(tmp))
        champion_accuracy = None
        documents = {"confusion_matrix.json": confusion(truth, predicted, held_out.classes)}
        if champion is not None:
            champion_accuracy, champion_predicted = evaluate(
                model_name, champion, held_out.images, truth, settings, Path(tmp)
            )
            documents["champion_confusion_matrix.json"] = confusion(truth, champion_predicted, held_out.classes)
        registry.log_to_run(
            registered.run_id,
            {
                "heldout_accuracy": accuracy,
                "champion_heldout_accuracy": champion_accuracy,
                "heldout_images": len(truth),
            },
            documents,
            settings,
        )
        step.done(
            {
                "version": registered.version,
                "accuracy": accuracy,
                "champion": champion,
                "champion_accuracy": champion_accuracy,
                "held_out_images": len(truth),
            },
            registered.run_id,
        )

    with Step(db, run_id, f"gate:{model_name}", mlrun_run_uid) as step:
        decision = gate.decide(accuracy, champion_accuracy, settings.margin_for(model_name), policy)
        decision.figures.update(
            champion_version=champion, held_out_images=len(truth), dataset_id=training_set.dataset_id
        )
        gate.apply(model_name, registered.version, decision, settings, run_id)
        step.done({"version": registered.version, **decision.as_dict()}, registered.run_id)

    return TrainOutcome(
        model_name,
        registered.version,
        accuracy,
        champion,
        champion_accuracy,
        decision.outcome == gate.CHAMPION,
        decision.outcome,
        decision.reason,
        result.seconds,
        time.monotonic() - started,
        training_set.dataset_id,
        len(truth),
        len(train_set.skipped) + len(test_set.skipped),
        registered.run_id,
    )
