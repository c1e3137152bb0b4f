"""The Kafka trigger, with the delivery semantics Nuclio's own trigger lacks.

- A real consumer group; records of one partition are handled in order.
- Offsets are committed only after the handler returned for every record up to
  them (at-least-once; sinks are idempotent, so the effect is exactly once).
- A failing record is retried with exponential backoff up to ``max_attempts``;
  then it goes to the dead-letter topic (plus a system_events row) and the
  partition moves on: a poison message never blocks its neighbours.
- Optional micro-batching: up to ``batch_size`` records, waiting at most
  ``batch_wait_ms`` after the first, go to a batch handler as one list. A batch
  that keeps failing is split into single records so only the culprits are
  dead-lettered.
- On revocation (rebalance) and on stop, the batch in hand is finished and
  committed before the partitions are given up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ..bus import consumer as make_consumer
from ..config import Settings
from ..contracts import HEADER_TARGET_FUNCTION
from . import metrics
from .dead_letters import DeadLetterSink, dead_letter_for
from .errors import PermanentError
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
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.function = function
        self.trigger = trigger
        self.delivery = trigger.delivery
        self.handler = handler
        self.settings = settings
        self.stop = stop
        self.sleep = sleep
        self.context = trigger_context(context, "kafka-cluster", trigger.name)
        self.labels = {"function": function, "trigger": trigger.name}
        self.pending: list = []
        self.consumer: KafkaConsumer | None = None
        self.dead_letters = DeadLetterSink(settings, self.delivery.dead_letter_topic)
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
            self.dead_letters.close()

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
        mine = [r for r in batch if self._addressed_to_me(r)]
        if len(mine) < len(batch):
            metrics.SKIPPED.labels(**self.labels).inc(len(batch) - len(mine))
        size = self.delivery.batch_size
        for start in range(0, len(mine), size):
            chunk = mine[start: start + size]
            if self.handler.takes_batches and len(chunk) > 1:
                self._handle_batch(chunk)
            else:
                for record in chunk:
                    self._handle_single(record)
        self._commit(batch)

    def _addressed_to_me(self, record) -> bool:
        for name, value in record.headers or []:
            if name == HEADER_TARGET_FUNCTION:
                return value.decode() == self.function
        return True

    # -- invoking the handler -------------------------------------------------
    def _invoke(self, payload) -> None:
        size = len(payload) if isinstance(payload, list) else 1
        metrics.BATCH_SIZE.labels(**self.labels).observe(size)
        started = time.perf_counter()
        try:
            self.handler.handler(self.context, payload)
        except Exception:
            metrics.ERRORS.labels(**self.labels).inc()
            raise
        finally:
            metrics.HANDLER_SECONDS.labels(**self.labels).observe(time.perf_counter() - started)
        metrics.EVENTS.labels(**self.labels).inc(size)

    def _with_retries(self, call: Callable[[], None]) -> tuple[BaseException, int] | None:
        """Run `call` up to max_attempts times (once for a PermanentError); return
        (last error, attempts made), or None on success."""
        for attempt in range(1, self.delivery.max_attempts + 1):
            try:
                call()
                return None
            except PermanentError as exc:
                return exc, attempt
            except Exception as exc:  # noqa: BLE001 - any handler error is retried, then dead-lettered
                if attempt == self.delivery.max_attempts:
                    return exc, attempt
                metrics.RETRIES.labels(**self.labels).inc()
                self.sleep(min(self.delivery.retry_backoff_ms / 1000 * 2 ** (attempt - 1), 10.0))
        raise AssertionError("unreachable: max_attempts >= 1")

    def _handle_single(self, record) -> None:
        failure = self._with_retries(lambda: self._invoke(kafka_event(record, self.trigger.name)))
        if failure is not None:
            self._dead_letter(record, *failure)

    def _handle_batch(self, records: list) -> None:
        failure = self._with_retries(lambda: self._invoke([kafka_event(r, self.trigger.name) for r in records]))
        if failure is not None:
            self.context.logger.warn_with(
                "batch failed, retrying its records one by one", size=len(records), error=str(failure[0])
            )
            for record in records:
                single = self._with_retries(lambda r=record: self._invoke([kafka_event(r, self.trigger.name)]))
                if single is not None:
                    self._dead_letter(record, *single)

    def _dead_letter(self, record, error: BaseException, attempts: int) -> None:
        letter = dead_letter_for(record, self.function, self.trigger.consumer_group, error, attempts=attempts)
        # If this raises (Kafka or Postgres away for a minute), the replica dies without
        # committing, and the record is delivered again after the restart: nothing is lost.
        self.dead_letters.send(letter)
        metrics.DEAD_LETTERS.labels(**self.labels).inc()
        self.context.logger.error_with(
            "dead-lettered", topic=record.topic, partition=record.partition, offset=record.offset, error=str(error)
        )

    # -- offsets --------------------------------------------------------------
    def _commit(self, records: list) -> None:
        highest: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            highest[tp] = max(highest.get(tp, -1), r.offset)
        self.consumer.commit({tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in highest.items()})

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
