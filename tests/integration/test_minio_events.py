"""MinIO publishes its own bucket events to Kafka (no code of ours in between)."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import unquote_plus

import boto3
import pytest
from kafka import KafkaConsumer, TopicPartition

from triptych.contracts import TOPIC_MINIO_EVENTS


def _consumer_at_end(stack) -> KafkaConsumer:
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_url, enable_auto_commit=False)
    partitions = [TopicPartition(TOPIC_MINIO_EVENTS, p) for p in consumer.partitions_for_topic(TOPIC_MINIO_EVENTS)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for tp in partitions:  # resolve the lazy seek now, before the put
        consumer.position(tp)
    return consumer


@pytest.mark.parametrize(
    "key_template",
    ["plain/{id}.png", "drops/with spaces {id}.png", "drops/ñandú café 写真 {id}.jpg"],
    ids=["plain", "spaces", "non-ascii"],
)
def test_put_object_publishes_event_with_unescaped_key(stack, key_template):
    key = key_template.format(id=uuid.uuid4().hex[:8])
    consumer = _consumer_at_end(stack)
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3_url,
        aws_access_key_id=stack.s3_access_key,
        aws_secret_access_key=stack.s3_secret_key,
        region_name="us-east-1",
    )
    s3.put_object(Bucket=stack.images_bucket, Key=key, Body=b"not really a png")
    deadline = time.monotonic() + 10
    found = None
    while found is None and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                event = json.loads(record.value)
                for rec in event.get("Records", []):
                    if unquote_plus(rec["s3"]["object"]["key"]) == key:
                        found = (event, rec)
    consumer.close()
    assert found is not None, f"no MinIO event for {key!r} on {TOPIC_MINIO_EVENTS} within 10 s"
    event, rec = found
    assert event["EventName"].startswith("s3:ObjectCreated:")
    assert rec["s3"]["bucket"]["name"] == stack.images_bucket
    assert rec["s3"]["object"]["size"] == len(b"not really a png")
