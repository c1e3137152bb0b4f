"""Training a model on a labelled data set held in memory, and measuring it.

The generated shapes set is the default because it needs no download; CIFAR-10
and image folders reach the same `train` through `arrays` of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .card import ModelCard
from .preprocess import to_batch
from .priority import lower_for_training
from .zoo import build


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 5e-4
    input_size: int = 48
    seed: int = 0
    threads: int | None = None


@dataclass
class TrainResult:
    model: torch.nn.Module
    card: ModelCard
    seconds: float
    history: list[dict]


def predict_arrays(model: torch.nn.Module, images: np.ndarray, card: ModelCard, batch_size: int = 256) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(to_batch(images[start : start + batch_size], card))
            out.append(torch.softmax(model(batch), dim=1).numpy())
    return np.concatenate(out)


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())


def train(
    model_name: str,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    label_names: list[str],
    dataset_id: str,
    config: TrainConfig = TrainConfig(),
    log: Callable[[dict], None] = lambda _row: None,
    progress: Callable[[dict], None] = lambda _row: None,
) -> TrainResult:
    """Train from scratch; `log` gets a row per epoch (loss, held-out accuracy),
    `progress` one every few batches (images done, seconds left). Runs at the
    training priority (`priority.lower_for_training`): the stream keeps its cores."""
    lower_for_training()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    card = ModelCard(
        model_name=model_name, labels=list(label_names), input_size=config.input_size, dataset_id=dataset_id
    )
    model = build(model_name, len(label_names))
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = config.epochs * int(np.ceil(len(train_images) / config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.learning_rate, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    history: list[dict] = []
    started = time.monotonic()
    images_total = config.epochs * len(train_images)
    images_done = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = rng.permutation(len(train_images))
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            if len(index) < 2:
                continue  # BatchNorm needs two samples
            # No augmentation: the generated set already varies pose, colour, size and
            # clutter per image, and turning images would show poses the test set never has.
            x = torch.from_numpy(to_batch(train_images[index], card))
            y = torch.from_numpy(train_labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
            images_done += len(index)
            if (start // config.batch_size) % 20 == 0:
                elapsed = time.monotonic() - started
                progress(
                    {
                        "epoch": epoch,
                        "epochs": config.epochs,
                        "images_done": images_done,
                        "images_total": images_total,
                        "seconds": elapsed,
                        "seconds_left": elapsed / images_done * (images_total - images_done),
                        "test_accuracy": history[-1]["test_accuracy"] if history else None,
                    }
                )
        test_accuracy = accuracy(predict_arrays(model, test_images, card), test_labels)
        row = {
            "epoch": epoch,
            "train_loss": total / len(order),
            "test_accuracy": test_accuracy,
            "seconds": time.monotonic() - started,
        }
        history.append(row)
        log(row)
    seconds = time.monotonic() - started
    card.metrics = {
        "accuracy": history[-1]["test_accuracy"],
        "train_seconds": seconds,
        "train_images": float(len(train_images)),
        "test_images": float(len(test_images)),
    }
    return TrainResult(model=model.eval(), card=card, seconds=seconds, history=history)
