"""The upload function's logic (`triptych.ingress.upload.Uploader`) with fakes for
the bucket, the database and the key check; tests/integration/test_ingress.py runs
it for real."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from urllib3 import encode_multipart_formdata

from triptych.config import Settings
from triptych.ingress import upload as upload_module
from triptych.ingress.upload import Uploader
from triptych.security import AuthError, Principal


def png(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (seed % 256, 10, 20)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeGuard:
    def __init__(self, allow: bool = True):
        self.allow, self.charged = allow, []

    def require(self, headers, scope):
        if not self.allow or "X-API-Key" not in headers:
            raise AuthError(401, "missing_credential", f"this needs an API key with the `{scope}` scope")
        return Principal(subject="key:1 (test)", scopes=(scope,), caller="key:1")

    def charge_uploads(self, principal, count):
        self.charged.append(count)


@pytest.fixture()
def uploader(s3, db, monkeypatch):
    registered, earlier = [], {}
    monkeypatch.setattr(upload_module, "register_image", lambda cur, image: registered.append(image))
    monkeypatch.setattr(upload_module, "find_by_sha256", lambda cur, sha: earlier.get(sha))
    uploader = Uploader(Settings(duplicate_policy="reuse"), s3, db, guard=FakeGuard())
    uploader.registered, uploader.earlier = registered, earlier
    return uploader


def post(uploader, route, fields, headers=None):
    body, content_type = encode_multipart_formdata(fields)
    status, reply, _ = uploader.handle(
        route, "POST", body, content_type, {"X-API-Key": "k"} if headers is None else headers
    )
    return status, reply


def test_one_image_is_stored_with_its_label_and_registered(uploader, s3):
    status, reply = post(uploader, "/upload", {"file": ("cat.png", png()), "label": "cat"})
    assert status == 201 and reply["status"] == "stored" and reply["format"] == "png"
    (((bucket, key), stored),) = s3.objects.items()
    assert key == reply["object_key"] and stored["content_type"] == "image/png" and stored["data"] == png()
    (image,) = uploader.registered
    assert (image.image_id, image.ground_truth_label, image.filename) == (reply["image_id"], "cat", "cat.png")


def test_without_a_key_nothing_is_read_or_stored(uploader, s3):
    status, reply = post(uploader, "/upload", {"file": ("cat.png", png())}, headers={})
    assert status == 401 and reply["code"] == "missing_credential"
    assert s3.objects == {} and uploader.registered == []


def test_a_batch_answers_per_file_and_stores_only_the_good_ones(uploader, s3):
    fields = [
        ("files", ("a.png", png(1))),
        ("files", ("notes.txt", b"not an image at all")),
        ("files", ("b.png", png(2))),
        ("labels", json.dumps(["cat", None, "dog"])),
    ]
    status, reply = post(uploader, "/upload/batch", fields)
    assert status == 207 and (reply["stored"], reply["rejected"]) == (2, 1)
    assert [r["status"] for r in reply["results"]] == ["stored", "rejected", "stored"]
    assert reply["results"][1]["code"] == "unsupported_format"
    assert len(s3.objects) == 2 and [i.ground_truth_label for i in uploader.registered] == ["cat", "dog"]
    assert uploader.guard.charged == [3]


def test_the_same_bytes_again_reuse_the_earlier_image(uploader, s3):
    _, first = post(uploader, "/upload", {"file": ("cat.png", png())})
    uploader.earlier[first["sha256"]] = {"image_id": first["image_id"], "object_key": first["object_key"]}
    status, again = post(uploader, "/upload", {"file": ("copy.png", png())})
    assert status == 200 and again["status"] == "duplicate" and again["image_id"] == first["image_id"]
    assert len(s3.objects) == 1


@pytest.mark.parametrize("route,method,status", [("/nowhere", "POST", 404), ("/upload", "GET", 405)])
def test_wrong_routes_and_methods_get_clear_answers(uploader, route, method, status):
    code, reply, _ = uploader.handle(route, method, b"", None, {"X-API-Key": "k"})
    assert code == status and reply["error"]


@pytest.mark.parametrize(
    "fields,code",
    [
        ({"file": ("cat.png", png()), "labels": "[1, 2]"}, "bad_labels"),
        ({"file": ("cat.png", png()), "source": "satellite"}, "bad_source"),
        ([("file", ("a.png", png(1))), ("file", ("b.png", png(2)))], "file_count"),
    ],
)
def test_wrong_forms_are_refused_with_a_code_and_store_nothing(uploader, s3, fields, code):
    status, reply = post(uploader, "/upload", fields)
    assert status == 400 and reply["code"] == code and s3.objects == {}
