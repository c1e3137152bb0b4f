"""How images are named and described in the bucket.

Object metadata travels inside MinIO's own bucket event, so the ingest function
learns an image's label, source and original filename without a side channel.
S3 metadata values must be ASCII, so values are percent-encoded.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

# Fixed namespace: the same object version with the same bytes always gets the
# same image id, in the upload function, in ingest, and on every replay.
IMAGE_ID_NAMESPACE = uuid.UUID("5f0b6c1e-6f1d-4c35-9a8e-7d3c1a2b9e40")

META_PREFIX = "x-amz-meta-"
META_SOURCE = "triptych-source"
META_LABEL = "triptych-label"
META_FILENAME = "triptych-filename"
META_CLIENT = "triptych-client"

QUARANTINE_PREFIX = "quarantine/"
SOURCES = ("upload", "bucket", "cifar10", "synthetic", "webcam", "video", "rtsp", "dir", "unknown")

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def image_id_for(bucket: str, key: str, version: str, sha256: str) -> str:
    return str(uuid.uuid5(IMAGE_ID_NAMESPACE, f"{bucket}\n{key}\n{version}\n{sha256}"))


def sanitize_filename(name: str | None, fallback: str = "image") -> str:
    """The last path component, NFC-normalised, without control characters or
    leading dots, at most 120 characters: `../../etc/passwd` becomes `passwd`."""
    if not name:
        return fallback
    base = re.split(r"[/\\]", name)[-1]
    base = _UNSAFE.sub("_", unicodedata.normalize("NFC", base))
    # Any other unprintable character (C1 controls, bidi overrides, separators) too:
    # a name is shown in pages and logs, where such characters can disguise it.
    base = "".join(ch if ch.isprintable() else "_" for ch in base).strip().lstrip(".")
    return base[-120:] or fallback


def upload_key(filename: str, source: str = "upload", now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{source}/{now:%Y/%m/%d}/{uuid.uuid4().hex[:12]}-{sanitize_filename(filename)}"


def encode_metadata(
    source: str, filename: str, label: str | None = None, client: dict[str, Any] | None = None
) -> dict[str, str | list[str] | tuple[str]]:
    meta: dict[str, str | list[str] | tuple[str]] = {META_SOURCE: source, META_FILENAME: quote(filename, safe="")}
    if label:
        meta[META_LABEL] = quote(label, safe="")
    if client:
        meta[META_CLIENT] = quote(json.dumps(client, separators=(",", ":")), safe="")
    return meta


def decode_metadata(raw: dict[str, str] | None) -> dict[str, Any]:
    """Our fields from S3 user metadata as seen in an event or a stat (any key case)."""
    found = {}
    for key, value in (raw or {}).items():
        name = key.lower().removeprefix(META_PREFIX)
        if name.startswith("triptych-"):
            found[name] = unquote(value)
    client: dict[str, Any] = {}
    if META_CLIENT in found:
        try:
            client = json.loads(found[META_CLIENT])
        except ValueError:
            client = {"raw": found[META_CLIENT]}
    source = found.get(META_SOURCE, "bucket")
    return {
        "source": source if source in SOURCES else "unknown",
        "label": found.get(META_LABEL) or None,
        "filename": found.get(META_FILENAME),
        "client": client if isinstance(client, dict) else {"value": client},
    }


def move_to_quarantine(s3, bucket: str, key: str, version: str | None, code: str) -> str:
    """Move an object under `quarantine/` (kept, with its reason, out of the
    pipeline's way) and return its new key. Idempotent: an object already moved is fine."""
    from minio.commonconfig import CopySource
    from minio.error import S3Error

    target = f"{QUARANTINE_PREFIX}{key}"
    try:
        s3.copy_object(
            bucket,
            target,
            CopySource(bucket, key, version_id=version or None),
            metadata={"triptych-quarantine-reason": code},
            metadata_directive="REPLACE",
        )
        s3.remove_object(bucket, key, version_id=version or None)
    except S3Error as exc:
        if exc.code != "NoSuchKey":  # already moved by an earlier attempt
            raise
    return target
