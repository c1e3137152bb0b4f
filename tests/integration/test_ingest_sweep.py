"""MinIO publishes bucket events straight to Kafka; an event it could not deliver
(Kafka away) is made good by ingest's sweep. Here no ingest function runs, so the
object's event is never consumed, as if it had been lost."""

from __future__ import annotations

import io

from triptych.contracts import TOPIC_IMAGES_INPUT, ImageMessage
from triptych.ingress.ingest import Ingestor
from triptych.ingress.objects import encode_metadata, upload_key
from triptych.storage import minio_client

from ..images import image_bytes
from .pipeline_helpers import TopicWatcher
from .runtime_helpers import query


def registered(stack, key: str) -> list[dict]:
    return query(stack, "SELECT * FROM images WHERE object_key = %s", (key,), dicts=True)


def test_an_object_whose_event_never_came_is_ingested_by_the_sweep(stack):
    s3 = minio_client(stack)
    key = upload_key("swept.jpg", "synthetic")
    data = image_bytes("JPEG", (320, 240))
    s3.put_object(stack.images_bucket, key, io.BytesIO(data), len(data),
                  metadata=encode_metadata("synthetic", "swept.jpg", "circle", {"test": "sweep"}))
    ingestor = Ingestor.from_settings(stack)
    images = TopicWatcher(stack, TOPIC_IMAGES_INPUT)
    try:
        ingestor.sweep(settle_s=3600)  # written just now: left to its event
        assert registered(stack, key) == []

        swept = ingestor.sweep(settle_s=0)
        assert swept["missing"] >= 1 and swept["ingested"] >= 1
        [row] = registered(stack, key)
        assert (row["source"], row["ground_truth_label"], row["status"]) == ("synthetic", "circle", "registered")
        assert (row["width"], row["height"]) == (320, 240)
        [record] = images.collect(lambda r: r.key.decode() == str(row["image_id"]), 1, 30)
        message = ImageMessage.model_validate_json(record.value)
        assert message.object_key == key and [p.size for p in message.pixels] == [64]
        assert message.pixels[0].array().shape == (64, 64, 3)

        again = ingestor.sweep(settle_s=0)  # registered now: not missing any more
        assert again["listed"] >= 1 and registered(stack, key) == [row]
        assert query(stack, "SELECT count(*) FROM system_events WHERE event_type = 'objects_swept' "
                            "AND details->'keys' ? %s", (key,)) == [(1,)]
    finally:
        images.close()
