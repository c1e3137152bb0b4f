"""The upload logic, one implementation for the upload function and the API:
multipart in, validated objects in the bucket out.

Every upload needs a key with the `upload` scope and is charged to that key's rate.
An upload is validated before it is stored, and a batch is answered file by file,
so one bad file never sinks the others. Stored objects carry their label, source,
original filename and client metadata, which MinIO's bucket event hands to ingest.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from minio import Minio
from python_multipart import parse_form

from ..config import Settings, get_settings
from ..db.connection import Database
from ..db.images import NewImage, find_by_sha256, register_image
from ..security import AuthError, Guard, Principal, RateLimited
from ..storage import minio_client
from .objects import (
    SOURCES,
    encode_metadata,
    image_id_for,
    sanitize_filename,
    upload_key,
)
from .validation import InvalidImage, validate_image


class BadRequest(ValueError):
    def __init__(self, message: str, http_status: int = 400, code: str = "bad_request"):
        super().__init__(message)
        self.http_status = http_status
        self.code = code


@dataclass
class UploadForm:
    files: list[tuple[str | None, bytes]] = field(default_factory=list)  # (filename, bytes)
    fields: dict[str, str] = field(default_factory=dict)


def parse_multipart(body: bytes, content_type: str | None) -> UploadForm:
    if not content_type or not content_type.startswith("multipart/form-data"):
        raise BadRequest(
            "send the image as multipart/form-data (field `file`, or `files` for a batch)",
            http_status=415,
            code="not_multipart",
        )
    form = UploadForm()

    def on_field(f) -> None:
        form.fields[f.field_name.decode()] = (f.value or b"").decode("utf-8", errors="replace")

    def on_file(f) -> None:
        f.file_object.seek(0)
        name = f.file_name.decode("utf-8", errors="replace") if f.file_name else None
        form.files.append((name, f.file_object.read()))

    try:
        parse_form(
            {"Content-Type": content_type.encode(), "Content-Length": str(len(body)).encode()},
            io.BytesIO(body),
            on_field,
            on_file,
        )
    except Exception as exc:  # noqa: BLE001 - the parser raises several types on malformed input
        raise BadRequest(f"malformed multipart body: {exc}", code="malformed_multipart") from exc
    return form


def _client_metadata(form: UploadForm) -> dict[str, Any]:
    raw = form.fields.get("metadata")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("`metadata` must be a JSON object", code="bad_metadata") from exc
    if not isinstance(value, dict):
        raise BadRequest("`metadata` must be a JSON object", code="bad_metadata")
    return value


MAX_LABEL_CHARS = 100

# An HTTP answer: (status, JSON body, extra headers such as Retry-After).
Reply = tuple[int, dict, dict[str, str]]


class Uploader:
    def __init__(self, settings: Settings, s3: Minio, db: Database, guard: Guard | None = None):
        self.settings = settings
        self.s3 = s3
        self.db = db
        self.guard = guard or Guard(settings, db)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Uploader:
        settings = settings or get_settings()
        return cls(settings, minio_client(settings), Database(settings))

    def results_url(self, image_id: str) -> str:
        return f"{self.settings.results_base_url}/predictions/{image_id}"

    def store(
        self, data: bytes, filename: str | None, label: str | None, source: str, client: dict[str, Any]
    ) -> dict[str, Any]:
        """Validate and store one image; raises InvalidImage with a clear reason."""
        info = validate_image(data, self.settings.max_image_bytes, self.settings.max_image_pixels)
        safe_name = sanitize_filename(filename)
        if self.settings.duplicate_policy == "reuse":
            earlier = self.db.transaction(lambda cur: find_by_sha256(cur, info.sha256))
            if earlier:
                return {
                    "status": "duplicate",
                    "image_id": str(earlier["image_id"]),
                    "filename": safe_name,
                    "object_key": earlier["object_key"],
                    "sha256": info.sha256,
                    "results_url": self.results_url(str(earlier["image_id"])),
                }
        key = upload_key(safe_name, source)
        written = self.s3.put_object(
            self.settings.images_bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=info.content_type,
            metadata=encode_metadata(source, safe_name, label, client),
        )
        image_id = image_id_for(self.settings.images_bucket, key, written.version_id or "", info.sha256)
        # Registered here as well as by ingest (the same row, by its unique key), so
        # the id answered is queryable at once and the next upload of these bytes is
        # recognised even before ingest has seen this one.
        self.db.transaction(
            lambda cur: register_image(
                cur,
                NewImage(
                    image_id=image_id,
                    bucket=self.settings.images_bucket,
                    object_key=key,
                    object_version=written.version_id or "",
                    sha256=info.sha256,
                    filename=safe_name,
                    size_bytes=info.size_bytes,
                    source=source,
                    content_type=info.content_type,
                    image_format=info.format,
                    width=info.width,
                    height=info.height,
                    channels=info.channels,
                    ground_truth_label=label,
                    client_metadata=client,
                ),
            )
        )
        return {
            "status": "stored",
            "image_id": image_id,
            "filename": safe_name,
            "object_key": key,
            "sha256": info.sha256,
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "label": label,
            "results_url": self.results_url(image_id),
        }

    def handle(self, path: str, method: str, body: bytes, content_type: str | None, headers: dict[str, str]) -> Reply:
        """The upload function's whole HTTP surface: one request in, one answer out."""
        route = path.rstrip("/") or "/"
        if method == "GET" and route in ("/", "/health"):
            return 200, {"status": "ok"}, {}
        if route not in ("/upload", "/upload/batch"):
            return (
                404,
                {"error": f"no route {method} {path}; use POST /upload or POST /upload/batch", "code": "not_found"},
                {},
            )
        if method != "POST":
            return 405, {"error": f"{path} takes POST", "code": "method_not_allowed"}, {}
        try:
            principal = self.guard.require(headers, "upload")  # before the body is even parsed
            form = parse_multipart(body, content_type)
        except AuthError as exc:
            return exc.status, {"error": str(exc), "code": exc.code}, exc.headers
        except BadRequest as exc:
            return exc.http_status, {"error": str(exc), "code": exc.code}, {}
        return self.accept(route, form, principal)

    def accept(self, route: str, form: UploadForm, principal: Principal) -> Reply:
        """Store a parsed upload (`/upload`: one file; `/upload/batch`: many) for a caller
        already known to hold the `upload` scope, charging the files to its rate."""
        try:
            source = form.fields.get("source", "upload")
            if source not in SOURCES:
                raise BadRequest(f"unknown source {source!r}; one of {', '.join(SOURCES)}", code="bad_source")
            client = _client_metadata(form)
            if route == "/upload" and len(form.files) != 1:
                raise BadRequest(
                    f"POST /upload takes exactly one file (got {len(form.files)}); use /upload/batch", code="file_count"
                )
            if not form.files:
                raise BadRequest("POST /upload/batch needs at least one file", code="file_count")
            labels = self._labels(form, len(form.files))
            self.guard.charge_uploads(principal, len(form.files))
        except BadRequest as exc:
            return exc.http_status, {"error": str(exc), "code": exc.code}, {}
        except RateLimited as exc:
            return 429, {"error": str(exc), "code": "rate_limited", "retry_after_s": exc.retry_after_s}, exc.headers
        if route == "/upload":
            return (*self._single(form.files[0], labels[0], source, client), {})
        return (*self._batch(form.files, labels, source, client), {})

    def _single(self, file: tuple[str | None, bytes], label: str | None, source: str, client: dict) -> tuple[int, dict]:
        filename, data = file
        try:
            result = self.store(data, filename, label, source, client)
        except InvalidImage as exc:
            return exc.http_status, {"error": str(exc), "code": exc.code, "filename": sanitize_filename(filename)}
        return (201 if result["status"] == "stored" else 200), result

    def _batch(
        self, files: list[tuple[str | None, bytes]], labels: list[str | None], source: str, client: dict
    ) -> tuple[int, dict]:
        results = []
        for (filename, data), label in zip(files, labels):
            try:
                results.append(self.store(data, filename, label, source, client))
            except InvalidImage as exc:
                results.append(
                    {
                        "status": "rejected",
                        "filename": sanitize_filename(filename),
                        "code": exc.code,
                        "error": str(exc),
                        "http_status": exc.http_status,
                    }
                )
        return 207, {
            "stored": sum(r["status"] == "stored" for r in results),
            "duplicates": sum(r["status"] == "duplicate" for r in results),
            "rejected": sum(r["status"] == "rejected" for r in results),
            "results": results,
        }

    @staticmethod
    def _labels(form: UploadForm, count: int) -> list[str | None]:
        if "labels" in form.fields:
            try:
                labels = json.loads(form.fields["labels"])
            except ValueError as exc:
                raise BadRequest(
                    "`labels` must be a JSON list, one label (or null) per file", code="bad_labels"
                ) from exc
            if not isinstance(labels, list) or len(labels) != count:
                raise BadRequest(f"`labels` must list {count} labels, one per file", code="bad_labels")
            labels = [str(label) if label is not None else None for label in labels]
        else:
            labels = [form.fields.get("label") or None] * count
        for label in labels:
            if label is not None and not (len(label) <= MAX_LABEL_CHARS and label.isprintable() and label.strip()):
                raise BadRequest(
                    f"a label is 1 to {MAX_LABEL_CHARS} printable characters (got {label[:40]!r})", code="bad_labels"
                )
        return labels
