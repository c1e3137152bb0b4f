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
- The client is librdkafka (confluent-kafka): fetching, decompression, CRCs and
  the group's heartbeats run in its C threads, so the replica's one Python thread
  is left to the handler (in `triptych bench`, the inference functions' CPU went
  from 1.3-1.6x their bare forward passes with kafka-python to 1.0-1.2x).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ..bus import group_consumer
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
# The same consumer error (a topic not created yet, a broker away) is logged once a minute.
ERROR_LOG_INTERVAL_S = 60.0


class Record(NamedTuple):
    """One consumed Kafka record, as `nuclio_compat.kafka_event` reads it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list | None
    timestamp: int | None  # ms since the epoch

    @classmethod
    def of(cls, message) -> Record:
        kind, timestamp = message.timestamp()
        return cls(
            message.topic(),
            message.partition(),
            message.offset(),
            message.key(),
            message.value(),
            message.headers(),
            timestamp if kind else None,
        )


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
        self.consumer: Consumer | None = None
        self._lag_updated_at = 0.0
        self._errors_logged_at: dict[int, float] = {}

    # -- loop ---------------------------------------------------------------
    def run(self) -> None:
        self.consumer = group_consumer(
            self.settings,
            self.trigger.consumer_group,
            client_id=f"{self.function}-{self.context.worker_id}",
            initial_offset=self.trigger.initial_offset,
        )
        # The callbacks run inside consume(), in this thread.
        self.consumer.subscribe(list(self.trigger.topics), on_assign=self._assigned, on_revoke=self._revoked)
        try:
            while not self.stop.is_set():
                self._collect()
                self.finish_pending()
                self._update_lag()
        finally:
            self.finish_pending()
            self.consumer.close()  # leaves the group (commits nothing): partitions move on at once

    def _assigned(self, consumer, partitions) -> None:
        log.info("%s: assigned %s", self.function, sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions))

    def _revoked(self, consumer, partitions) -> None:
        self.finish_pending()  # commit what was handled while the partitions are still ours

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
            asked = time.monotonic()
            records = self._records(self._take(limit - len(self.pending), timeout_ms / 1000))
            if not records:
                if not self.pending and not self.consumer.assignment():
                    # A client whose poll returns at once while this member holds no
                    # partition (kafka-python 3 did, with more members than partitions or a
                    # topic with no metadata yet) would spin: an idle ingest replica burned
                    # 0.9 of a core while the first champions trained. Wait out the rest.
                    self.stop.wait(max(0.0, timeout_ms / 1000 - (time.monotonic() - asked)))
                if self.pending or deadline is None:
                    break
                continue
            self.pending.extend(records)
            if deadline is None:
                deadline = time.monotonic() + self.delivery.batch_wait_ms / 1000

    def _take(self, room: int, timeout_s: float) -> list:
        """What is there, up to `room` messages, once at least one is (or at the timeout).
        librdkafka's consume(n, timeout) waits for all n or the whole timeout: at a low
        rate every hop then cost the full idle poll, and p50 at half load went from
        0.2 to 1.5 s. poll() returns at the first message; consume(timeout=0) then
        takes what is already fetched without waiting."""
        first = self.consumer.poll(timeout_s)
        if first is None:
            return []
        return [first, *self.consumer.consume(num_messages=room - 1, timeout=0)] if room > 1 else [first]

    def _records(self, messages: list) -> list[Record]:
        """The records among what consume() returned; its errors are logged, not raised:
        librdkafka recovers from them (reconnects, refreshes metadata) on its own."""
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(Record.of(message))
            elif error.code() != KafkaError._PARTITION_EOF:
                now = time.monotonic()
                if now - self._errors_logged_at.get(error.code(), -ERROR_LOG_INTERVAL_S) >= ERROR_LOG_INTERVAL_S:
                    self._errors_logged_at[error.code()] = now
                    log.warning("%s: consumer error: %s", self.function, error)
        return records

    def finish_pending(self) -> None:
        """Handle the records in hand, then commit past them."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        size = self.delivery.batch_size if self.handler.takes_batches else 1
        for start in range(0, len(batch), size):
            events = [kafka_event(r, self.trigger.name) for r in batch[start : start + size]]
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
    def _commit(self, records: list[Record]) -> None:
        highest: dict[tuple[str, int], int] = {}
        for r in records:
            highest[r.topic, r.partition] = max(highest.get((r.topic, r.partition), -1), r.offset)
        try:
            self.consumer.commit(
                offsets=[
                    TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in highest.items()
                ],
                asynchronous=False,
            )
        except KafkaException as exc:
            # The group moved on while these were handled (a broker restart or a
            # rebalance made this member unknown). Whoever owns the partitions now
            # starts from the last commit, so the records come again and the sinks,
            # being idempotent, change nothing. Ending the replica instead would
            # cost a restart, up to a minute with its backoff, on every Kafka blip.
            log.warning(
                "%s: commit refused (%s); %d record(s) will be delivered again", self.function, exc, len(records)
            )

    def _update_lag(self) -> None:
        assignment = self.consumer.assignment()
        if not assignment or time.monotonic() - self._lag_updated_at < LAG_INTERVAL_S:
            return
        self._lag_updated_at = time.monotonic()
        try:
            positions = self.consumer.position(assignment)
            for tp in positions:
                if tp.offset < 0:
                    continue  # nothing consumed from it yet: no position to measure from
                _, end = self.consumer.get_watermark_offsets(tp, timeout=2.0, cached=False)
                metrics.CONSUMER_LAG.labels(self.function, tp.topic, str(tp.partition)).set(max(end - tp.offset, 0))
        except KafkaException:  # lag is best-effort telemetry
            return
