"""From MinIO's bucket event to a registered image on `images-input-stream`.

Every object in the bucket gets the same checks, however it arrived (upload
function, producer, or any S3 client). A valid image is registered idempotently
(its id is derived from bucket, key, version and sha256) and published keyed by
image id. An invalid one is moved under `quarantine/` with its reason, recorded
in `images` and `system_events`, and the event is dead-lettered: nothing is
deleted silently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_plus

import numpy as np
from minio import Minio
from minio.error import S3Error

from ..bus import producer as make_producer
from ..config import Settings, get_settings
from ..contracts import TOPIC_IMAGES_INPUT, ImageMessage, Pixels
from ..db.connection import Database
from ..db.events import log_system_event
from ..db.images import NewImage, quarantine_reason, register_image, registered_keys
from ..imaging import resize_to
from ..sdk import PermanentError
from ..storage import minio_client, read_object
from .objects import (
    QUARANTINE_PREFIX,
    SOURCES,
    decode_metadata,
    image_id_for,
    move_to_quarantine,
    sanitize_filename,
)
from .validation import ImageInfo, InvalidImage, validate_image

log = logging.getLogger("triptych.ingest")

@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version: str
    size: int | None
    etag: str | None
    metadata: dict[str, Any]


def parse_minio_event(body: Any) -> list[ObjectRef]:
    """The objects an `s3:ObjectCreated:*` event names. Keys arrive URL-escaped."""
    try:
        event = json.loads(body) if isinstance(body, (bytes, str)) else body
        refs = []
        for record in event["Records"]:
            if not str(record.get("eventName", "s3:ObjectCreated:")).startswith("s3:ObjectCreated:"):
                continue
            s3 = record["s3"]
            obj = s3["object"]
            refs.append(ObjectRef(
                bucket=s3["bucket"]["name"],
                key=unquote_plus(obj["key"]),
                version=obj.get("versionId") or "",
                size=obj.get("size"),
                etag=obj.get("eTag"),
                metadata=decode_metadata(obj.get("userMetadata")),
            ))
        return refs
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise PermanentError(f"malformed MinIO event: {type(exc).__name__}: {exc}") from exc


def inline_pixels(pixels, size: int) -> Pixels:
    """The image as a model of input `size` sees it (the same resize as training)."""
    resized = np.ascontiguousarray(resize_to(pixels, size, "stretch"))
    return Pixels(size=size, resize="stretch", rgb_b64=base64.b64encode(resized.tobytes()).decode())


@dataclass(frozen=True)
class Prepared:
    """An object fetched and checked, ready to register and publish."""

    ref: ObjectRef
    info: ImageInfo
    image: NewImage
    pixels: list[Pixels]


class Ingestor:
    def __init__(self, settings: Settings, s3: Minio, db: Database, producer):
        self.settings = settings
        self.s3 = s3
        self.db = db
        self.producer = producer
        # Fetching waits on MinIO and decoding releases the GIL: a few at once.
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ingest")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Ingestor":
        settings = settings or get_settings()
        return cls(settings, minio_client(settings), Database(settings), make_producer(settings))

    def handle_event(self, body: Any) -> list[str]:
        """Ingest every object of one event; returns the image ids registered."""
        return self.handle_events([body])

    def handle_events(self, bodies: list) -> list[str]:
        """Ingest every object of a batch of events: fetched and checked in
        parallel, registered in one transaction, published together. Returns the
        image ids. Objects that cannot be ingested (quarantined, gone, malformed
        event) do not stop the others; the batch then raises PermanentError
        naming them, so the delivery wrapper retries its events one by one and dead-letters
        only theirs (the others are found registered and published again:
        consumers are idempotent)."""
        started = time.perf_counter()
        refs, failures = [], []
        for body in bodies:
            try:
                refs.extend(ref for ref in parse_minio_event(body) if not ref.key.startswith(QUARANTINE_PREFIX))
            except PermanentError as exc:  # our own quarantine moves raise events too, skipped above
                failures.append(str(exc))
        prepared = []
        outcomes = self.pool.map(self._prepare_or_fail, refs) if len(refs) > 1 else map(self._prepare_or_fail, refs)
        for outcome in outcomes:
            if isinstance(outcome, PermanentError):
                failures.append(str(outcome))
            else:
                prepared.append(outcome)
        ids = self._register_and_publish(prepared, started)
        if failures:
            raise PermanentError("; ".join(failures))
        return ids

    def ingest(self, ref: ObjectRef) -> str:
        """Ingest one object (the sweep's way in); PermanentError if it cannot be."""
        started = time.perf_counter()
        return self._register_and_publish([self._prepare(ref)], started)[0]

    def _fetch(self, ref: ObjectRef) -> bytes:
        try:
            # Never more than the limit allows: one byte over is enough to reject it.
            return read_object(self.s3, ref.bucket, ref.key, ref.version, limit=self.settings.max_image_bytes + 1)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchVersion", "NoSuchBucket"):
                reason = self._quarantined_as(ref)
                if reason:  # moved by an earlier try of this event (a batch retried one by one): same reason
                    raise PermanentError(f"{ref.bucket}/{ref.key} quarantined: {reason}") from exc
                raise PermanentError(f"{ref.bucket}/{ref.key} no longer exists ({exc.code})") from exc
            raise

    def _quarantined_as(self, ref: ObjectRef) -> str | None:
        return self.db.transaction(
            lambda cur: quarantine_reason(cur, ref.bucket, f"{QUARANTINE_PREFIX}{ref.key}", ref.version))

    def _prepare_or_fail(self, ref: ObjectRef) -> "Prepared | PermanentError":
        try:
            return self._prepare(ref)
        except PermanentError as exc:
            return exc

    def _prepare(self, ref: ObjectRef) -> "Prepared":
        """Fetch and check one object, and make its row and its inline pixels."""
        data = self._fetch(ref)
        meta = ref.metadata
        filename = sanitize_filename(meta.get("filename") or ref.key.rsplit("/", 1)[-1])
        sizes = self.settings.inline_pixel_sizes
        try:
            info = validate_image(data, self.settings.max_image_bytes, self.settings.max_image_pixels,
                                  decode_at_least=max(sizes, default=None))
        except InvalidImage as exc:
            self._quarantine(ref, data, filename, exc)
            raise PermanentError(f"{ref.bucket}/{ref.key} quarantined: {exc.code}: {exc}") from exc
        image = NewImage(
            image_id=image_id_for(ref.bucket, ref.key, ref.version, info.sha256),
            bucket=ref.bucket, object_key=ref.key, object_version=ref.version, sha256=info.sha256,
            etag=ref.etag, filename=filename, content_type=info.content_type, image_format=info.format,
            size_bytes=info.size_bytes, width=info.width, height=info.height, channels=info.channels,
            source=meta["source"], ground_truth_label=meta["label"], client_metadata=meta["client"],
        )
        return Prepared(ref, info, image, [inline_pixels(info.pixels, size) for size in sizes])

    def _register_and_publish(self, prepared: list["Prepared"], started: float) -> list[str]:
        if not prepared:
            return []
        ids = self.db.transaction(lambda cur: [register_image(cur, p.image)[0] for p in prepared])
        futures = []
        for p, image_id in zip(prepared, ids):
            message = ImageMessage(
                image_id=image_id, bucket=p.ref.bucket, object_key=p.ref.key, object_version=p.ref.version,
                sha256=p.info.sha256, image_format=p.info.format, width=p.info.width, height=p.info.height,
                source=p.ref.metadata["source"], ground_truth_label=p.ref.metadata["label"], pixels=p.pixels,
                ingest_ms=(time.perf_counter() - started) * 1000,
            )
            futures.append(self.producer.send(TOPIC_IMAGES_INPUT, key=image_id.encode(),
                                              value=message.model_dump_json().encode()))
        # Published after the rows are durable; a crash in between replays the events,
        # which find the rows and publish again (consumers are idempotent).
        for future in futures:
            future.get(30)
        for p, image_id in zip(prepared, ids):
            log.info("ingested", extra={"image_id": image_id, "stage": "ingest", "object_key": p.ref.key,
                                        "label": p.ref.metadata["label"], "batch_size": len(prepared),
                                        "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        return ids

    # -- the sweep -------------------------------------------------------------
    def sweep(self, lookback_s: float = 86_400, settle_s: float = 30) -> dict:
        """Ingest the objects written in the last `lookback_s` that no event brought.

        MinIO publishes each bucket event straight to Kafka, without its on-disk
        queue (which it replays only every 3 s: 1.5 s more latency on every image).
        An event MinIO cannot deliver, while Kafka restarts, is then lost by MinIO;
        this sweep (the ingest function's cron trigger, every minute) finds such
        objects and ingests them like their event would have. Objects younger than
        `settle_s` are left to their event. The keys our producers and the upload
        function write are dated (`source/YYYY/MM/DD/...`), so only the days in
        the window are listed; an object another S3 client wrote under another key
        is ingested by its event only.
        """
        now = datetime.now(timezone.utc)
        since, settled = now - timedelta(seconds=lookback_s), now - timedelta(seconds=settle_s)
        days = sorted({(since + timedelta(days=d)).strftime("%Y/%m/%d")
                       for d in range((now.date() - since.date()).days + 1)})
        bucket = self.settings.images_bucket
        found = [obj for source in SOURCES for day in days
                 for obj in self.s3.list_objects(bucket, prefix=f"{source}/{day}/", recursive=True)
                 if obj.last_modified and since <= obj.last_modified <= settled]
        if not found:
            return {"listed": 0, "missing": 0, "ingested": 0, "refused": 0}

        known = self.db.transaction(lambda cur: registered_keys(cur, bucket, [o.object_name for o in found]))
        missing = [o for o in found if o.object_name not in known]
        ingested = refused = 0
        for obj in missing:
            stat = self.s3.stat_object(bucket, obj.object_name)
            ref = ObjectRef(bucket=bucket, key=obj.object_name, version=stat.version_id or "", size=stat.size,
                            etag=stat.etag, metadata=decode_metadata(dict(stat.metadata or {})))
            try:
                self.ingest(ref)
                ingested += 1
            except PermanentError:
                refused += 1  # quarantined and recorded by ingest, as for an event
        if missing:
            log_system_event("objects_swept", "warning", "ingest",
                             f"{len(missing)} object(s) in {bucket} had no event; "
                             f"ingested {ingested}, refused {refused}",
                             details={"keys": [o.object_name for o in missing[:50]]}, settings=self.settings)
        return {"listed": len(found), "missing": len(missing), "ingested": ingested, "refused": refused}

    def _quarantine(self, ref: ObjectRef, data: bytes, filename: str, error: InvalidImage) -> None:
        target = move_to_quarantine(self.s3, ref.bucket, ref.key, ref.version, error.code)
        sha = hashlib.sha256(data).hexdigest()
        image = NewImage(
            image_id=image_id_for(ref.bucket, ref.key, ref.version, sha), bucket=ref.bucket, object_key=target,
            object_version=ref.version, sha256=sha, etag=ref.etag, filename=filename, size_bytes=len(data),
            source=ref.metadata["source"], ground_truth_label=ref.metadata["label"],
            client_metadata=ref.metadata["client"], status="quarantined", quarantine_reason=f"{error.code}: {error}",
        )
        image_id, _ = self.db.transaction(lambda cur: register_image(cur, image))
        log_system_event(
            "image_quarantined", "warning", "ingest",
            f"{ref.bucket}/{ref.key} moved to {target}: {error.code}: {error}",
            details={"bucket": ref.bucket, "key": ref.key, "quarantine_key": target, "code": error.code,
                     "reason": str(error), "size_bytes": len(data)},
            image_id=image_id, dedup_key=f"quarantine:{ref.bucket}/{ref.key}@{ref.version}#{sha}",
            settings=self.settings,
        )
