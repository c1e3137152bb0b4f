"""Quantising a registered version to int8 (triptych.models.quantize does the work):
calibrated on the version's own training images, measured on its held-out ones,
and published beside its fp32 export when it passes the agreement gate."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from prometheus_client import Gauge

from ..config import Settings
from ..datasets.bucket import load_split
from ..models import registry
from ..models.card import INT8_FILE, ONNX_FILE
from ..models.champion_alias import announce
from ..models.preprocess import to_batch
from ..models.quantize import MIN_AGREEMENT, compare_int8
from ..models.zoo import ARCHITECTURES
from . import wake_signals
from .training_set import base_dataset


def quantize_version(
    model_name: str,
    version: str,
    settings: Settings,
    calibration_count: int = 256,
    held_out_count: int = 500,
    threads: int = 1,
    batch: int = 8,
    publish: bool = True,
    min_agreement: float = MIN_AGREEMENT,
) -> dict:
    """Quantise a registered version, measure it against fp32, and (if it passes the
    gate and `publish`) add the int8 model to the version's artifacts. The figures
    are tagged on the version either way (`int8.*`), where the Models page and the
    registry's own UI show them."""
    card, cached = registry.cached_download(model_name, version, settings)
    dataset = card.dataset_id.split("+")[0] if card.dataset_id else base_dataset(settings)
    train = load_split(dataset, "train", card.input_size, calibration_count, settings)
    test = load_split(dataset, "test", card.input_size, held_out_count, settings)
    truth = np.array(
        [card.labels.index(test.classes[i]) if test.classes[i] in card.labels else -1 for i in test.labels]
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / ONNX_FILE).write_bytes((cached / ONNX_FILE).read_bytes())
        result = compare_int8(
            folder,
            card,
            to_batch(train.images, card),
            to_batch(test.images, card),
            truth,
            threads,
            batch,
            min_agreement,
        )
        result["dataset"] = dataset
        if result["passes"] and publish:
            result["published"] = registry.add_artifact(model_name, version, folder / INT8_FILE, settings)
            # This machine's cached copy gets it too (other machines fetch it: cached_download's `require`).
            staged = cached / f".{INT8_FILE}.tmp"
            staged.write_bytes((folder / INT8_FILE).read_bytes())
            os.replace(staged, cached / INT8_FILE)
    registry.tag_version(model_name, version, int8_tags(result), settings)
    if result.get("published") and registry.version_for_alias(model_name, registry.CHAMPION, settings) == version:
        # After the tags: the int8 twin (`infer-int8`) reads `int8.published` when told, and
        # starts answering beside the champion; fp32 replicas already serve this version.
        announce(model_name, version, "int8 export published", settings)
    return result


def int8_tags(result: dict) -> dict[str, str]:
    """What a quantisation measured, as the version's `int8.*` tags."""
    tags = {
        f"int8.{key}": f"{result[key]:.4f}"
        for key in (
            "agreement",
            "fp32_accuracy",
            "int8_accuracy",
            "speedup",
            "fp32_ms_per_image",
            "int8_ms_per_image",
            "min_agreement",
        )
    }
    tags["int8.held_out"] = str(result["held_out"])
    tags["int8.published"] = "true" if result.get("published") else "false"
    return tags


# On Kubernetes KEDA wakes the int8 twin from zero on this (runtime.kube_scaling);
# locally the supervisor asks the registry itself (runtime.wake.int8_published).
INT8_PUBLISHED = Gauge(
    "triptych_int8_published", "1 while the model's champion has a published int8 export", ("model",)
)


def export_int8_champions(settings: Settings) -> list[str]:
    """Set the gauge for every model whose champion's int8 export is published (the
    others' series removed); returns those models. The jobs function runs it every minute."""
    published = []
    for model_name in ARCHITECTURES:
        champion = registry.version_for_alias(model_name, registry.CHAMPION, settings)
        if champion is not None and registry.int8_published(model_name, champion, settings):
            INT8_PUBLISHED.labels(model_name).set(1)
            published.append(model_name)
        else:
            try:
                INT8_PUBLISHED.remove(model_name)
            except KeyError:
                pass
    wake_signals.signal("int8", bool(published))
    return published
