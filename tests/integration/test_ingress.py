"""Every ingress path ends in `images` and on `images-input-stream`; bad input is
refused (HTTP) or quarantined and dead-lettered (bucket drop), disturbing nothing."""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from triptych.contracts import TOPIC_DEAD_LETTERS, TOPIC_IMAGES_INPUT, DeadLetter, ImageMessage
from triptych.storage import minio_client

from ..images import image_bytes, png_claiming, truncated_jpeg
from .pipeline_helpers import TopicWatcher, unique, wait_rows
from .runtime_helpers import query, wait_for


@pytest.fixture(scope="module")
def uploads(ingress, admin_key):
    """A client of the upload function that presents a key with the `upload` scope."""
    with httpx.Client(base_url=ingress, headers={"X-API-Key": admin_key}, timeout=60) as client:
        yield client


@pytest.fixture()
def images_topic(stack):
    watcher = TopicWatcher(stack, TOPIC_IMAGES_INPUT)
    yield watcher
    watcher.close()


def messages_for(watcher, image_ids, timeout=30):
    wanted = set(image_ids)
    found = watcher.collect(lambda r: r.key.decode() in wanted, len(wanted), timeout)
    return [ImageMessage.model_validate_json(r.value) for r in found]


def test_single_upload_is_registered_and_published(stack, ingress, uploads, images_topic):
    label = unique("cat")
    reply = uploads.post(
        "/upload",
        files={"file": ("my cat ñ.jpg", image_bytes("JPEG"))},
        data={"label": label, "metadata": json.dumps({"camera": "kitchen"})},
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["status"] == "stored" and body["format"] == "jpeg"
    [row] = wait_rows(stack, "image_id = %s", (body["image_id"],), 1)
    assert (row["ground_truth_label"], row["source"], row["filename"]) == (label, "upload", "my cat ñ.jpg")
    assert row["client_metadata"] == {"camera": "kitchen"} and (row["width"], row["height"]) == (48, 32)
    [message] = messages_for(images_topic, [body["image_id"]])
    assert message.ground_truth_label == label and message.object_key == body["object_key"]


def test_concurrent_uploads_all_succeed(stack, ingress, uploads):
    with ThreadPoolExecutor(16) as pool:
        replies = list(
            pool.map(lambda _: uploads.post("/upload", files={"file": ("c.png", image_bytes("PNG"))}), range(48))
        )
    assert [r.status_code for r in replies] == [201] * 48, [r.text for r in replies if r.status_code != 201][:2]
    ids = [r.json()["image_id"] for r in replies]
    assert len(wait_rows(stack, "image_id = ANY(%s::uuid[])", (ids,), 48)) == 48


def test_duplicate_bytes_reuse_the_earlier_image(stack, ingress, uploads):
    data = image_bytes("PNG")
    first = uploads.post("/upload", files={"file": ("a.png", data)}).json()
    second = uploads.post("/upload", files={"file": ("b.png", data)})
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert second.json()["image_id"] == first["image_id"]


def test_batch_mixing_good_and_bad_files_answers_per_file(stack, ingress, uploads, images_topic):
    files = [
        ("files", ("good 1.png", image_bytes("PNG"))),
        ("files", ("empty.jpg", b"")),
        ("files", ("../../etc/passwd", image_bytes("WEBP"))),
        ("files", ("notes.jpg", b"just some text, honestly\n")),
        ("files", ("cut.jpg", truncated_jpeg())),
        ("files", ("bomb.png", png_claiming(100_000, 100_000))),
        ("files", ("huge.png", image_bytes("PNG", (700, 700)))),
        ("files", ("good 2.bmp", image_bytes("BMP"))),
    ]
    labels = ["a", None, "b", None, None, None, None, "c"]
    reply = uploads.post("/upload/batch", files=files, data={"labels": json.dumps(labels)})
    assert reply.status_code == 207, reply.text
    results = reply.json()["results"]
    assert [r["status"] for r in results] == [
        "stored",
        "rejected",
        "stored",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "stored",
    ]
    assert [r.get("code") for r in results if r["status"] == "rejected"] == [
        "empty",
        "unsupported_format",
        "corrupt",
        "too_many_pixels",
        "too_large",
    ]
    assert all(r["error"] for r in results if r["status"] == "rejected")
    assert results[2]["filename"] == "passwd" and ".." not in results[2]["object_key"]
    stored = [r["image_id"] for r in results if r["status"] == "stored"]
    rows = wait_rows(stack, "image_id = ANY(%s::uuid[])", (stored,), 3)
    assert sorted(r["ground_truth_label"] for r in rows) == ["a", "b", "c"]
    assert len(messages_for(images_topic, stored)) == 3


@pytest.mark.parametrize(
    "status,kwargs",
    [
        (404, dict(method="POST", url="/nope")),
        (405, dict(method="GET", url="/upload")),
        (415, dict(method="POST", url="/upload", content=b"{}", headers={"content-type": "application/json"})),
    ],
)
def test_wrong_requests_get_clear_errors(ingress, uploads, status, kwargs):
    reply = uploads.request(kwargs.pop("method"), kwargs.pop("url"), **kwargs)
    assert reply.status_code == status and reply.json()["error"]


def _stored_rows(stack, filename: str) -> int:
    return query(stack, "SELECT count(*) FROM images WHERE filename = %s", (filename,))[0][0]


@pytest.mark.parametrize(
    "credential,status,code",
    [
        (None, 401, "missing_credential"),
        ("revoked", 401, "revoked_key"),
        ("label-only", 403, "missing_scope"),
        ("tpk_0123456789ab_" + "x" * 43, 401, "unknown_key"),
        ("not a key at all", 401, "malformed_credential"),
    ],
)
def test_an_upload_without_a_fitting_key_is_refused_and_stores_nothing(stack, ingress, credential, status, code):
    from triptych.db.connection import Database
    from triptych.security.keys import revoke_key

    from .conftest import make_key

    if credential == "revoked":
        credential = make_key(stack, ["upload"])
        Database(stack).transaction(lambda cur: revoke_key(cur, credential.split("_")[1]))
    elif credential == "label-only":
        credential = make_key(stack, ["label"])
    name = unique("unauthorised") + ".png"
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    reply = httpx.post(f"{ingress}/upload", files={"file": (name, image_bytes("PNG"))}, headers=headers)
    assert (reply.status_code, reply.json()["code"]) == (status, code), reply.text
    if status == 401:
        assert reply.headers["www-authenticate"].startswith("Bearer")
    assert _stored_rows(stack, name) == 0


def test_past_its_rate_a_key_gets_429_with_retry_after_and_nothing_is_stored(stack, ingress):
    from .conftest import make_key

    key = make_key(stack, ["upload"], rate=3)
    client = httpx.Client(base_url=ingress, headers={"X-API-Key": key}, timeout=30)
    batch = client.post(
        "/upload/batch", files=[("files", (f"{unique('r')}.png", image_bytes("PNG"))) for _ in range(2)]
    )
    assert batch.status_code == 207 and batch.json()["stored"] == 2
    assert client.post("/upload", files={"file": ("third.png", image_bytes("PNG"))}).status_code == 201
    name = unique("fourth") + ".png"
    refused = client.post("/upload", files={"file": (name, image_bytes("PNG"))})
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert _stored_rows(stack, name) == 0


def test_an_oversized_body_is_refused_before_it_is_read(ingress, admin_key):
    from .pipeline_helpers import MAX_REQUEST_BYTES

    body = b"x" * (MAX_REQUEST_BYTES + 1)
    reply = httpx.post(
        f"{ingress}/upload/batch",
        content=body,
        headers={"X-API-Key": admin_key, "content-type": "multipart/form-data; boundary=b"},
    )
    assert reply.status_code == 413 and reply.json()["code"] == "body_too_large"

    def chunks():  # no Content-Length: the limit must hold while the body streams
        for _ in range(MAX_REQUEST_BYTES // 65536 + 2):
            yield b"y" * 65536

    reply = httpx.post(
        f"{ingress}/upload",
        content=chunks(),
        headers={"X-API-Key": admin_key, "content-type": "multipart/form-data; boundary=b"},
    )
    assert reply.status_code == 413


def test_plain_s3_put_is_ingested_with_the_same_checks(stack, ingress, images_topic):
    s3 = minio_client(stack)
    key = f"drops/{unique('plain drop')} é.png"
    data = image_bytes("PNG")
    s3.put_object(stack.images_bucket, key, io.BytesIO(data), len(data))
    [row] = wait_rows(stack, "object_key = %s", (key,), 1)
    assert row["source"] == "bucket" and row["status"] == "registered" and row["image_format"] == "png"
    assert len(messages_for(images_topic, [str(row["image_id"])])) == 1


def test_bad_bucket_drop_is_quarantined_recorded_and_dead_lettered(stack, ingress):
    dlq = TopicWatcher(stack, TOPIC_DEAD_LETTERS)
    s3 = minio_client(stack)
    key = f"drops/{unique('broken')}.jpg"
    data = truncated_jpeg()
    s3.put_object(stack.images_bucket, key, io.BytesIO(data), len(data))
    [row] = wait_rows(stack, "object_key = %s", (f"quarantine/{key}",), 1)
    assert row["status"] == "quarantined" and row["quarantine_reason"].startswith("corrupt")
    names = [o.object_name for o in s3.list_objects(stack.images_bucket, prefix="quarantine/drops/", recursive=True)]
    assert f"quarantine/{key}" in names
    assert not list(s3.list_objects(stack.images_bucket, prefix=key))
    letters = dlq.collect(lambda r: key in DeadLetter.model_validate_json(r.value).error, 1, 30)
    dlq.close()
    letter = DeadLetter.model_validate_json(letters[0].value)
    assert letter.function == "ingest" and letter.attempts == 1 and "quarantined: corrupt" in letter.error
    assert query(
        stack,
        "SELECT count(*) FROM system_events WHERE event_type = 'image_quarantined' AND image_id = %s",
        (str(row["image_id"]),),
    ) == [(1,)]


def test_a_bad_drop_inside_a_burst_is_dead_lettered_with_its_reason_and_the_others_flow(stack, ingress, images_topic):
    """Ingest takes batches; a batch with a bad object is retried one event at a
    time: the good ones are registered (once), the bad one dead-lettered once with
    the reason it was quarantined for, not "no longer exists"."""
    dlq = TopicWatcher(stack, TOPIC_DEAD_LETTERS)
    s3 = minio_client(stack)
    tag = unique("burst-with-bad")
    good = [f"drops/{tag}/good-{i}.png" for i in range(8)]
    bad = f"drops/{tag}/bad.jpg"

    def put(key):
        data = truncated_jpeg() if key == bad else image_bytes("PNG")
        s3.put_object(stack.images_bucket, key, io.BytesIO(data), len(data))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [*good[:4], bad, *good[4:]]))
    rows = wait_rows(stack, "object_key LIKE %s", (f"drops/{tag}/good-%",), len(good), timeout=60)
    assert sorted(r["object_key"] for r in rows) == sorted(good)
    letters = [DeadLetter.model_validate_json(r.value) for r in dlq.collect(lambda r: bad.encode() in r.value, 1, 30)]
    dlq.close()
    assert [(letter.function, letter.attempts) for letter in letters] == [("ingest", 1)]
    assert "quarantined: corrupt" in letters[0].error
    recorded = wait_for(
        lambda: query(
            stack,
            "SELECT count(*) FROM system_events WHERE event_type = 'dead_letter' AND details->>'error' LIKE %s",
            (f"%{bad}%",),
        )[0][0],
        30,
        message="the dead letter's system_events row",
    )
    assert recorded == 1
    published = messages_for(images_topic, [str(r["image_id"]) for r in rows])
    assert {m.object_key for m in published} == set(good)


def test_a_burst_of_1000_drops_is_ingested_exactly_once(stack, ingress, images_topic):
    prefix = f"burst/{unique('b')}/"
    s3 = minio_client(stack)
    payloads = [image_bytes("PNG", (16, 16)) for i in range(1000)]

    def put(i):
        s3.put_object(stack.images_bucket, f"{prefix}{i:04d}.png", io.BytesIO(payloads[i]), len(payloads[i]))

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(1000)))
    rows = wait_rows(stack, "object_key LIKE %s", (prefix + "%",), 1000, timeout=240)
    took = time.monotonic() - started
    assert len(rows) == 1000 and len({r["object_key"] for r in rows}) == 1000
    ids = {str(r["image_id"]) for r in rows}
    messages = images_topic.collect(lambda r: r.key.decode() in ids, 1000, 60)
    assert len(messages) == 1000 and len({m.key for m in messages}) == 1000
    print(f"\n[ingest] 1000 drops registered in {took:.1f}s ({1000 / took:.0f}/s end to end)")
