"""The CUDA fp16 backend against PyTorch on the CPU (fp32): same answers, and
forward time per image at batch 1 and 16. Needs a GPU; no servers.

Random weights with the classifier head scaled up, so that the logits spread
like a trained model's and top-1 agreement means something (a fresh head
predicts near uniform, where fp16 rounding flips ties).

    .venv/bin/python bench/cuda_backend.py
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from models_forward import per_image_ms  # bench/ is on the path when a script here runs

from triptych.models.backends import TorchBackend
from triptych.models.zoo import ARCHITECTURES, build


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--px", type=int, default=64, help="input size (the bootstrap budgets all train at 64)")
    size = parser.parse_args().px
    if not torch.cuda.is_available():
        raise SystemExit("no GPU visible to torch: this benchmark needs one")
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    print(f"{'model':16} {'px':>4} {'top-1 agree':>12} {'max |dp|':>9} {'cpu b1':>8} {'cpu b16':>8} "
          f"{'gpu b1':>8} {'gpu b16':>8} {'b16 gpu/cpu':>12}")
    rng = np.random.default_rng(0)
    for name in ARCHITECTURES:
        torch.manual_seed(0)
        model = build(name, 10).eval()
        head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            head.weight.mul_(20)  # more would overflow fp16 (max 65504) in fresh eval-mode nets
        cpu = TorchBackend(model)
        gpu = TorchBackend(copy.deepcopy(model), "cuda", fp16=True)
        inputs = rng.standard_normal((256, 3, size, size)).astype(np.float32)
        p_cpu = np.concatenate([cpu.predict(inputs[i: i + 64]) for i in range(0, 256, 64)])
        p_gpu = np.concatenate([gpu.predict(inputs[i: i + 64]) for i in range(0, 256, 64)])
        if not np.isfinite(p_gpu).all():
            print(f"{name:16} {size:>4} fp16 produced non-finite probabilities")
            continue
        agree = float((p_cpu.argmax(1) == p_gpu.argmax(1)).mean())
        diff = float(np.abs(p_cpu - p_gpu).max())
        b1, b16 = inputs[:1], inputs[:16]
        times = [per_image_ms(backend, batch, repeats=20) for backend in (cpu, gpu) for batch in (b1, b16)]
        print(f"{name:16} {size:>4} {agree:>12.3f} {diff:>9.4f} " + " ".join(f"{t:>8.2f}" for t in times)
              + f" {times[3] / times[1]:>12.3f}")


if __name__ == "__main__":
    main()
