"""The ceiling: the three champions' bare forward passes on pre-decoded tensors,
all three at once (one thread each, as three functions run side by side), with a
given backend, thread count and batch size. No fetch, decode, Kafka or database:
what the pipeline could do if everything around the models were free."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Settings
from ..models import registry
from ..models.backends import load_backend
from ..models.card import ModelCard


@dataclass(frozen=True)
class Champion:
    name: str
    card: ModelCard
    folder: Path


def download_champions(settings: Settings, models: list[str], target: Path) -> list[Champion]:
    champions = []
    for name in models:
        version = registry.version_for_alias(name, registry.CHAMPION, settings)
        if version is None:
            raise RuntimeError(f"{name} has no champion: train them first (`triptych models bootstrap --train`)")
        card, folder = registry.download(name, version, target / name, settings)
        champions.append(Champion(name, card, folder))
    return champions


def forward_rate(champions: list[Champion], backend: str, threads: int | None, batch: int, images: int) -> dict:
    """Images/s through all three models together, and each model's ms per image
    when alone (measured first, one after another)."""
    loaded = [(c, load_backend(backend, c.folder, c.card, threads)) for c in champions]
    rng = np.random.default_rng(0)
    inputs = {
        c.name: rng.standard_normal((batch, 3, c.card.input_size, c.card.input_size)).astype(np.float32)
        for c in champions
    }
    batches = max(1, images // batch)
    alone = {}
    for champion, model in loaded:
        model.predict(inputs[champion.name])  # warm-up: first calls allocate and pick kernels
        started = time.perf_counter()
        for _ in range(batches):
            model.predict(inputs[champion.name])
        alone[champion.name] = (time.perf_counter() - started) * 1000 / (batches * batch)

    def run(champion: Champion, model) -> None:
        for _ in range(batches):
            model.predict(inputs[champion.name])

    workers = [threading.Thread(target=run, args=pair) for pair in loaded]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    return {
        "backend": loaded[0][1].name,
        "threads": threads,
        "batch": batch,
        "images": batches * batch,
        "images_per_s": batches * batch / wall,
        "ms_per_image_alone": alone,
        # The CPU a pipeline image needs at the very least: the three forwards, one after another.
        "forward_ms_per_image": sum(alone.values()),
    }
