"""Ingest's sweep finds objects whose event never came, under any key, one page
of the bucket a tick. Here the objects go into a fresh bucket with no
notification at all, so no event exists for them: as if MinIO had been killed
holding them."""

from __future__ import annotations

import io
import uuid

from triptych.contracts import TOPIC_IMAGES_INPUT, ImageMessage
from triptych.ingress.ingest import Ingestor
from triptych.ingress.objects import encode_metadata
from triptych.ingress.sweep import sweep
from triptych.storage import minio_client

from ..images import image_bytes
from .pipeline_helpers import TopicWatcher
from .runtime_helpers import query


def rows_in(stack, bucket: str) -> list[dict]:
    return query(stack, "SELECT * FROM images WHERE bucket = %s ORDER BY object_key", (bucket,), dicts=True)


def full_pass(ingestor: Ingestor, page_size: int, settle_s: float) -> list[dict]:
    ticks = []
    while not ticks or not ticks[-1]["pass_complete"]:
        ticks.append(sweep(ingestor, page_size=page_size, settle_s=settle_s))
        assert len(ticks) < 50, "the sweep never wrapped"
    return ticks


def test_objects_under_any_key_whose_event_never_came_are_swept_once_page_by_page(stack):
    bucket = f"sweep-{uuid.uuid4().hex[:8]}"
    s3 = minio_client(stack)
    s3.make_bucket(bucket)
    keys = ["a-client's own/key 1.jpg", "b/2.png", "c.jpeg", "deep/er/than/that/4.jpg"]
    for i, key in enumerate(keys):
        data = image_bytes("PNG" if key.endswith(".png") else "JPEG", (96 + i, 64))
        metadata = encode_metadata("bucket", key.rsplit("/", 1)[-1], "circle", {}) if i == 0 else None
        s3.put_object(bucket, key, io.BytesIO(data), len(data), metadata=metadata)
    s3.put_object(bucket, "e/not-an-image.jpg", io.BytesIO(b"hello"), 5)
    ingestor = Ingestor.from_settings(stack.model_copy(update={"images_bucket": bucket}))
    images = TopicWatcher(stack, TOPIC_IMAGES_INPUT)
    try:
        young = full_pass(ingestor, page_size=2, settle_s=3600)  # written just now: left to their events
        assert sum(t["listed"] for t in young) == 5 and sum(t["candidates"] for t in young) == 0
        assert rows_in(stack, bucket) == []

        ticks = full_pass(ingestor, page_size=2, settle_s=0)
        assert len(ticks) == 3, "five keys, two a page"
        assert (sum(t["ingested"] for t in ticks), sum(t["refused"] for t in ticks)) == (4, 1)
        rows = rows_in(stack, bucket)
        assert sorted(r["object_key"] for r in rows if r["status"] == "registered") == sorted(keys)
        [bad] = [r for r in rows if r["status"] == "quarantined"]
        assert bad["object_key"] == "quarantine/e/not-an-image.jpg"
        [labelled] = [r for r in rows if r["object_key"] == keys[0]]
        assert (labelled["source"], labelled["ground_truth_label"]) == ("bucket", "circle")
        ids = {str(r["image_id"]) for r in rows if r["status"] == "registered"}
        published = images.collect(lambda r: r.key.decode() in ids, 4, 30)
        assert {ImageMessage.model_validate_json(r.value).object_key for r in published} == set(keys)

        again = full_pass(ingestor, page_size=2, settle_s=0)  # every one has its row now
        assert sum(t["missing"] for t in again) == 0 and rows_in(stack, bucket) == rows
        swept = query(
            stack,
            "SELECT details FROM system_events WHERE event_type = 'objects_swept' AND details->'keys' ?| %s",
            (keys + ["e/not-an-image.jpg"],),
        )
        assert sorted(k for (details,) in swept for k in details["keys"]) == sorted(keys + ["e/not-an-image.jpg"])
        [(seconds,)] = query(stack, "SELECT last_pass_seconds FROM bucket_sweeps WHERE bucket = %s", (bucket,))
        assert seconds is not None and seconds >= 0
    finally:
        images.close()
