"""int8 by ONNX Runtime static quantisation: it quantises, serves and is measured
beside fp32; a version without it is refused by name."""

import numpy as np
import pytest

from triptych.models.backends import REQUIRED_FILES, export_onnx, load_backend
from triptych.models.card import INT8_FILE, ModelCard
from triptych.models.quantize import compare_int8
from triptych.models.zoo import build

LABELS = [f"c{k}" for k in range(10)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("mobilenet")
    card = ModelCard(model_name="mobilenet_v2", labels=LABELS, input_size=32, dataset_id="planted", version="1")
    export_onnx(build("mobilenet_v2", len(LABELS)).eval(), card, folder / "model.onnx")
    card.save(folder)
    return folder, card


def test_a_quantised_model_serves_and_is_measured_beside_fp32(exported):
    folder, card = exported
    rng = np.random.default_rng(0)
    calibration = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
    held_out = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    truth = rng.integers(0, 10, 64)
    result = compare_int8(folder, card, calibration, held_out, truth, threads=1, batch=8)
    assert (folder / INT8_FILE).stat().st_size < (folder / "model.onnx").stat().st_size / 2  # int8 weights
    assert 0 <= result["agreement"] <= 1 and result["passes"] == (result["agreement"] >= 0.99)
    assert result["fp32_ms_per_image"] > 0 and result["int8_ms_per_image"] > 0
    served = load_backend("onnx-int8", folder, card, threads=1)
    probabilities = served.predict(held_out[:4])
    assert probabilities.shape == (4, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    assert served.name == "onnxruntime-cpu-int8"
    assert REQUIRED_FILES["onnx-int8"] == (INT8_FILE,)


def test_a_version_without_its_int8_model_is_refused_with_what_to_run(tmp_path, exported):
    folder, card = exported
    (tmp_path / "model.onnx").write_bytes((folder / "model.onnx").read_bytes())
    with pytest.raises(FileNotFoundError, match="triptych models quantize mobilenet_v2 --version 1"):
        load_backend("onnx-int8", tmp_path, card)
