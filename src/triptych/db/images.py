"""Writes and reads of the `images` table, all keyed for replay safety."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class NewImage:
    image_id: str
    bucket: str
    object_key: str
    object_version: str
    sha256: str
    filename: str
    size_bytes: int
    source: str
    etag: str | None = None
    content_type: str | None = None
    image_format: str | None = None
    width: int | None = None
    height: int | None = None
    channels: int | None = None
    ground_truth_label: str | None = None
    client_metadata: dict[str, Any] | None = None
    status: str = "registered"
    quarantine_reason: str | None = None
    pixel_stats: dict[str, float] | None = None  # see triptych.stats.drift


def register_image(cur, image: NewImage) -> tuple[str, bool]:
    """Insert the image unless this object version with these bytes is known.
    Returns (image_id, created)."""
    cur.execute(
        """INSERT INTO images (image_id, bucket, object_key, object_version, sha256, etag, filename, content_type,
                               image_format, size_bytes, width, height, channels, source, ground_truth_label,
                               client_metadata, status, quarantine_reason, pixel_stats)
           VALUES (%(image_id)s, %(bucket)s, %(object_key)s, %(object_version)s, %(sha256)s, %(etag)s, %(filename)s,
                   %(content_type)s, %(image_format)s, %(size_bytes)s, %(width)s, %(height)s, %(channels)s, %(source)s,
                   %(ground_truth_label)s, %(client_metadata)s::jsonb, %(status)s, %(quarantine_reason)s,
                   %(pixel_stats)s::jsonb)
           ON CONFLICT (bucket, object_key, object_version, sha256) DO NOTHING
           RETURNING image_id""",
        {
            **image.__dict__,
            "client_metadata": json.dumps(image.client_metadata or {}),
            "pixel_stats": json.dumps(image.pixel_stats) if image.pixel_stats else None,
        },
    )
    row = cur.fetchone()
    if row:
        return str(row["image_id"]), True
    cur.execute(
        """SELECT image_id FROM images
           WHERE bucket = %s AND object_key = %s AND object_version = %s AND sha256 = %s""",
        (image.bucket, image.object_key, image.object_version, image.sha256),
    )
    return str(cur.fetchone()["image_id"]), False


def mark_kept(cur, image_id: str, how: str) -> None:
    """Mark an image as one a person chose to keep (`how`: "snapshot" for the Webcam
    page's button), in its client metadata: also when the frame was a duplicate,
    answered as an image stored earlier without the mark."""
    cur.execute(
        "UPDATE images SET client_metadata = client_metadata || %s::jsonb WHERE image_id = %s",
        (json.dumps({how: True}), image_id),
    )


def find_by_sha256(cur, sha256: str) -> dict | None:
    """The earliest healthy image with these bytes, if any."""
    cur.execute(
        """SELECT image_id, object_key, filename, uploaded_at FROM images
           WHERE sha256 = %s AND status <> 'quarantined' ORDER BY uploaded_at LIMIT 1""",
        (sha256,),
    )
    return cur.fetchone()


def registered_etags(cur, bucket: str, keys: list[str]) -> dict[str, set[str | None]]:
    """The etags on record for each of these object keys that has an image row (any
    status): an object overwritten under the same key has a new etag, and is new."""
    cur.execute("SELECT object_key, etag FROM images WHERE bucket = %s AND object_key = ANY(%s)", (bucket, keys))
    found: dict[str, set[str | None]] = {}
    for row in cur.fetchall():
        found.setdefault(row["object_key"], set()).add(row["etag"])
    return found


def quarantine_reason(cur, bucket: str, quarantine_key: str, version: str) -> str | None:
    """Why the object now at `quarantine_key` was quarantined, if it was."""
    cur.execute(
        """SELECT quarantine_reason FROM images WHERE bucket = %s AND object_key = %s
                   AND object_version = %s AND status = 'quarantined' LIMIT 1""",
        (bucket, quarantine_key, version),
    )
    row = cur.fetchone()
    return row["quarantine_reason"] if row else None


def claim_sweep_page(cur, bucket: str) -> str:
    """The key the bucket's sweep goes on after, the row locked until the
    transaction ends, so that two replicas' sweeps never list the same page."""
    cur.execute("INSERT INTO bucket_sweeps (bucket) VALUES (%s) ON CONFLICT (bucket) DO NOTHING", (bucket,))
    cur.execute("SELECT after_key FROM bucket_sweeps WHERE bucket = %s FOR UPDATE", (bucket,))
    return cur.fetchone()["after_key"]


def advance_sweep(cur, bucket: str, after_key: str) -> None:
    """Move the cursor; an empty `after_key` ends the pass and starts the next."""
    cur.execute(
        """UPDATE bucket_sweeps SET after_key = %(after)s, updated_at = now(),
                  last_pass_seconds = CASE WHEN %(after)s = '' THEN extract(epoch FROM now() - pass_started_at)
                                           ELSE last_pass_seconds END,
                  pass_started_at = CASE WHEN %(after)s = '' THEN now() ELSE pass_started_at END
           WHERE bucket = %(bucket)s""",
        {"after": after_key, "bucket": bucket},
    )
