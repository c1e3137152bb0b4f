"""A video clip of the generated shapes, as a camera would show them: for Chromium's
fake camera (`--use-fake-device-for-media-stream
--use-file-for-fake-video-capture=clip.y4m`), so the Webcam page can be tried and
tested with no camera and nothing downloaded.

Chromium reads uncompressed YUV4MPEG2 and accepts only the `C420` colour space
tag (it refuses `C420mpeg2`, which ffmpeg writes by default).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from .synthetic import render


def write_y4m(path: Path, frames: Iterable[np.ndarray], fps: int) -> int:
    """Write RGB frames (H x W x 3 uint8, even sides, all one size) as a Y4M C420 clip;
    returns how many were written."""
    count = 0
    with open(path, "wb") as out:
        for frame in frames:
            height, width = frame.shape[:2]
            if height % 2 or width % 2:
                raise ValueError(f"a 4:2:0 frame needs even sides, got {width}x{height}")
            if count == 0:
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode())
            # OpenCV's I420 is exactly Y4M's 4:2:0 frame: the Y plane, then U, then V.
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
            count += 1
    return count


def shapes_clip(
    path: Path,
    shapes: int = 6,
    seconds_each: float = 2.0,
    fps: int = 10,
    size: int = 240,
    start: int = 0,
    sensor_noise: float = 3.0,
) -> list[str]:
    """A clip showing `shapes` test-split shapes one after another, each held still
    for `seconds_each`, scaled up to size x size; returns their labels in order.
    Every frame gets its own sensor noise (standard deviation in grey levels), as a
    real camera's do: without it a shape held still is the same bytes frame after
    frame, and the upload function answers those as one image."""
    samples = [render(start + i, "test", 64) for i in range(shapes)]
    held = max(1, round(seconds_each * fps))
    rng = np.random.default_rng(start)

    def frames():
        for sample in samples:
            big = cv2.resize(sample.image, (size, size), interpolation=cv2.INTER_NEAREST).astype(np.float32)
            for _ in range(held):
                noisy = big + rng.normal(0, sensor_noise, big.shape) if sensor_noise else big
                yield np.clip(noisy, 0, 255).astype(np.uint8)

    write_y4m(path, frames(), fps)
    return [s.label for s in samples]
