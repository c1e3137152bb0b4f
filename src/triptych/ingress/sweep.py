"""Ingest's sweep: objects no event brought, found by listing the bucket a page a
tick (the ingest function's cron trigger, every minute).

Beside `reconcile`, its sibling: MinIO's durable event copy makes good an event Kafka
could not take; what is left is an event MinIO held only in memory when it was killed,
and only a listing finds that object. Both ingest what they find through the same
`Ingestor`, so an object is checked, registered and published as its event would have
made it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import islice

from minio.error import S3Error

from ..db.events import log_system_event
from ..db.images import advance_sweep, claim_sweep_page
from ..sdk import PermanentError
from .ingest import Ingestor, ObjectGone, ObjectRef
from .objects import QUARANTINE_PREFIX, decode_metadata


def sweep(
    ingestor: Ingestor, page_size: int | None = None, lookback_s: float | None = None, settle_s: float | None = None
) -> dict:
    """Ingest objects of the last `lookback_s` that no event brought, one page of
    the bucket's keys a call, wherever the last call stopped.

    MinIO's durable event target makes good an event Kafka could not take (see
    `ingress.reconcile`). What is left is an event MinIO held only in memory
    when it was killed; this sweep, on the ingest function's cron trigger, finds
    such objects under any key. It lists `page_size` keys after the cursor kept
    in `bucket_sweeps` (wrapping at the end), so a tick costs one listing page
    and one lookup however large the bucket: at 1,000,000 objects and 2,000
    keys a minute, a pass takes about 8 hours. Objects younger than `settle_s`
    are left to their events and to reconcile; older than `lookback_s`, to the
    retention job, which may have deleted their rows on purpose.
    """
    s = ingestor.settings
    page_size = page_size or s.sweep_page_size
    lookback_s = s.sweep_lookback_s if lookback_s is None else lookback_s
    settle_s = s.sweep_settle_s if settle_s is None else settle_s
    bucket = s.images_bucket
    now = datetime.now(UTC)
    since, settled = now - timedelta(seconds=lookback_s), now - timedelta(seconds=settle_s)

    def claim_page(cur) -> tuple[list, bool]:
        after = claim_sweep_page(cur, bucket)
        listing = ingestor.s3.list_objects(bucket, recursive=True, start_after=after or None)
        page = list(islice(listing, page_size))
        wrapped = len(page) < page_size
        advance_sweep(cur, bucket, "" if wrapped else page[-1].object_name)
        return page, wrapped

    page, wrapped = ingestor.db.transaction(claim_page)
    candidates = [
        ObjectRef(bucket=bucket, key=o.object_name, version=o.version_id or "", size=o.size, etag=o.etag, metadata={})
        for o in page
        if not o.object_name.startswith(QUARANTINE_PREFIX) and o.last_modified and since <= o.last_modified <= settled
    ]
    missing = ingestor.unregistered(candidates) if candidates else []
    ingested = refused = gone = 0
    for ref in missing:
        try:
            stat = ingestor.s3.stat_object(bucket, ref.key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchVersion"):
                gone += 1  # deleted since it was listed
                continue
            raise
        try:
            ingestor.ingest(replace(ref, metadata=decode_metadata(dict(stat.metadata or {}))))
            ingested += 1
        except ObjectGone:
            gone += 1
        except PermanentError:
            refused += 1  # quarantined and recorded by ingest, as for an event
    if ingested or refused:
        log_system_event(
            "objects_swept",
            "warning",
            "ingest",
            f"{ingested + refused} object(s) in {bucket} had no event; ingested {ingested}, refused {refused}",
            details={"keys": [ref.key for ref in missing[:50]], "ingested": ingested, "refused": refused},
            settings=ingestor.settings,
        )
    return {
        "listed": len(page),
        "candidates": len(candidates),
        "missing": len(missing),
        "ingested": ingested,
        "refused": refused,
        "gone": gone,
        "pass_complete": wrapped,
    }
