"""The bench's null stand-in: a fixed, valid answer at no cost, which the serving
path never loads by accident."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from triptych.config import Settings
from triptych.errors import StackError
from triptych.models import registry
from triptych.models.backends import load_backend
from triptych.models.card import ModelCard
from triptych.models.null_backend import NullBackend, is_null, null_card
from triptych.stack.manager import Stack

CARD = ModelCard(model_name="resnet50", labels=["a", "b", "c"], input_size=224, dataset_id="d", version="7")


def test_the_stand_in_answers_a_fixed_distribution_per_image():
    answer = NullBackend(3).predict(np.zeros((4, 3, 224, 224), np.float32))
    assert answer.shape == (4, 3) and np.allclose(answer.sum(axis=1), 1.0) and (answer.argmax(axis=1) == 0).all()


def test_its_answers_say_so_in_their_version_and_origin():
    marked = null_card(CARD)
    assert marked.version == "7+null" and is_null(marked) and not is_null(CARD)


def test_the_serving_path_never_loads_it():
    with pytest.raises(ValidationError):
        Settings(_env_file=None, infer_backend="null")
    with pytest.raises(ValueError):
        load_backend("null", None, CARD)


def test_triptych_up_refuses_the_null_models_setting(tmp_path):
    with pytest.raises(StackError, match="bench --null-models"):
        Stack(Settings(_env_file=None, data_dir=tmp_path, bench_null_models=True)).up()


def test_the_registry_refuses_to_register_it():
    with pytest.raises(ValueError, match="never registered"):
        registry.register(None, null_card(CARD))
