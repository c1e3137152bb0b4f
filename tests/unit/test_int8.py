"""int8 by ONNX Runtime static quantisation: it quantises, serves and is measured
beside fp32; a version without it is refused by name."""

from datetime import UTC

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


class OneQuery:
    """A cursor that answers int8_beside_fp32's one query with the given rows."""

    def __init__(self, rows):
        self.rows = rows

    def execute(self, sql, params):
        assert "int8_predictions" in sql and set(params) == {"start", "end", "cap"}

    def fetchall(self):
        return [dict(r) for r in self.rows]


def test_int8_beside_fp32_is_judged_on_the_labelled_images_only_one_got_right():
    from datetime import datetime

    from triptych.figures.ranges import range_int8

    worse = {
        "model_name": "resnet50",
        "model_version": "4",
        "answered": 400,
        "agreement": 0.9,
        "fp32_p50_ms": 12.0,
        "int8_p50_ms": 4.0,
        "labelled": 300,
        "both_right": 200,
        "fp32_only": 40,
        "int8_only": 8,
    }
    unlabelled = {**worse, "model_name": "mobilenet_v2", "labelled": 0, "both_right": 0, "fp32_only": 0, "int8_only": 0}
    now = datetime.now(UTC)
    judged = {r["model_name"]: r["test"] for r in range_int8(OneQuery([worse, unlabelled]), now, now, label=str.upper)}
    test = judged["resnet50"]
    assert (test["n"], test["b"], test["c"]) == (300, 40, 8)
    assert test["accuracy"] == pytest.approx([240 / 300, 208 / 300]) and test["p_value"] < 0.001
    assert test["verdict"].startswith("RESNET50 fp32 is more accurate than RESNET50 int8")
    assert judged["mobilenet_v2"]["n"] == 0 and "no labelled image" in judged["mobilenet_v2"]["verdict"]


def test_the_compare_card_says_how_to_turn_int8_on_and_shows_each_model_when_on():
    from dash_app.pages.compare_cards import int8_card

    assert "triptych models quantize" in str(int8_card([], "1h"))
    row = {
        "model_name": "resnet50",
        "model_version": "4",
        "answered": 400,
        "agreement": 0.9,
        "fp32_p50_ms": 12.0,
        "int8_p50_ms": 4.0,
        "test": {
            "n": 300,
            "b": 40,
            "c": 8,
            "accuracy": [0.8, 0.69],
            "p_value": 1e-6,
            "verdict": "ResNet50 fp32 is more accurate than ResNet50 int8",
        },
    }
    card = str(int8_card([row], "1h"))
    assert "compare-int8-resnet50" in card and "3.00× as fast" in card and "more accurate" in card
