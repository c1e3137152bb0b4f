"""Fakes shared by the functions' own unit tests: in-memory stand-ins for the
bucket, the database and the Kafka producer, so a function's logic is tested
without the stack (its integration tests, under tests/integration, use the real one)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from minio.error import S3Error


def missing(key: str) -> S3Error:
    return S3Error(None, "NoSuchKey", "The specified key does not exist.", key, "req", "host")


class FakeS3:
    """The bucket operations the functions use, on a dict of (bucket, key) -> bytes."""

    def __init__(self):
        self.objects: dict[tuple[str, str], dict] = {}
        self.reads: list[str] = []

    def put_object(self, bucket, key, data, length, content_type=None, metadata=None):
        self.objects[(bucket, key)] = {
            "data": data.read(length),
            "content_type": content_type,
            "metadata": dict(metadata or {}),
        }
        return SimpleNamespace(version_id="")

    def get_object(self, bucket, key, version_id=None):
        self.reads.append(key)
        if (bucket, key) not in self.objects:
            raise missing(key)
        return _Response(self.objects[(bucket, key)]["data"])

    def copy_object(self, bucket, key, source, metadata=None, metadata_directive=None):
        entry = self.objects.get((source.bucket_name, source.object_name))
        if entry is None:
            raise missing(source.object_name)
        self.objects[(bucket, key)] = {**entry, "metadata": dict(metadata or {})}

    def remove_object(self, bucket, key, version_id=None):
        self.objects.pop((bucket, key), None)

    def stat_object(self, bucket, key, version_id=None):
        if (bucket, key) not in self.objects:
            raise missing(key)
        entry = self.objects[(bucket, key)]
        return SimpleNamespace(
            size=len(entry["data"]),
            version_id="",
            content_type=entry["content_type"],
            metadata={f"x-amz-meta-{k}": v for k, v in entry["metadata"].items()},
        )


class _Response(io.BytesIO):
    def release_conn(self):
        pass


@dataclass
class FakeDb:
    """`Database.transaction(fn)` calls fn with a cursor; the functions' SQL helpers
    are replaced in each test, so the cursor is only a token."""

    transactions: int = 0
    cursor: object = field(default_factory=object)

    def transaction(self, fn):
        self.transactions += 1
        return fn(self.cursor)


class FakeProducer:
    """Kafka's producer: records what was sent; `fail` makes every send fail."""

    def __init__(self, fail: Exception | None = None):
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = fail

    def send(self, topic, key=None, value=None, headers=None):
        if self.fail:
            raise self.fail
        self.sent.append((topic, key, value))
        return SimpleNamespace(get=lambda timeout=None: None)

    def flush(self, timeout=None):
        pass


@pytest.fixture()
def s3():
    return FakeS3()


@pytest.fixture()
def db():
    return FakeDb()


@pytest.fixture()
def producer():
    return FakeProducer()
