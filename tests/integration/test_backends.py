"""ONNX Runtime, the default CPU backend, gives the same answers as PyTorch on
every champion: top-1 agreement of at least 99.9 % on held-out images."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from triptych.datasets.synthetic import arrays
from triptych.models import registry
from triptych.models.backends import load_backend
from triptych.models.bootstrap import QUICK, missing_champions, train_as_mlrun_job
from triptych.models.preprocess import resize, to_batch
from triptych.models.zoo import ARCHITECTURES

HELD_OUT = 1000  # at 99.9 %, at most one disagreement per model


@pytest.fixture(scope="module")
def champions(stack):
    for name in missing_champions(stack):
        train_as_mlrun_job(name, QUICK, policy="always")
    with tempfile.TemporaryDirectory() as tmp:
        yield {
            name: registry.download(
                name, registry.version_for_alias(name, registry.CHAMPION, stack), Path(tmp) / name, stack
            )
            for name in ARCHITECTURES
        }


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_onnx_runtime_agrees_with_pytorch_on_held_out_images(champions, name):
    card, folder = champions[name]
    images, _ = arrays(HELD_OUT, "test", card.input_size)
    batch = to_batch([resize(image, card) for image in images], card)
    eager, onnx = load_backend("torch", folder, card), load_backend("onnx", folder, card, threads=1)
    p_eager = np.concatenate([eager.predict(batch[i : i + 100]) for i in range(0, HELD_OUT, 100)])
    p_onnx = np.concatenate([onnx.predict(batch[i : i + 100]) for i in range(0, HELD_OUT, 100)])
    agreement = float((p_eager.argmax(1) == p_onnx.argmax(1)).mean())
    assert agreement >= 0.999, f"{name}: top-1 agreement {agreement:.4f}"
    assert np.abs(p_eager - p_onnx).max() < 1e-3
    assert onnx.name == "onnxruntime-cpu"
