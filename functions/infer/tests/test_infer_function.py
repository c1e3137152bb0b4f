"""The inference functions' logic (`triptych.inference.infer.Classifier`) with a
fake model, bucket and Kafka; tests/integration/test_pipeline.py runs the real
ones, and test_backends.py the real models."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from triptych.config import Settings
from triptych.contracts import TOPIC_PREDICTIONS, ImageMessage, PredictionMessage
from triptych.inference.infer import Classifier
from triptych.inference.serving_model import LoadedModel
from triptych.ingress.ingest import inline_pixels
from triptych.models.card import ModelCard
from triptych.sdk import PermanentError

LABELS = ["airplane", "cat", "dog", "ship", "truck", "frog"]


class FakeBackend:
    """Scores each image by its mean red, green and blue: a red image is a cat."""

    name = "fake"

    def __init__(self):
        self.batches = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.shape)
        scores = np.zeros((len(batch), len(LABELS)), dtype=np.float32)
        scores[:, 1:4] = batch.mean(axis=(2, 3))  # channels R, G, B -> cat, dog, ship
        exp = np.exp(scores * 10)
        return exp / exp.sum(axis=1, keepdims=True)


def model(input_size=64, resize="stretch", loaded=True):
    card = ModelCard(
        model_name="mobilenet_v2",
        labels=LABELS,
        input_size=input_size,
        resize=resize,
        dataset_id="test",
        version="7",
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    serving = LoadedModel(card, FakeBackend()) if loaded else None
    return SimpleNamespace(loaded=serving, current=serving)


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 80), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def message(image_id: str, colour=(250, 10, 10), inline=True, key=None) -> bytes:
    pixels = np.full((80, 96, 3), colour, dtype=np.uint8)
    return (
        ImageMessage(
            image_id=image_id,
            bucket="images",
            object_key=key or f"upload/{image_id}.png",
            sha256="0" * 64,
            image_format="png",
            width=96,
            height=80,
            source="upload",
            pixels=[inline_pixels(pixels, 64)] if inline else [],
        )
        .model_dump_json()
        .encode()
    )


IDS = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]


def classifier(s3, producer, models=None, role="champion"):
    return Classifier(Settings(), models or [model()], s3, producer, worker_id="infer-test-0", role=role)


def test_inline_pixels_are_classified_without_touching_the_bucket(s3, producer):
    predictions = classifier(s3, producer).handle([message(IDS[0], (250, 10, 10)), message(IDS[1], (10, 10, 250))])
    assert s3.reads == [], "the 64 px pixels came in the message"
    assert [p.top_k[0].label for p in predictions] == ["cat", "ship"]
    assert [(topic, key.decode()) for topic, key, _ in producer.sent] == [
        (TOPIC_PREDICTIONS, IDS[0]),
        (TOPIC_PREDICTIONS, IDS[1]),
    ]
    sent = PredictionMessage.model_validate_json(producer.sent[0][2])
    assert (sent.model_name, sent.model_version, sent.batch_size, sent.role) == ("mobilenet_v2", "7", 2, "champion")
    assert len(sent.top_k) == 5 and sent.top_k[0].confidence >= sent.top_k[1].confidence


def test_a_model_of_another_input_size_fetches_and_decodes(s3, producer):
    s3.put_object("images", "upload/green.png", io.BytesIO(data := png((10, 250, 10))), len(data))
    served = model(input_size=32, resize="shorter-side-crop")
    (prediction,) = classifier(s3, producer, [served]).handle([message(IDS[0], key="upload/green.png")])
    assert s3.reads == ["upload/green.png"] and prediction.top_k[0].label == "dog"
    assert served.loaded.backend.batches == [(1, 3, 32, 32)]


@pytest.mark.parametrize(
    "body,reason",
    [
        (b'{"image_id": "x"}', "malformed image message"),
        (None, "gone from the bucket"),
        (b"corrupt", "cannot decode"),
    ],
)
def test_what_cannot_be_classified_is_a_permanent_error(s3, producer, body, reason):
    if body is None:
        body = message(IDS[0], inline=False, key="upload/missing.png")
    elif body == b"corrupt":
        s3.put_object("images", "upload/bad.png", io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 50), 58)
        body = message(IDS[0], inline=False, key="upload/bad.png")
    with pytest.raises(PermanentError, match=reason):
        classifier(s3, producer).handle([body])
    assert producer.sent == []


def test_a_shadow_replica_without_a_challenger_answers_nothing_and_parses_nothing(s3, producer):
    shadow = classifier(s3, producer, [model(loaded=False)], role="shadow")
    assert shadow.handle([b"not even json"]) == [] and producer.sent == []


def test_a_champion_replica_without_a_model_fails_loudly(s3, producer):
    class NoModel:
        loaded = None

        @property
        def current(self):
            raise RuntimeError("no mobilenet_v2 model loaded")

    with pytest.raises(RuntimeError, match="no mobilenet_v2 model loaded"):
        classifier(s3, producer, [NoModel()]).handle([message(IDS[0])])
    assert producer.sent == []
