"""MinIO / S3 access: one client factory, so credentials and endpoints are read in one place."""

from __future__ import annotations

from urllib.parse import urlparse

from minio import Minio

from .config import Settings, get_settings


def minio_client(settings: Settings | None = None) -> Minio:
    settings = settings or get_settings()
    url = urlparse(settings.s3_url)
    access_key, secret_key = settings.s3_credentials  # a component's are read from a file
    return Minio(
        url.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=url.scheme == "https",
    )


# The S3 error codes that mean the object (or that version of it) is not there: deleted,
# moved to quarantine, or its bucket removed. Everything else may pass on a retry.
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket"})


def read_object(client: Minio, bucket: str, key: str, version: str | None = None, limit: int | None = None) -> bytes:
    """An object's bytes (at most `limit`), with the connection handed back to the pool."""
    response = client.get_object(bucket, key, version_id=version or None)
    try:
        return response.read(limit) if limit is not None else response.read()
    finally:
        response.close()
        response.release_conn()
