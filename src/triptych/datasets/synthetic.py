"""A deterministic, labelled, non-trivial image data set that needs no download.

Ten classes of drawn objects, each image with its own colour, size, rotation,
position, line width, background (gradient, clutter lines, distractor blobs) and
sensor noise. Image `i` of a split is always the same pixels, so tests, the demo
stream and training agree without shipping files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring", "bar", "diamond", "crescent", "arrow")
DATASET_ID = "triptych-shapes-v1"
SPLIT_SEEDS = {"train": 1_000_003, "test": 2_000_003}


@dataclass(frozen=True)
class Sample:
    index: int
    label: str
    image: np.ndarray  # H x W x 3, uint8, RGB

    def encode(self, fmt: str = "png", jpeg_quality: int = 92) -> bytes:
        bgr = cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if fmt == "jpeg" else []
        ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else f".{fmt}", bgr, params)
        if not ok:
            raise ValueError(f"cannot encode as {fmt}")
        return buf.tobytes()


# The orientation (radians) each class is drawn around.
UPRIGHT = {
    "circle": 0.0,
    "square": math.pi / 4,
    "triangle": -math.pi / 2,
    "star": -math.pi / 2,
    "cross": 0.0,
    "ring": 0.0,
    "bar": 0.0,
    "diamond": 0.0,
    "crescent": 0.0,
    "arrow": 0.0,
}


def _polygon(center, radius, sides, rotation, inner=None):
    points = []
    for k in range(sides * (2 if inner else 1)):
        angle = rotation + k * math.pi / (sides if inner else sides / 2)
        r = inner if inner and k % 2 else radius
        points.append((center[0] + r * math.cos(angle), center[1] + r * math.sin(angle)))
    return np.array(points, dtype=np.int32)


def _rotate(points, center, angle):
    c, s = math.cos(angle), math.sin(angle)
    pts = np.asarray(points, dtype=np.float64) - center
    return (pts @ np.array([[c, s], [-s, c]]) + center).astype(np.int32)


def _draw(canvas, label, center, radius, rotation, color, rng):
    cx, cy = center
    # Classes are told apart by outline, not by colour or size: every shape is
    # filled (the ring's hole is its identity) and aspect ratios differ clearly.
    if label == "circle":
        cv2.circle(canvas, (cx, cy), radius, color, -1, cv2.LINE_AA)
    elif label == "ring":
        cv2.circle(canvas, (cx, cy), int(radius * 0.8), color, max(2, radius // 3), cv2.LINE_AA)
    elif label == "square":
        cv2.fillPoly(canvas, [_polygon(center, radius, 4, rotation)], color, cv2.LINE_AA)
    elif label == "diamond":
        pts = _rotate(
            [(cx, cy - radius), (cx + radius * 0.5, cy), (cx, cy + radius), (cx - radius * 0.5, cy)], center, rotation
        )
        cv2.fillPoly(canvas, [pts], color, cv2.LINE_AA)
    elif label == "bar":
        w = max(2, radius // 4)
        bar = [(cx - radius, cy - w), (cx + radius, cy - w), (cx + radius, cy + w), (cx - radius, cy + w)]
        cv2.fillPoly(canvas, [_rotate(bar, center, rotation)], color, cv2.LINE_AA)
    elif label == "triangle":
        cv2.fillPoly(canvas, [_polygon(center, radius, 3, rotation)], color, cv2.LINE_AA)
    elif label == "star":
        cv2.fillPoly(canvas, [_polygon(center, radius, 5, rotation, inner=radius * 0.42)], color, cv2.LINE_AA)
    elif label == "cross":
        w = max(3, radius // 3)
        bar = [(cx - radius, cy - w), (cx + radius, cy - w), (cx + radius, cy + w), (cx - radius, cy + w)]
        cv2.fillPoly(canvas, [_rotate(bar, center, rotation)], color, cv2.LINE_AA)
        cv2.fillPoly(canvas, [_rotate(bar, center, rotation + math.pi / 2)], color, cv2.LINE_AA)
    elif label == "crescent":
        mask = np.zeros(canvas.shape[:2], np.uint8)
        cv2.circle(mask, (cx, cy), radius, 255, -1, cv2.LINE_AA)
        off = (int(cx + radius * 0.5 * math.cos(rotation)), int(cy + radius * 0.5 * math.sin(rotation)))
        cv2.circle(mask, off, int(radius * 0.85), 0, -1, cv2.LINE_AA)
        canvas[mask > 127] = color
    elif label == "arrow":
        w = max(2, radius // 4)
        shape = [
            (cx - radius, cy - w),
            (cx + radius * 0.2, cy - w),
            (cx + radius * 0.2, cy - radius * 0.6),
            (cx + radius, cy),
            (cx + radius * 0.2, cy + radius * 0.6),
            (cx + radius * 0.2, cy + w),
            (cx - radius, cy + w),
        ]
        cv2.fillPoly(canvas, [_rotate(shape, center, rotation)], color, cv2.LINE_AA)
    else:
        raise ValueError(f"unknown class {label!r}")


def render(index: int, split: str = "train", size: int = 64) -> Sample:
    rng = np.random.default_rng(SPLIT_SEEDS[split] * 1_000_003 + index)
    label = CLASSES[index % len(CLASSES)]
    # Background: a random two-colour gradient.
    # Muted backgrounds and a contrasting object: hard enough to need a real
    # classifier (colour says nothing about the class), easy enough to learn from
    # a few thousand images on a laptop CPU.
    a, b = rng.integers(40, 216, 3), rng.integers(40, 216, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    canvas = (a * (1 - t) + b * t).astype(np.uint8).repeat(size, axis=1)
    canvas = np.ascontiguousarray(np.rot90(canvas, rng.integers(0, 4)))
    # Clutter: thin lines and small blobs that are not the object.
    for _ in range(rng.integers(0, 3)):
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        cv2.line(canvas, tuple(map(int, p1)), tuple(map(int, p2)), tuple(map(int, rng.integers(0, 256, 3))), 1)
    for _ in range(rng.integers(0, 3)):
        cv2.circle(
            canvas,
            tuple(map(int, rng.integers(0, size, 2))),
            int(rng.integers(1, 4)),
            tuple(map(int, rng.integers(0, 256, 3))),
            -1,
        )
    # The object: a colour far enough from the background to be visible.
    background = canvas.reshape(-1, 3).mean(axis=0)
    color = rng.integers(0, 256, 3)
    while np.abs(color - background).sum() < 240:
        color = rng.integers(0, 256, 3)
    radius = int(size * rng.uniform(0.28, 0.42))
    margin = radius + 2
    center = (int(rng.integers(margin, size - margin)), int(rng.integers(margin, size - margin)))
    # Pose: each class has an upright orientation, varied by up to +-30 degrees.
    _draw(canvas, label, center, radius, float(UPRIGHT[label] + rng.uniform(-0.52, 0.52)), tuple(map(int, color)), rng)
    noise = rng.normal(0, rng.uniform(1, 6), canvas.shape)
    image = np.clip(canvas.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    return Sample(index=index, label=label, image=image)


# Shifted copies of the set, to see the drift detectors work (`triptych stream
# synthetic --shift blur`): the same objects and labels, other pixels.
SHIFTS = {
    "blur": lambda image: cv2.GaussianBlur(image, (5, 5), 1.5),  # an out-of-focus camera
    "dark": lambda image: (image.astype(np.float32) * 0.55).astype(np.uint8),  # dusk
    "palette": lambda image: image[..., ::-1].copy() // 2 + 100,  # channels swapped, washed out
    "noise": lambda image: np.clip(
        image + np.random.default_rng(int(image.sum())).normal(0, 25, image.shape), 0, 255
    ).astype(np.uint8),  # a noisy sensor
}


def shifted(sample: Sample, shift: str | None) -> Sample:
    if shift is None:
        return sample
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; one of {', '.join(SHIFTS)}")
    return Sample(sample.index, sample.label, SHIFTS[shift](sample.image))


def samples(count: int, split: str = "train", size: int = 64, start: int = 0) -> Iterator[Sample]:
    for index in range(start, start + count):
        yield render(index, split, size)


def arrays(count: int, split: str = "train", size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(N x H x W x 3 uint8 images, N int64 class indices) for training."""
    images = np.empty((count, size, size, 3), np.uint8)
    labels = np.empty(count, np.int64)
    for sample in samples(count, split, size):
        images[sample.index] = sample.image
        labels[sample.index] = CLASSES.index(sample.label)
    return images, labels
