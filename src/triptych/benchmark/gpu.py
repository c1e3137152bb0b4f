"""`triptych bench --device cuda`: the champions' forward passes on the GPU (fp16,
batch 1 and 256) and the in-process pipeline with CPU or GPU decoding."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ..config import Settings
from . import ceiling
from .inprocess import inprocess_rate
from .pipeline import bench_images
from .preflight import require_stack
from .report import report_header


def run_gpu_bench(settings: Settings, images: int, width: int, height: int, report=print) -> dict:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no GPU here")
    require_stack(settings, functions=False)  # the champions come from the registry
    models = list(settings.active_models)
    data = [(item.label, item.data) for item in bench_images(max(images, 512), width, height)]
    result = {**report_header(models, 256, None, width, height), "device_name": torch.cuda.get_device_name(0)}
    with tempfile.TemporaryDirectory(prefix="triptych-bench-") as tmp:
        champions = ceiling.download_champions(settings, models, Path(tmp))
        report(f"ceiling on {result['device_name']}: fp16, batch 1 and 256")
        result["ceiling"] = [ceiling.forward_rate(champions, "cuda", None, b, 4096 if b > 1 else 256) for b in (1, 256)]
        report("in-process pipeline: CPU decode vs GPU decode, batch 256")
        result["inprocess"] = [inprocess_rate(champions, "cuda", None, 256, data, gpu_decode=g) for g in (False, True)]
    result["finished_at"] = time.time()
    return result
