"""Per-image pixel statistics, the cheap embedding the input-drift test compares
(triptych.stats.drift). Ingest computes them for every image, so this module
needs numpy only: an ingest replica never loads scipy for it."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

FEATURES = ("brightness", "contrast", "saturation", "sharpness", "red", "green", "blue")
SIZE = 64  # computed on the image stretched to this side: the copy the models see


def pixel_features(image: NDArray[Any]) -> dict[str, float]:
    """Statistics of an H x W x 3 uint8 RGB image, each in [0, 1] except sharpness."""
    rgb = image.astype(np.float32) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)
    # The Laplacian's variance: high for crisp edges and noise, low for blur.
    laplacian = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4 * gray[1:-1, 1:-1]
    means = rgb.reshape(-1, 3).mean(axis=0)
    return {
        "brightness": float(gray.mean()),
        "contrast": float(gray.std()),
        "saturation": float(saturation.mean()),
        "sharpness": float(laplacian.var()),
        "red": float(means[0]),
        "green": float(means[1]),
        "blue": float(means[2]),
    }
