"""A model version's way from training to serving: train, register, then promote
to champion only when it beats the current champion by a margin, and tell the
inference functions (topic `model-updates`) so they hot-swap without a restart."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass

from ..bus import producer as make_producer
from ..config import TOPIC_MODEL_UPDATES, Settings, get_settings
from ..contracts import ModelUpdate
from ..db.events import log_system_event
from . import registry
from .training import TrainConfig, train

logger = logging.getLogger(__name__)

PROMOTE_POLICIES = ("if-better", "always", "never")


@dataclass
class PromotionDecision:
    promote: bool
    reason: str


def decide(candidate: float, champion: float | None, min_improvement: float, policy: str = "if-better",
           candidate_dataset: str | None = None, champion_dataset: str | None = None) -> PromotionDecision:
    if policy not in PROMOTE_POLICIES:
        raise ValueError(f"promotion policy must be one of {PROMOTE_POLICIES}")
    if policy == "never":
        return PromotionDecision(False, "promotion disabled")
    if policy == "always":
        return PromotionDecision(True, "promotion forced")
    if champion is None:
        return PromotionDecision(True, "no champion yet")
    if candidate_dataset and champion_dataset and candidate_dataset != champion_dataset:
        # Accuracies on two different held-out sets say nothing about which model is better.
        return PromotionDecision(False, f"the champion was trained on {champion_dataset}, not {candidate_dataset}: "
                                        "accuracies are not comparable (promote by hand with `triptych models "
                                        "promote`, or train with policy always)")
    if candidate >= champion + min_improvement:
        return PromotionDecision(True, f"accuracy {candidate:.4f} beats champion {champion:.4f} by >= {min_improvement}")
    return PromotionDecision(False, f"accuracy {candidate:.4f} does not beat champion {champion:.4f} by {min_improvement}")


def announce(model_name: str, version: str, reason: str, settings: Settings) -> None:
    producer = make_producer(settings)
    try:
        update = ModelUpdate(model_name=model_name, version=version, reason=reason)
        producer.send(TOPIC_MODEL_UPDATES, key=model_name.encode(), value=update.model_dump_json().encode()).get(30)
    finally:
        producer.close(timeout=10)


def promote(model_name: str, version: str, reason: str, settings: Settings) -> None:
    registry.set_alias(model_name, version, registry.CHAMPION, settings)
    log_system_event("model_promoted", "info", "retrain", f"{model_name} v{version} is champion: {reason}",
                     details={"model_name": model_name, "version": version, "reason": reason},
                     dedup_key=f"promote:{model_name}:{version}", settings=settings)
    announce(model_name, version, reason, settings)


@dataclass
class TrainOutcome:
    model_name: str
    version: str
    accuracy: float
    champion_before: str | None
    champion_accuracy: float | None
    promoted: bool
    reason: str
    train_seconds: float
    total_seconds: float
    dataset_id: str = ""
    skipped_images: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def train_and_register(
    model_name: str, dataset_id: str, train_count: int | None, test_count: int | None,
    config: TrainConfig = TrainConfig(), policy: str = "if-better", min_improvement: float = 0.02,
    mlrun_run_uid: str | None = None, settings: Settings | None = None, log=lambda _row: None,
) -> TrainOutcome:
    """Train on a data set held in MinIO (the generated one is published there first
    when missing), register the result, and promote it when it is better."""
    from ..datasets.bucket import load_split, publish_synthetic
    from ..datasets.synthetic import DATASET_ID

    settings = settings or get_settings()
    started = time.monotonic()
    if dataset_id == DATASET_ID:
        if train_count is None or test_count is None:
            raise ValueError("the generated set is made to measure: give train_count and test_count")
        publish_synthetic(train_count, test_count, settings=settings)
    train_set = load_split(dataset_id, "train", config.input_size, train_count, settings)
    test_set = load_split(dataset_id, "test", config.input_size, test_count, settings)
    for problem in train_set.skipped + test_set.skipped:
        logger.warning("skipped an image that does not decode: %s", problem)
    run_key = mlrun_run_uid or uuid.uuid4().hex
    log_system_event("training_started", "info", "training",
                     f"training {model_name} on {dataset_id}: {len(train_set.labels)} images, {config.epochs} epochs",
                     details={"model_name": model_name, "dataset_id": dataset_id, "epochs": config.epochs,
                              "train_count": len(train_set.labels), "run": run_key},
                     dedup_key=f"train-start:{model_name}:{run_key}", settings=settings)

    def log_epoch(row: dict) -> None:
        # Each epoch is also an event, so the dashboard's Models page shows training as it goes.
        log(row)
        log_system_event("training_epoch", "info", "training",
                         f"{model_name} epoch {row['epoch']}/{config.epochs}: held-out accuracy "
                         f"{row['test_accuracy']:.3f}",
                         details={"model_name": model_name, "dataset_id": dataset_id, "epochs": config.epochs,
                                  "run": run_key, **row},
                         dedup_key=f"train-epoch:{model_name}:{run_key}:{row['epoch']}", settings=settings)

    result = train(model_name, train_set.images, train_set.labels, test_set.images, test_set.labels,
                   train_set.classes, dataset_id, config, log_epoch)
    card = result.card.model_copy(update={"mlrun_run_uid": mlrun_run_uid})
    registered = registry.register(result.model, card, params={"epochs": config.epochs, "dataset": dataset_id,
                                                               "train_count": len(train_set.labels),
                                                               "test_count": len(test_set.labels)},
                                   settings=settings)
    registry.set_alias(model_name, registered.version, registry.CHALLENGER, settings)
    champion = registry.version_for_alias(model_name, registry.CHAMPION, settings)
    champion_accuracy = registry.metric_of(model_name, champion, settings=settings) if champion else None
    accuracy = card.metrics["accuracy"]
    champion_dataset = registry.tag_of(model_name, champion, "dataset_id", settings) if champion else None
    decision = decide(accuracy, champion_accuracy, min_improvement, policy, dataset_id, champion_dataset)
    if decision.promote:
        promote(model_name, registered.version, decision.reason, settings)
    else:
        log_system_event("model_not_promoted", "info", "retrain",
                         f"{model_name} v{registered.version} stays challenger: {decision.reason}",
                         details={"model_name": model_name, "version": registered.version, "reason": decision.reason},
                         dedup_key=f"not-promoted:{model_name}:{registered.version}", settings=settings)
    return TrainOutcome(model_name, registered.version, accuracy, champion, champion_accuracy, decision.promote,
                        decision.reason, result.seconds, time.monotonic() - started, dataset_id,
                        len(train_set.skipped) + len(test_set.skipped))
