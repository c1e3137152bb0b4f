"""The ingest function's logic (`triptych.ingress.ingest.Ingestor`) with fakes for
the bucket, the database and Kafka; tests/integration/test_ingress.py,
test_minio_events.py and test_ingest_sweep.py run it for real."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from triptych.config import Settings
from triptych.contracts import TOPIC_IMAGES_INPUT, ImageMessage
from triptych.ingress import ingest as ingest_module
from triptych.ingress.ingest import Ingestor
from triptych.ingress.objects import META_PREFIX, encode_metadata
from triptych.sdk import PermanentError

BUCKET = "images"


def jpeg(colour=(200, 30, 40), size=(320, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def event(*keys: str) -> bytes:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "s3:ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": BUCKET},
                        "object": {
                            "key": key,
                            "size": 1,
                            "userMetadata": {
                                f"{META_PREFIX}{k}": v
                                for k, v in encode_metadata("upload", key.rsplit("/", 1)[-1], "cat").items()
                            },
                        },
                    },
                }
                for key in keys
            ]
        }
    ).encode()


@pytest.fixture()
def ingestor(s3, db, producer, monkeypatch):
    rows, events = [], []

    def register(cur, image):
        rows.append(image)
        return image.image_id, True

    monkeypatch.setattr(ingest_module, "register_image", register)
    monkeypatch.setattr(ingest_module, "quarantine_reason", lambda cur, bucket, key, version: None)
    monkeypatch.setattr(ingest_module, "log_system_event", lambda *args, **kw: events.append((args, kw)))
    ingestor = Ingestor(Settings(images_bucket=BUCKET), s3, db, producer)
    ingestor.rows, ingestor.events = rows, events
    return ingestor


def put(s3, key, data):
    s3.put_object(BUCKET, key, io.BytesIO(data), len(data))


def test_a_batch_is_registered_in_one_transaction_and_published_with_inline_pixels(ingestor, s3, db, producer):
    put(s3, "upload/2026/11/27/a.jpg", jpeg((250, 0, 0)))
    put(s3, "upload/2026/11/27/b.jpg", jpeg((0, 0, 250)))
    ids = ingestor.handle_events([event("upload/2026/11/27/a.jpg"), event("upload/2026/11/27/b.jpg")])
    assert len(ids) == 2 and db.transactions == 1
    assert [(r.object_key, r.ground_truth_label, r.width) for r in ingestor.rows] == [
        ("upload/2026/11/27/a.jpg", "cat", 320),
        ("upload/2026/11/27/b.jpg", "cat", 320),
    ]
    messages = [ImageMessage.model_validate_json(value) for _, _, value in producer.sent]
    assert [topic for topic, _, _ in producer.sent] == [TOPIC_IMAGES_INPUT] * 2
    assert [key.decode() for _, key, _ in producer.sent] == ids == [m.image_id for m in messages]
    (pixels,) = messages[0].pixels
    red = pixels.array()
    assert pixels.size == 64 and red.shape == (64, 64, 3) and np.all(red[..., 0] > 200) and np.all(red[..., 2] < 40)


def test_a_corrupt_object_is_quarantined_and_named_while_its_neighbour_goes_through(ingestor, s3, producer):
    put(s3, "upload/2026/11/27/good.jpg", jpeg())
    put(s3, "upload/2026/11/27/bad.jpg", jpeg()[:300])
    with pytest.raises(PermanentError, match="bad.jpg quarantined: corrupt"):
        ingestor.handle_events([event("upload/2026/11/27/good.jpg", "upload/2026/11/27/bad.jpg")])
    assert [r.object_key for r in ingestor.rows if r.status != "quarantined"] == ["upload/2026/11/27/good.jpg"]
    assert len(producer.sent) == 1, "the good one was published; the corrupt one was not"
    assert (BUCKET, "quarantine/upload/2026/11/27/bad.jpg") in s3.objects
    assert (BUCKET, "upload/2026/11/27/bad.jpg") not in s3.objects
    (quarantined,) = [r for r in ingestor.rows if r.status == "quarantined"]
    assert quarantined.quarantine_reason.startswith("corrupt")
    assert [args[0] for args, _ in ingestor.events] == ["image_quarantined"]


def test_a_malformed_event_is_permanent_and_our_own_quarantine_moves_are_skipped(ingestor, producer):
    with pytest.raises(PermanentError, match="malformed MinIO event"):
        ingestor.handle_events([b"{not json"])
    assert ingestor.handle_events([event("quarantine/upload/x.jpg")]) == [] and producer.sent == []


def test_an_object_gone_before_its_event_is_permanent(ingestor, producer):
    with pytest.raises(PermanentError, match="no longer exists"):
        ingestor.handle_events([event("upload/2026/11/27/vanished.jpg")])
    assert producer.sent == []
