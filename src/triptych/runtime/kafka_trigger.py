"""The local runner's Kafka trigger: a consumer group, micro-batches, commits.

- A real consumer group; records of one partition are handled in order.
- Offsets are committed only after the handler returned for every record up to
  them (at-least-once; sinks are idempotent, so the effect is exactly once).
- Micro-batching, the fast path Nuclio's own trigger does not have: up to
  ``batch_size`` records, waiting at most ``batch_wait_ms`` after the first, go
  to a batch handler as one list.
- Retries, dead letters and the batch split are the handler's delivery wrapper
  (`triptych.sdk.delivered`), so they hold under Nuclio's processor too. A plain
  handler without it is wrapped here, so the runner gives it the same.
- On revocation (rebalance) and on stop, the batch in hand is finished and
  committed before the partitions are given up.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata

from ..bus import consumer as make_consumer
from ..config import Settings
from ..sdk import metrics
from .nuclio_compat import LoadedHandler, kafka_event, trigger_context
from .spec import KafkaTriggerSpec

log = logging.getLogger("triptych.runtime.kafka")

# How long one poll may block while idle: bounds how fast a stop is noticed.
IDLE_POLL_MS = 500
# Records taken per poll and committed together after all were handled: a commit
# is a broker round trip, so committing per record would cap a replica at a few
# hundred events/s. On a crash at most this many are delivered again.
COMMIT_CHUNK = 100
# Lag needs a round trip to the broker; once every few seconds is plenty for a gauge.
LAG_INTERVAL_S = 5.0


class _FlushOnRevoke(ConsumerRebalanceListener):
    def __init__(self, runner: "KafkaTriggerRunner"):
        self.runner = runner

    def on_partitions_revoked(self, revoked):
        self.runner.finish_pending()

    def on_partitions_assigned(self, assigned):
        log.info("%s: assigned %s", self.runner.function, sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class KafkaTriggerRunner:
    def __init__(
        self,
        function: str,
        trigger: KafkaTriggerSpec,
        handler: LoadedHandler,
        settings: Settings,
        stop: threading.Event,
        context,
    ):
        self.function = function
        self.trigger = trigger
        self.delivery = trigger.delivery
        self.handler = handler
        self.settings = settings
        self.stop = stop
        self.context = trigger_context(context, "kafka-cluster", trigger.name)
        self.labels = {"function": function, "trigger": trigger.name}
        self.pending: list = []
        self.consumer: KafkaConsumer | None = None
        self._lag_updated_at = 0.0

    # -- loop ---------------------------------------------------------------
    def run(self) -> None:
        self.consumer = make_consumer(
            self.settings,
            group_id=self.trigger.consumer_group,
            client_id=f"{self.function}-{self.context.worker_id}",
            auto_offset_reset=self.trigger.initial_offset,
            max_poll_records=max(self.delivery.batch_size, COMMIT_CHUNK),
            # A batched forward pass on a slow CPU can take a while; don't get evicted.
            max_poll_interval_ms=600_000,
            # The broker's minimum: a replica killed with -9 gives its partitions up after 6 s.
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
        )
        self.consumer.subscribe(list(self.trigger.topics), listener=_FlushOnRevoke(self))
        try:
            while not self.stop.is_set():
                self._collect()
                self.finish_pending()
                self._update_lag()
        finally:
            self.finish_pending()
            self.consumer.close(autocommit=False)  # leaves the group: partitions move on at once

    def _collect(self) -> None:
        """Take what is there (up to a commit chunk); if that is less than one batch,
        wait at most batch_wait_ms after the first record for the batch to fill."""
        deadline = None
        limit = max(self.delivery.batch_size, COMMIT_CHUNK)
        while not self.stop.is_set() and (not self.pending or len(self.pending) < self.delivery.batch_size):
            if deadline is None:
                timeout_ms = IDLE_POLL_MS
            else:
                timeout_ms = int((deadline - time.monotonic()) * 1000)
                if timeout_ms <= 0:
                    break
            polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=limit - len(self.pending))
            records = [r for batch in polled.values() for r in batch]
            if not records:
                if not self.pending and not self.consumer.assignment():
                    # kafka-python 3's poll returns at once when this member holds no
                    # partition (more members than partitions, or a topic with no metadata
                    # yet): without this wait the loop spun, and an idle ingest replica
                    # burned 0.9 of a core while the first champions trained.
                    self.stop.wait(timeout_ms / 1000)
                if self.pending or deadline is None:
                    break
                continue
            self.pending.extend(records)
            if deadline is None:
                deadline = time.monotonic() + self.delivery.batch_wait_ms / 1000

    def finish_pending(self) -> None:
        """Handle the records in hand, then commit past them."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        size = self.delivery.batch_size if self.handler.takes_batches else 1
        for start in range(0, len(batch), size):
            events = [kafka_event(r, self.trigger.name) for r in batch[start: start + size]]
            self._invoke(events if self.handler.takes_batches else events[0], len(events))
        self._commit(batch)

    def _invoke(self, payload, size: int) -> None:
        metrics.BATCH_SIZE.labels(**self.labels).observe(size)
        started = time.perf_counter()
        # The wrapper returns once every event is handled or dead-lettered; if it
        # raises anyway, the replica dies uncommitted and the records come again.
        self.handler.handler(self.context, payload)
        metrics.HANDLER_SECONDS.labels(**self.labels).observe(time.perf_counter() - started)
        metrics.EVENTS.labels(**self.labels).inc(size)

    # -- offsets --------------------------------------------------------------
    def _commit(self, records: list) -> None:
        highest: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            highest[tp] = max(highest.get(tp, -1), r.offset)
        try:
            self.consumer.commit({tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in highest.items()})
        except CommitFailedError as exc:
            # The group moved on while these were handled (a broker restart or a
            # rebalance made this member unknown). Whoever owns the partitions now
            # starts from the last commit, so the records come again and the sinks,
            # being idempotent, change nothing. Ending the replica instead would
            # cost a restart, up to a minute with its backoff, on every Kafka blip.
            log.warning("%s: commit refused (%s); %d record(s) will be delivered again",
                        self.function, exc, len(records))

    def _update_lag(self) -> None:
        assignment = self.consumer.assignment()
        if not assignment or time.monotonic() - self._lag_updated_at < LAG_INTERVAL_S:
            return
        self._lag_updated_at = time.monotonic()
        try:
            ends = self.consumer.end_offsets(list(assignment))
        except Exception:  # noqa: BLE001 - lag is best-effort telemetry
            return
        for tp in assignment:
            try:
                position = self.consumer.position(tp)
            except Exception:  # noqa: BLE001
                continue
            metrics.CONSUMER_LAG.labels(self.function, tp.topic, str(tp.partition)).set(max(ends[tp] - position, 0))
