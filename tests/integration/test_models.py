"""Bootstrap training as an MLRun job, the registry, and both backends, against
the real MLflow (Postgres + MinIO)."""

from __future__ import annotations

import numpy as np
import pytest

from triptych.datasets.synthetic import CLASSES, arrays
from triptych.inference.serving_model import ServingModel
from triptych.lifecycle.int8 import quantize_version
from triptych.models import registry
from triptych.models.backends import load_backend
from triptych.models.bootstrap import train_as_mlrun_job
from triptych.models.card import INT8_FILE
from triptych.models.preprocess import to_batch

# Small enough for CI on two cores, large enough to be far above chance (10 %).
BUDGET = {
    "mobilenet_v2": {"train_count": 4000, "test_count": 300, "epochs": 2, "input_size": 64, "learning_rate": 2e-3}
}


@pytest.fixture(scope="module")
def trained(stack):
    outcome = train_as_mlrun_job("mobilenet_v2", BUDGET, policy="always")
    return outcome


def test_training_job_registers_and_promotes(stack, trained):
    assert trained["promoted"] is True
    assert registry.version_for_alias("mobilenet_v2", registry.CHAMPION, stack) == trained["version"]
    assert trained["accuracy"] > 0.3, "well above chance (0.1)"
    print(
        f"\n[train] mobilenet_v2 on {BUDGET}: held-out accuracy {trained['accuracy']:.3f} "
        f"in {trained['train_seconds']:.0f}s"
    )


def test_champion_classifies_held_out_images_the_same_on_both_backends(stack, trained, tmp_path):
    card, folder = registry.download("mobilenet_v2", trained["version"], tmp_path, stack)
    assert card.labels == list(CLASSES) and card.version == trained["version"]
    images, labels = arrays(200, "test", card.input_size)
    batch = to_batch(images, card)
    eager = load_backend("torch", folder, card).predict(batch)
    onnx = load_backend("onnx", folder, card).predict(batch)
    assert (eager.argmax(1) == labels).mean() > 0.3
    assert (eager.argmax(1) == onnx.argmax(1)).mean() >= 0.99
    np.testing.assert_allclose(eager, onnx, atol=1e-3)


def test_a_worse_model_is_not_promoted(stack, trained):
    outcome = train_as_mlrun_job("mobilenet_v2", BUDGET, policy="if-better", train_count=200, epochs=1)
    assert outcome["promoted"] is False and outcome["decision"] == "rejected" and "does not beat" in outcome["reason"]
    # Both judged on the same held-out images: the champion's figure is from this run, not its card.
    assert outcome["champion_before"] == trained["version"] and outcome["champion_accuracy"] > outcome["accuracy"]
    assert registry.version_for_alias("mobilenet_v2", registry.CHAMPION, stack) == trained["version"]
    assert registry.version_for_alias("mobilenet_v2", registry.CHALLENGER, stack) != outcome["version"]
    assert registry.tag_of("mobilenet_v2", outcome["version"], "decision", stack) == "rejected"


def test_an_int8_copy_is_measured_tagged_published_and_served_by_a_machine_that_lacked_it(stack, trained, tmp_path):
    """`triptych models quantize` end to end against the real registry: quantised,
    measured against fp32 on held-out images, its figures tagged on the version, the
    int8 file added to the version's artifacts; a replica whose model cache holds the
    version without it fetches it again and serves int8 (TRIPTYCH_INFER_BACKEND=onnx-int8).
    The gate is lowered to 0 here: the quick champion's small margins flip too often
    for 99 %, and what is under test is the publishing, not the agreement."""
    version = trained["version"]
    # Another machine's model cache, holding the version as it was before: fp32 only.
    elsewhere = stack.model_copy(update={"cache_dir": tmp_path / "cache"})
    fp32 = ServingModel("mobilenet_v2", elsewhere, "onnx", threads=1)
    fp32.swap_to(version)
    assert not (registry.cached_download("mobilenet_v2", version, elsewhere)[1] / INT8_FILE).exists()

    result = quantize_version(
        "mobilenet_v2", version, stack, calibration_count=64, held_out_count=200, min_agreement=0.0
    )
    assert result["passes"] and result["published"].endswith(f"/{INT8_FILE}")
    assert result["held_out"] == 200 and 0.5 < result["agreement"] <= 1.0 and result["speedup"] > 0
    assert abs(result["int8_accuracy"] - result["fp32_accuracy"]) <= 1 - result["agreement"] + 1e-9
    assert registry.tag_of("mobilenet_v2", version, "int8.published", stack) == "true"
    assert float(registry.tag_of("mobilenet_v2", version, "int8.agreement", stack)) == pytest.approx(
        result["agreement"], abs=1e-4
    )

    int8 = ServingModel("mobilenet_v2", elsewhere, "onnx-int8", threads=1)
    int8.swap_to(version)  # the cached copy lacks the int8 file: fetched again, with it
    assert (registry.cached_download("mobilenet_v2", version, elsewhere)[1] / INT8_FILE).exists()
    images, labels = arrays(100, "test", int8.current.card.input_size)
    batch = to_batch(images, int8.current.card)
    served, reference = int8.current.backend.predict(batch).argmax(1), fp32.current.backend.predict(batch).argmax(1)
    assert int8.current.backend.name != fp32.current.backend.name
    assert (served == reference).mean() > 0.5 and (served == labels).mean() > 0.3
