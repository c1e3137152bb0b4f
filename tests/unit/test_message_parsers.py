"""Hypothesis on every parser that reads what another process wrote (MinIO events,
image and prediction messages): whatever arrives, the answer is parsed values that
hold the contract's invariants, or a PermanentError (dead-lettered, never retried);
never another exception that would crash a replica or retry a poison message."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from triptych.aggregation.aggregate import parse_predictions
from triptych.inference.infer import parse_images
from triptych.ingress.ingest import parse_minio_event
from triptych.ingress.objects import sanitize_filename
from triptych.sdk import PermanentError

# Any JSON value, a few levels deep.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _minio_shaped(draw_key, draw_meta, draw_size):
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Records": [
            {
                "eventName": "s3:ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "images"},
                    "object": {"key": draw_key, "size": draw_size, "userMetadata": draw_meta},
                },
            }
        ],
    }


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.binary(max_size=200),
        st.text(max_size=200),
        st.builds(_minio_shaped, json_values, json_values, json_values),
    )
)
def test_a_minio_event_parses_or_is_a_permanent_error(body):
    try:
        refs = parse_minio_event(body)
    except PermanentError as exc:
        assert str(exc).startswith("malformed MinIO event")
        return
    for ref in refs:
        assert isinstance(ref.key, str) and isinstance(ref.bucket, str)
        assert set(ref.metadata) == {"source", "label", "filename", "client"}


def test_deeply_nested_json_is_a_permanent_error_too():
    try:
        parse_minio_event(b"[" * 100_000 + b"]" * 100_000)
    except PermanentError:
        return
    raise AssertionError("a 100,000-deep event was accepted")


IMAGE = {
    "image_id": "3f2b8c1e-5d4a-4c1b-9e7f-0a1b2c3d4e5f",
    "bucket": "images",
    "object_key": "a.png",
    "sha256": "a" * 64,
    "image_format": "png",
    "width": 4,
    "height": 4,
    "source": "upload",
}
PREDICTION = {
    "image_id": IMAGE["image_id"],
    "model_name": "resnet50",
    "model_version": "1",
    "top_k": [{"label": "cat", "confidence": 0.9}],
    "backend": "torch",
    "batch_size": 1,
    "worker_id": "w",
    "timings": {k: 1.0 for k in ("fetch_ms", "decode_ms", "preprocess_ms", "inference_ms", "total_ms")},
}


def _mutated(base: dict):
    """The valid message with one field replaced by anything, or dropped."""
    return st.builds(
        lambda field, value, drop: {k: v for k, v in {**base, field: value}.items() if not (drop and k == field)},
        st.sampled_from(sorted(base)),
        json_values,
        st.booleans(),
    )


@settings(max_examples=300, deadline=None)
@given(st.one_of(_mutated(IMAGE), json_values, st.binary(max_size=100)))
def test_an_image_message_parses_with_its_invariants_or_is_a_permanent_error(body):
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    try:
        [message] = parse_images([raw])
    except PermanentError:
        return
    assert message.width > 0 and message.height > 0 and len(message.sha256) == 64
    assert len(message.image_id) == 36


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(_mutated(PREDICTION), _mutated({**PREDICTION, "top_k": [{"label": "x", "confidence": 2}]}), json_values)
)
def test_a_prediction_message_parses_with_its_invariants_or_is_a_permanent_error(body):
    try:
        [message] = parse_predictions([json.dumps(body)])
    except PermanentError:
        return
    assert message.top_k and 0 <= message.confidence <= 1 and message.predicted_class
    assert message.batch_size > 0 and all(v >= 0 for v in message.timings.model_dump().values())


@given(st.one_of(st.none(), st.text(), st.binary().map(lambda b: b.decode("utf-8", "replace"))))
def test_a_sanitized_file_name_is_one_safe_path_component(name):
    safe = sanitize_filename(name)
    assert safe and len(safe) <= 120
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")
    assert all(ch.isprintable() for ch in safe)
