"""Bytes -> pixels -> the tensor a model version was trained with.

Training and inference share these functions, so what a model sees in
production is exactly what it learned from.
"""

from __future__ import annotations

import cv2
import numpy as np

from .card import ModelCard


class DecodeError(ValueError):
    pass


def decode(data: bytes) -> np.ndarray:
    """Any JPEG/PNG/WebP/BMP to H x W x 3 RGB uint8."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        raise DecodeError(f"cannot decode image ({len(data)} bytes)")
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def resize(image: np.ndarray, card: ModelCard) -> np.ndarray:
    return resize_to(image, card.input_size, card.resize)


def resize_to(image: np.ndarray, size: int, mode: str = "stretch") -> np.ndarray:
    """To `size` x `size`: stretched, or ImageNet style (shorter side, centre crop)."""
    if mode == "shorter-side-crop":
        h, w = image.shape[:2]
        scale = size * 256 / 224 / min(h, w)
        image = cv2.resize(image, (max(size, round(w * scale)), max(size, round(h * scale))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        h, w = image.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        return image[top: top + size, left: left + size]
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def to_batch(images: list[np.ndarray] | np.ndarray, card: ModelCard) -> np.ndarray:
    """N images (H x W x 3 uint8, already at input size) to N x 3 x S x S float32, normalised."""
    batch = np.asarray(images, dtype=np.float32) / 255.0
    batch = (batch - np.asarray(card.mean, np.float32)) / np.asarray(card.std, np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
