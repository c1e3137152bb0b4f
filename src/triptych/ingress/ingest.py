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
from datetime import datetime
from functools import partial
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
from ..db.images import (
    NewImage,
    quarantine_reason,
    register_image,
    registered_etags,
)
from ..imaging import resize_to
from ..sdk import PermanentError
from ..stats.pixels import SIZE as DRIFT_SIZE
from ..stats.pixels import pixel_features
from ..storage import MISSING_OBJECT_CODES, minio_client, read_object
from .objects import (
    QUARANTINE_PREFIX,
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
    event_time: datetime | None = None  # when MinIO says the object was written


def _bare_etag(etag: str | None) -> str | None:
    """An etag as MinIO's events write it (listings and stats quote it)."""
    return etag.strip('"') if etag else None


class ObjectGone(PermanentError):
    """The object an event names is no longer in the bucket (deleted, or moved to quarantine)."""


def _event_time(record: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(str(record["eventTime"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


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
            refs.append(
                ObjectRef(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(obj["key"]),
                    version=obj.get("versionId") or "",
                    size=obj.get("size"),
                    etag=obj.get("eTag"),
                    metadata=decode_metadata(obj.get("userMetadata")),
                    event_time=_event_time(record),
                )
            )
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
    def from_settings(cls, settings: Settings | None = None) -> Ingestor:
        settings = settings or get_settings()
        return cls(settings, minio_client(settings), Database(settings), make_producer(settings))

    def handle_events(self, bodies: list) -> list[str]:
        """Ingest every object of a batch of events: fetched and checked in
        parallel, registered in one transaction, published together. Returns the
        image ids. Objects that cannot be ingested (quarantined, gone, malformed
        event) do not stop the others; the batch then raises PermanentError
        naming them, so the delivery wrapper retries its events one by one and dead-letters
        only theirs (the others are found registered and published again:
        consumers are idempotent)."""
        started = time.perf_counter()
        refs, malformed = self.parse_events(bodies)
        ids, failed = self.ingest_refs(refs, started)
        failures = malformed + [str(f) for f in failed]
        if failures:
            raise PermanentError("; ".join(failures))
        return ids

    @staticmethod
    def parse_events(bodies: list) -> tuple[list[ObjectRef], list[str]]:
        """The objects a batch of MinIO events names (our own quarantine moves
        skipped), and a description of each malformed event."""
        refs: list[ObjectRef] = []
        malformed: list[str] = []
        for body in bodies:
            try:
                refs.extend(ref for ref in parse_minio_event(body) if not ref.key.startswith(QUARANTINE_PREFIX))
            except PermanentError as exc:
                malformed.append(str(exc))
        return refs, malformed

    def ingest_refs(
        self, refs: list[ObjectRef], started: float | None = None
    ) -> tuple[list[str], list[PermanentError]]:
        """Ingest these objects; returns the image ids registered and the error of
        each object that could not be (already quarantined and recorded)."""
        started = time.perf_counter() if started is None else started
        prepared, failures = [], []
        outcomes = self.pool.map(self._prepare_or_fail, refs) if len(refs) > 1 else map(self._prepare_or_fail, refs)
        for outcome in outcomes:
            if isinstance(outcome, PermanentError):
                failures.append(outcome)
            else:
                prepared.append(outcome)
        return self._register_and_publish(prepared, started), failures

    def ingest(self, ref: ObjectRef) -> str:
        """Ingest one object (the sweep's way in); PermanentError if it cannot be."""
        started = time.perf_counter()
        return self._register_and_publish([self._prepare(ref)], started)[0]

    def _fetch(self, ref: ObjectRef) -> bytes:
        try:
            # Never more than the limit allows: one byte over is enough to reject it.
            return read_object(self.s3, ref.bucket, ref.key, ref.version, limit=self.settings.max_image_bytes + 1)
        except S3Error as exc:
            if exc.code in MISSING_OBJECT_CODES:
                reason = self._quarantined_as(ref)
                if reason:  # moved by an earlier try of this event (a batch retried one by one): same reason
                    raise ObjectGone(f"{ref.bucket}/{ref.key} quarantined: {reason}") from exc
                raise ObjectGone(f"{ref.bucket}/{ref.key} no longer exists ({exc.code})") from exc
            raise

    def _quarantined_as(self, ref: ObjectRef) -> str | None:
        return self.db.transaction(
            lambda cur: quarantine_reason(cur, ref.bucket, f"{QUARANTINE_PREFIX}{ref.key}", ref.version)
        )

    def _prepare_or_fail(self, ref: ObjectRef) -> Prepared | PermanentError:
        try:
            return self._prepare(ref)
        except PermanentError as exc:
            return exc

    def _prepare(self, ref: ObjectRef) -> Prepared:
        """Fetch and check one object, and make its row and its inline pixels."""
        data = self._fetch(ref)
        meta = ref.metadata
        filename = sanitize_filename(meta.get("filename") or ref.key.rsplit("/", 1)[-1])
        sizes = self.settings.inline_pixel_sizes
        try:
            info = validate_image(
                data,
                self.settings.max_image_bytes,
                self.settings.max_image_pixels,
                decode_at_least=max(sizes, default=None),
            )
        except InvalidImage as exc:
            self._quarantine(ref, data, filename, exc)
            raise PermanentError(f"{ref.bucket}/{ref.key} quarantined: {exc.code}: {exc}") from exc
        image = NewImage(
            image_id=image_id_for(ref.bucket, ref.key, ref.version, info.sha256),
            bucket=ref.bucket,
            object_key=ref.key,
            object_version=ref.version,
            sha256=info.sha256,
            etag=ref.etag,
            filename=filename,
            content_type=info.content_type,
            image_format=info.format,
            size_bytes=info.size_bytes,
            width=info.width,
            height=info.height,
            channels=info.channels,
            source=meta["source"],
            ground_truth_label=meta["label"],
            client_metadata=meta["client"],
            pixel_stats=(
                pixel_features(resize_to(info.pixels, DRIFT_SIZE, "stretch")) if info.pixels is not None else None
            ),
        )
        return Prepared(ref, info, image, [inline_pixels(info.pixels, size) for size in sizes])

    def _register_and_publish(self, prepared: list[Prepared], started: float) -> list[str]:
        if not prepared:
            return []
        ids = self.db.transaction(lambda cur: [register_image(cur, p.image)[0] for p in prepared])
        futures = []
        for p, image_id in zip(prepared, ids):
            message = ImageMessage(
                image_id=image_id,
                bucket=p.ref.bucket,
                object_key=p.ref.key,
                object_version=p.ref.version,
                sha256=p.info.sha256,
                image_format=p.info.format,
                width=p.info.width,
                height=p.info.height,
                source=p.ref.metadata["source"],
                ground_truth_label=p.ref.metadata["label"],
                pixels=p.pixels,
                ingest_ms=(time.perf_counter() - started) * 1000,
            )
            futures.append(
                self.producer.send(TOPIC_IMAGES_INPUT, key=image_id.encode(), value=message.model_dump_json().encode())
            )
        # Published after the rows are durable; a crash in between replays the events,
        # which find the rows and publish again (consumers are idempotent).
        for future in futures:
            future.get(30)
        for p, image_id in zip(prepared, ids):
            log.info(
                "ingested",
                extra={
                    "image_id": image_id,
                    "stage": "ingest",
                    "object_key": p.ref.key,
                    "label": p.ref.metadata["label"],
                    "batch_size": len(prepared),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        return ids

    # -- what no event brought ------------------------------------------------
    def unregistered(self, refs: list[ObjectRef]) -> list[ObjectRef]:
        """The objects with no image row for their bytes, under their key or in
        quarantine: one indexed lookup per bucket. A row whose etag was not
        recorded counts for its key; a new etag under a known key is a new object."""
        missing = []
        for bucket in sorted({ref.bucket for ref in refs}):
            group = [ref for ref in refs if ref.bucket == bucket]
            keys = sorted({k for ref in group for k in (ref.key, f"{QUARANTINE_PREFIX}{ref.key}")})
            known = self.db.transaction(partial(registered_etags, bucket=bucket, keys=keys))
            for ref in group:
                etags = known.get(ref.key, set()) | known.get(f"{QUARANTINE_PREFIX}{ref.key}", set())
                if not etags or not (
                    None in etags or ref.etag is None or _bare_etag(ref.etag) in {_bare_etag(e) for e in etags}
                ):
                    missing.append(ref)
        return missing

    def _quarantine(self, ref: ObjectRef, data: bytes, filename: str, error: InvalidImage) -> None:
        target = move_to_quarantine(self.s3, ref.bucket, ref.key, ref.version, error.code)
        sha = hashlib.sha256(data).hexdigest()
        image = NewImage(
            image_id=image_id_for(ref.bucket, ref.key, ref.version, sha),
            bucket=ref.bucket,
            object_key=target,
            object_version=ref.version,
            sha256=sha,
            etag=ref.etag,
            filename=filename,
            size_bytes=len(data),
            source=ref.metadata["source"],
            ground_truth_label=ref.metadata["label"],
            client_metadata=ref.metadata["client"],
            status="quarantined",
            quarantine_reason=f"{error.code}: {error}",
        )
        image_id, _ = self.db.transaction(lambda cur: register_image(cur, image))
        log_system_event(
            "image_quarantined",
            "warning",
            "ingest",
            f"{ref.bucket}/{ref.key} moved to {target}: {error.code}: {error}",
            details={
                "bucket": ref.bucket,
                "key": ref.key,
                "quarantine_key": target,
                "code": error.code,
                "reason": str(error),
                "size_bytes": len(data),
            },
            image_id=image_id,
            dedup_key=f"quarantine:{ref.bucket}/{ref.key}@{ref.version}#{sha}",
            settings=self.settings,
        )
