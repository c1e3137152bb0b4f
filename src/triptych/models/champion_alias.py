"""Telling the inference functions which version to serve: setting the champion
alias and announcing it on `model-updates`, so they hot-swap without a restart.
When a version gets there is the gate's business (triptych.lifecycle.gate)."""

from __future__ import annotations

from typing import Literal

from ..bus import producer as make_producer
from ..config import Settings
from ..contracts import TOPIC_MODEL_UPDATES, ModelUpdate
from ..db.events import log_system_event
from . import registry


def announce(
    model_name: str,
    version: str | None,
    reason: str,
    settings: Settings,
    alias: Literal["champion", "challenger"] = registry.CHAMPION,
) -> None:
    """Tell every replica: the champion is now `version`, or (alias challenger) the
    shadow replica should serve `version`, or nothing with None."""
    producer = make_producer(settings)
    try:
        update = ModelUpdate(model_name=model_name, version=version, alias=alias, reason=reason)
        producer.send(TOPIC_MODEL_UPDATES, key=model_name.encode(), value=update.model_dump_json().encode()).get(30)
    finally:
        producer.close(timeout=10)


def promote(model_name: str, version: str, reason: str, settings: Settings) -> None:
    registry.set_alias(model_name, version, registry.CHAMPION, settings)
    log_system_event(
        "model_promoted",
        "info",
        "retrain",
        f"{model_name} v{version} is champion: {reason}",
        details={"model_name": model_name, "version": version, "reason": reason},
        dedup_key=f"promote:{model_name}:{version}",
        settings=settings,
    )
    announce(model_name, version, reason, settings)
