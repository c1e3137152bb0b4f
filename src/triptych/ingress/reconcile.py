"""The second copy of every bucket event: ingest what the fast path never saw.

MinIO publishes each object-created event twice (see
`triptych.stack.services.minio.minio_kafka_targets_env`): straight to
`minio-events`, which is fast but drops an event Kafka cannot take, and through
an on-disk queue to `minio-events-durable`, which survives Kafka outages and
MinIO restarts but arrives up to 3 s late. The ingest function reads the second
topic with this reconciler. Normally the object is registered already, and the
copy costs one indexed lookup per batch. An object with no row yet is held until
the fast path has had its chance: `reconcile_settle_s` after MinIO's event time
and ingest's group caught up on `minio-events`, or `reconcile_max_wait_s` at
most. It is then ingested like its event would have been, and counted, and a
`system_events` row says which objects came late, so an operator sees that drops
were delayed and by how much.

Every object, under any key and from any S3 client, is so ingested exactly once:
the image row is keyed by the object and its bytes, and consumers are idempotent
should both copies ever be ingested.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

from ..db.events import log_system_event
from ..sdk import PermanentError
from .ingest import Ingestor, ObjectGone, ObjectRef

log = logging.getLogger("triptych.ingest.reconcile")

OUTCOMES = Counter(
    "triptych_reconcile_objects_total",
    "Objects named by MinIO's durable event copy, by outcome: already_ingested (the fast path had it), "
    "recovered (its fast event was lost: ingested from the durable copy), gone (deleted before), refused",
    ("outcome",),
)
RECOVERY_DELAY = Histogram(
    "triptych_reconcile_recovery_delay_seconds",
    "From MinIO's event time to the ingest of an object whose fast event was lost",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

POLL_S = 0.5


class Reconciler:
    """Filters MinIO's durable event copies down to the objects nobody ingested."""

    def __init__(
        self,
        ingestor: Ingestor,
        fast_path_lag: Callable[[], int],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.ingestor = ingestor
        self.settings = ingestor.settings
        # Messages of minio-events the fast path has not committed yet; raises when unknown.
        self.fast_path_lag = fast_path_lag
        self.clock, self.sleep = clock, sleep

    def handle_events(self, bodies: list) -> dict:
        """Reconcile a batch of durable event copies; returns counts by outcome.
        Raises PermanentError naming malformed events (the others are handled)."""
        refs, malformed = Ingestor.parse_events(bodies)
        missing = self.ingestor.unregistered(refs)
        counts = {"already_ingested": len(refs) - len(missing), "recovered": 0, "gone": 0, "refused": 0}
        if missing:
            missing = self._wait_for_fast_path(missing)
            counts["already_ingested"] = len(refs) - len(missing)
        if missing:
            counts.update(self._recover(missing))
        for outcome, n in counts.items():
            if n:
                OUTCOMES.labels(outcome).inc(n)
        if malformed:
            raise PermanentError("; ".join(malformed))
        return counts

    def _age_s(self, ref: ObjectRef) -> float:
        if ref.event_time is None:
            return float("inf")  # no time to hold it by: the fast path had every chance it will get
        return self.clock() - ref.event_time.timestamp()

    def _fast_path_idle(self) -> bool:
        try:
            return self.fast_path_lag() == 0
        except Exception as exc:  # noqa: BLE001 - an unknown lag is waited out like a lag
            log.info("ingest's lag on minio-events unknown: %s", exc)
            return False

    def _wait_for_fast_path(self, missing: list[ObjectRef]) -> list[ObjectRef]:
        """Hold objects without a row until the fast path would have registered them."""
        s = self.settings
        while missing:
            youngest = min(self._age_s(ref) for ref in missing)
            if youngest >= s.reconcile_max_wait_s:
                break
            if youngest >= s.reconcile_settle_s and self._fast_path_idle():
                break
            self.sleep(POLL_S)
            missing = self.ingestor.unregistered(missing)
        return missing

    def _recover(self, missing: list[ObjectRef]) -> dict:
        ids, failures = self.ingestor.ingest_refs(missing)
        gone = [f for f in failures if isinstance(f, ObjectGone)]
        refused = [f for f in failures if not isinstance(f, ObjectGone)]  # quarantined and recorded by ingest
        now = datetime.fromtimestamp(self.clock(), UTC)
        delays = [(now - ref.event_time).total_seconds() for ref in missing if ref.event_time]
        for delay in delays:
            RECOVERY_DELAY.observe(max(delay, 0))
        for failure in gone:
            log.info("durable event for an object that is gone: %s", failure)
        late = len(ids) + len(refused)
        if late:
            worst = max(delays, default=0.0)
            log_system_event(
                "objects_recovered_late",
                "warning",
                "ingest",
                f"{late} object(s) in {missing[0].bucket} had no event on minio-events (Kafka away?); "
                f"ingested from MinIO's durable queue up to {worst:.0f} s late"
                + (f", {len(refused)} refused" if refused else ""),
                details={
                    "keys": [ref.key for ref in missing[:50]],
                    "recovered": len(ids),
                    "refused": len(refused),
                    "max_delay_s": round(worst, 1),
                    "oldest_event_time": min((r.event_time for r in missing if r.event_time), default=now).isoformat(),
                },
                settings=self.settings,
            )
            log.warning(
                "recovered objects whose fast event was lost",
                extra={"recovered": len(ids), "refused": len(refused), "max_delay_s": round(worst, 1)},
            )
        return {"recovered": len(ids), "gone": len(gone), "refused": len(refused)}
