"""The pipeline's work without the pipeline: image bytes through decode,
preprocessing, the three champions and the comparison, in one process, batched.
On a GPU (`triptych bench --device cuda`) this is the figure that matters: fp16,
channels-last, large batches, and JPEG decoding on the GPU where it pays."""

from __future__ import annotations

import time

import numpy as np

from ..aggregation.compare import Answer, compare
from ..imaging import decode
from ..models.backends import load_backend
from ..models.preprocess import needed_side, resize, to_batch
from . import ceiling


def _gpu_preprocess(images: list, size: int, mean, std, device: str):
    """Decoded uint8 CHW tensors on the GPU to a normalised fp16 N x 3 x S x S batch (stretch resize)."""
    import torch
    import torch.nn.functional as F

    batch = (
        torch.stack(
            [
                F.interpolate(i[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)[
                    0
                ]
                for i in images
            ]
        )
        / 255.0
    )
    mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return ((batch - mean) / std).half().contiguous(memory_format=torch.channels_last)


def inprocess_rate(
    champions: list[ceiling.Champion],
    backend: str,
    threads: int | None,
    batch: int,
    data: list[tuple[str | None, bytes]],
    gpu_decode: bool = False,
) -> dict:
    """Images/s for bytes -> three answers -> comparison, and where the time went."""
    models = [(c, load_backend(backend, c.folder, c.card, threads)) for c in champions]
    largest = max(needed_side(c.card) for c in champions)  # decoded once, as large as the largest input needs
    decode_s = forward_s = 0.0
    started = time.perf_counter()
    compared = 0
    for start in range(0, len(data), batch):
        chunk = data[start : start + batch]
        t0 = time.perf_counter()
        if gpu_decode:
            import torch
            from torchvision.io import ImageReadMode, decode_jpeg

            pixels = decode_jpeg(
                [torch.frombuffer(bytearray(b), dtype=torch.uint8) for _, b in chunk],
                mode=ImageReadMode.RGB,
                device="cuda",
            )
        else:
            pixels = [decode(b, at_least=largest) for _, b in chunk]
        t1 = time.perf_counter()
        decode_s += t1 - t0
        answers: list[list[Answer]] = [[] for _ in chunk]
        for champion, model in models:
            card = champion.card
            t2 = time.perf_counter()
            if gpu_decode:
                probabilities = model.predict_tensor(
                    _gpu_preprocess(pixels, card.input_size, card.mean, card.std, "cuda")
                )
            else:
                probabilities = model.predict(to_batch([resize(p, card) for p in pixels], card))
            forward_s += time.perf_counter() - t2
            for row, probs in enumerate(probabilities):
                top = int(np.argmax(probs))
                answers[row].append(
                    Answer(champion.name, card.version or "?", card.labels[top], float(probs[top]), 0.0)
                )
        for (label, _), image_answers in zip(chunk, answers):
            compare(image_answers, label)
            compared += 1
    wall = time.perf_counter() - started
    return {
        "device": "cuda" if backend == "cuda" else "cpu",
        "backend": models[0][1].name,
        "batch": batch,
        "threads": threads,
        "gpu_decode": gpu_decode,
        "images": compared,
        "images_per_s": compared / wall,
        "decode_ms_per_image": decode_s * 1000 / compared,
        "forward_ms_per_image": forward_s * 1000 / compared,
    }


# END
