"""Pixels -> the tensor a model version was trained with (bytes -> pixels is
`triptych.imaging`).

Training and inference share these functions, so what a model sees in
production is exactly what it learned from.
"""

from __future__ import annotations

import math

import numpy as np

from ..imaging import resize_to
from .card import ModelCard


def needed_side(card: ModelCard) -> int:
    """The shortest side an image must keep for `resize(image, card)` not to upscale."""
    return card.input_size if card.resize != "shorter-side-crop" else math.ceil(card.input_size * 256 / 224)


def resize(image: np.ndarray, card: ModelCard) -> np.ndarray:
    return resize_to(image, card.input_size, card.resize)


def to_batch(images: list[np.ndarray] | np.ndarray, card: ModelCard) -> np.ndarray:
    """N images (H x W x 3 uint8, already at input size) to N x 3 x S x S float32, normalised."""
    batch = np.asarray(images, dtype=np.float32) / 255.0
    batch = (batch - np.asarray(card.mean, np.float32)) / np.asarray(card.std, np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
