"""Bootstrap training as an MLRun job, the registry, and both backends, against
the real MLflow (Postgres + MinIO)."""

from __future__ import annotations

import numpy as np
import pytest

from triptych.datasets.synthetic import CLASSES, arrays
from triptych.models import registry
from triptych.models.backends import load_backend
from triptych.models.bootstrap import train_as_mlrun_job
from triptych.models.preprocess import to_batch

# Small enough for CI on two cores, large enough to be far above chance (10 %).
BUDGET = {"mobilenet_v2": {"train_count": 4000, "test_count": 300, "epochs": 2, "input_size": 64,
                           "learning_rate": 2e-3}}


@pytest.fixture(scope="module")
def trained(stack):
    outcome = train_as_mlrun_job("mobilenet_v2", BUDGET, policy="always")
    return outcome


def test_training_job_registers_and_promotes(stack, trained):
    assert trained["promoted"] is True
    assert registry.version_for_alias("mobilenet_v2", registry.CHAMPION, stack) == trained["version"]
    assert trained["accuracy"] > 0.3, "well above chance (0.1)"
    print(f"\n[train] mobilenet_v2 on {BUDGET}: held-out accuracy {trained['accuracy']:.3f} "
          f"in {trained['train_seconds']:.0f}s")


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
