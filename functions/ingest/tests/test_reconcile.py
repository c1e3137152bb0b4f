"""The ingest function's reconcile trigger (`triptych.ingress.reconcile.Reconciler`)
with fakes for the bucket, the database, Kafka and the clock;
tests/integration/test_bucket_drops_through_outages.py runs it for real, through
Kafka, MinIO and PostgreSQL outages."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from triptych.config import Settings
from triptych.ingress import ingest as ingest_module
from triptych.ingress import reconcile as reconcile_module
from triptych.ingress.ingest import Ingestor
from triptych.ingress.objects import META_PREFIX, encode_metadata
from triptych.ingress.reconcile import Reconciler
from triptych.sdk import PermanentError

BUCKET = "images"
NOW = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)


def durable_event(key: str, age_s: float, etag: str = "e1") -> bytes:
    """MinIO's event as its durable target publishes it: the same record as the fast one."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "s3:ObjectCreated:Put",
                    "eventTime": (NOW - timedelta(seconds=age_s)).isoformat().replace("+00:00", "Z"),
                    "s3": {
                        "bucket": {"name": BUCKET},
                        "object": {
                            "key": key,
                            "size": 1,
                            "eTag": etag,
                            "userMetadata": {
                                f"{META_PREFIX}{k}": v for k, v in encode_metadata("unknown", key, "cat").items()
                            },
                        },
                    },
                }
            ]
        }
    ).encode()


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (20, 120, 220)).save(buffer, format="JPEG")
    return buffer.getvalue()


class Clock:
    def __init__(self):
        self.now = NOW.timestamp()
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture()
def world(s3, db, producer, monkeypatch):
    """The ingestor and reconciler over fakes; `rows` is the images table as
    {key: etag}, which the fast path may fill while the reconciler waits."""
    rows: dict[str, str | None] = {}
    events: list = []
    lookups: list = []

    def register(cur, image):
        rows[image.object_key] = image.etag
        return image.image_id, True

    def registered(cur, bucket, keys):
        lookups.append(keys)
        return {k: {rows[k]} for k in keys if k in rows}

    monkeypatch.setattr(ingest_module, "register_image", register)
    monkeypatch.setattr(ingest_module, "quarantine_reason", lambda cur, bucket, key, version: None)
    monkeypatch.setattr(ingest_module, "log_system_event", lambda *args, **kw: events.append((args, kw)))
    monkeypatch.setattr(ingest_module, "registered_etags", registered)
    monkeypatch.setattr(reconcile_module, "log_system_event", lambda *args, **kw: events.append((args, kw)))
    settings = Settings(images_bucket=BUCKET, reconcile_settle_s=10, reconcile_max_wait_s=120)
    ingestor = Ingestor(settings, s3, db, producer)
    clock = Clock()
    lag = {"value": 0, "calls": 0}

    def fast_path_lag():
        lag["calls"] += 1
        if isinstance(lag["value"], Exception):
            raise lag["value"]
        return lag["value"]

    reconciler = Reconciler(ingestor, fast_path_lag, clock=clock, sleep=clock.sleep)
    return reconciler, rows, events, lookups, clock, lag


def put(s3, key):
    data = jpeg()
    s3.put_object(BUCKET, key, io.BytesIO(data), len(data))


def recovered_events(events):
    return [args for args, _ in events if args[0] == "objects_recovered_late"]


def test_objects_the_fast_path_registered_are_dropped_with_one_lookup_and_no_wait(world, s3, producer):
    reconciler, rows, events, lookups, clock, lag = world
    rows.update({"drop/a.png": "e1", "drop/b.png": "e1"})
    counts = reconciler.handle_events([durable_event("drop/a.png", 2), durable_event("drop/b.png", 1)])
    assert counts == {"already_ingested": 2, "recovered": 0, "gone": 0, "refused": 0}
    assert len(lookups) == 1 and producer.sent == [] and clock.slept == 0 and lag["calls"] == 0
    assert recovered_events(events) == []


def test_an_object_whose_fast_event_was_lost_is_ingested_at_once_and_reported_late(world, s3, producer):
    reconciler, rows, events, lookups, clock, lag = world
    put(s3, "any/key/chosen by a client.png")
    counts = reconciler.handle_events([durable_event("any/key/chosen by a client.png", 95)])
    assert counts["recovered"] == 1 and clock.slept == 0
    assert "any/key/chosen by a client.png" in rows and len(producer.sent) == 1
    (row,) = recovered_events(events)
    assert "1 object(s)" in row[3] and "95 s late" in row[3]


def test_a_young_object_waits_for_the_fast_path_which_registers_it(world, s3, producer, monkeypatch):
    reconciler, rows, events, lookups, clock, lag = world
    put(s3, "drop/young.png")
    polls = []

    def registered_on_third_poll(cur, bucket, keys):
        polls.append(keys)
        if len(polls) >= 3:
            rows["drop/young.png"] = "e1"
        return {k: {rows[k]} for k in keys if k in rows}

    monkeypatch.setattr(ingest_module, "registered_etags", registered_on_third_poll)
    counts = reconciler.handle_events([durable_event("drop/young.png", 1)])
    assert counts == {"already_ingested": 1, "recovered": 0, "gone": 0, "refused": 0}
    assert producer.sent == [] and recovered_events(events) == [] and 0 < clock.slept < 10


def test_a_lagging_fast_path_is_waited_for_past_the_settle_time_but_not_past_the_maximum(world, s3, producer):
    reconciler, rows, events, lookups, clock, lag = world
    put(s3, "drop/late.png")
    lag["value"] = 40  # ingest is behind on minio-events: its copy may still come
    counts = reconciler.handle_events([durable_event("drop/late.png", 0)])
    assert counts["recovered"] == 1
    assert 120 <= clock.slept < 121 and lag["calls"] > 1  # held to reconcile_max_wait_s, then ingested
    clock.now, clock.slept = NOW.timestamp(), 0
    lag["value"] = RuntimeError("Kafka unreachable")  # an unknown lag is waited out the same way
    put(s3, "drop/later.png")
    assert reconciler.handle_events([durable_event("drop/later.png", 0)])["recovered"] == 1
    assert 120 <= clock.slept < 121


def test_the_settle_time_ends_the_wait_once_the_fast_path_is_idle(world, s3, producer):
    reconciler, rows, events, lookups, clock, lag = world
    put(s3, "drop/settle.png")
    assert reconciler.handle_events([durable_event("drop/settle.png", 4)])["recovered"] == 1
    assert 6 <= clock.slept < 7


def test_an_object_overwritten_under_a_known_key_is_new(world, s3, producer):
    reconciler, rows, events, lookups, clock, lag = world
    rows["drop/same-key.png"] = "old-etag"
    put(s3, "drop/same-key.png")
    assert reconciler.handle_events([durable_event("drop/same-key.png", 60, etag="new-etag")])["recovered"] == 1
    assert reconciler.handle_events([durable_event("drop/same-key.png", 60, etag='"new-etag"')]) == {
        "already_ingested": 1,
        "recovered": 0,
        "gone": 0,
        "refused": 0,
    }


def test_a_quarantined_object_counts_as_ingested(world, s3, producer):
    reconciler, rows, events, lookups, clock, lag = world
    rows["quarantine/drop/bad.png"] = "e1"
    assert reconciler.handle_events([durable_event("drop/bad.png", 60)])["already_ingested"] == 1


def test_a_deleted_object_is_counted_gone_without_a_report_and_an_invalid_one_is_quarantined(world, s3, producer):
    reconciler, rows, events, lookups, clock, lag = world
    s3.put_object(BUCKET, "drop/not-an-image.png", io.BytesIO(b"hello"), 5)
    counts = reconciler.handle_events(
        [durable_event("drop/deleted.png", 60), durable_event("drop/not-an-image.png", 60)]
    )
    assert counts == {"already_ingested": 0, "recovered": 0, "gone": 1, "refused": 1}
    (row,) = recovered_events(events)
    assert "1 refused" in row[3]
    assert any(args[0] == "image_quarantined" for args, _ in events)


def test_a_malformed_event_is_refused_and_its_neighbours_are_handled(world, s3, producer):
    reconciler, rows, events, lookups, clock, lag = world
    put(s3, "drop/fine.png")
    with pytest.raises(PermanentError, match="malformed MinIO event"):
        reconciler.handle_events([b"{not json", durable_event("drop/fine.png", 60)])
    assert "drop/fine.png" in rows
