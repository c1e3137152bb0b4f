"""Forward time per image for each model and backend, batch 1 vs batch 16.

Random weights (timing depends on the architecture, not the values), inputs at
each model's training size from the bootstrap budget, pre-decoded tensors.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from triptych.models.backends import OnnxBackend, TorchBackend, export_onnx
from triptych.models.bootstrap import FULL
from triptych.models.card import ModelCard
from triptych.models.zoo import ARCHITECTURES, build


def per_image_ms(backend, batch: np.ndarray, repeats: int) -> float:
    backend.predict(batch)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        backend.predict(batch)
        times.append((time.perf_counter() - started) * 1000 / len(batch))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'model':16} {'px':>4} {'backend':10} {'b1 ms/img':>10} {'b16 ms/img':>11} {'b16 speed-up':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ARCHITECTURES:
            size = FULL[name]["input_size"]
            card = ModelCard(model_name=name, labels=[str(i) for i in range(10)], input_size=size, dataset_id="bench")
            model = build(name, 10).eval()
            onnx_path = Path(tmp) / f"{name}.onnx"
            export_onnx(model, card, onnx_path)
            rows = {}
            for label, backend in (("torch", TorchBackend(model)), ("onnxruntime", OnnxBackend(onnx_path, args.threads))):
                b1 = per_image_ms(backend, np.random.rand(1, 3, size, size).astype(np.float32), args.repeats)
                b16 = per_image_ms(backend, np.random.rand(16, 3, size, size).astype(np.float32), args.repeats)
                rows[label] = (b1, b16)
                print(f"{name:16} {size:>4} {label:10} {b1:>10.2f} {b16:>11.2f} {b1 / b16:>12.1f}x")
            print(f"{'':16} {'':>4} {'onnx/torch':10} {rows['onnxruntime'][0] / rows['torch'][0]:>10.2f} "
                  f"{rows['onnxruntime'][1] / rows['torch'][1]:>11.2f}   (time ratio, <1 = ONNX Runtime faster)")


if __name__ == "__main__":
    main()
