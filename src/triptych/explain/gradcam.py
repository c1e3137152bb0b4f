"""Rendering one Grad-CAM heatmap (runs in the explainer's worker process: torch).

At the generated set's 64 px, each network's last convolution block sees a 2 x 2
grid, too coarse to show anything. The heatmaps come from the last block at
stride 16 instead, a 4 x 4 grid at 64 px (14 x 14 at 224 px):
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from ..config import Settings
from ..imaging import decode
from ..models import registry
from ..models.backends import load_torch_model
from ..models.preprocess import needed_side, resize, to_batch

TARGET_LAYERS = {
    "resnet50": "layer3.5",  # layer3[-1], the last bottleneck of stage 3
    "mobilenet_v2": "features.13",  # the last inverted residual at stride 16
    "efficientnet_b0": "features.5",  # stage 6 (MBConv6 5x5, 112 channels), stride 16
}
# What people read it as: `features[13]`, not "features.13".
LAYER_NAMES = {"resnet50": "layer3[-1]", "mobilenet_v2": "features[13]", "efficientnet_b0": "features[5]"}
DISPLAY_PX = 224


_LOADED: dict[tuple[str, str], tuple] = {}  # (model, version) -> (module, card), loaded once per worker
_KEEP_LOADED = 6  # three champions and a challenger or two


def _model(settings: Settings, model_name: str, version: str):
    if (model_name, version) not in _LOADED:
        if len(_LOADED) >= _KEEP_LOADED:
            _LOADED.pop(next(iter(_LOADED)))  # the oldest loaded
        card, folder = registry.cached_download(model_name, version, settings)
        _LOADED[model_name, version] = load_torch_model(folder, card), card
    return _LOADED[model_name, version]


def render(settings: Settings, model_name: str, version: str, image: bytes, label: str) -> tuple[bytes, float]:
    """The heatmap for `label` over the image as `version` sees it, as PNG, and the ms it took."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if model_name not in TARGET_LAYERS:
        raise ValueError(f"no Grad-CAM layer is known for {model_name!r}")
    model, card = _model(settings, model_name, version)
    started = time.perf_counter()
    pixels = resize(decode(image, needed_side(card)), card)
    import torch

    batch = torch.from_numpy(to_batch([pixels], card))
    targets = [ClassifierOutputTarget(card.labels.index(label))] if label in card.labels else None
    with GradCAM(model=model, target_layers=[model.get_submodule(TARGET_LAYERS[model_name])]) as cam:
        grayscale = cam(input_tensor=batch, targets=targets)[0]
    png = overlay_png(pixels, grayscale)
    return png, (time.perf_counter() - started) * 1000


def overlay_png(pixels: np.ndarray, heat: np.ndarray, size: int = DISPLAY_PX) -> bytes:
    """The heat (0-1, image-sized) in the jet palette over the image, both scaled to `size`."""
    image = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    heat = cv2.resize(np.clip(heat, 0, 1).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    colour = cv2.cvtColor(cv2.applyColorMap((255 * heat).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blended = 0.55 * image + 0.45 * colour.astype(np.float32) / 255
    ok, encoded = cv2.imencode(".png", cv2.cvtColor((255 * np.clip(blended, 0, 1)).astype(np.uint8), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("could not encode the heatmap as PNG")
    return encoded.tobytes()
