"""Kafka access: one place where every component gets its producer and consumer,
with Triptych's defaults (settings, timeouts, durability).

The producer, and the functions' trigger (`triptych.runtime.kafka_trigger`), run on
librdkafka (confluent-kafka): it does the protocol work (compression, CRCs, batching,
heartbeats) in C threads, outside the GIL. In an inference-like loop at 60 images/s
(batches of 8, acks=all, a commit per batch) kafka-python cost 3.5 ms of CPU per
image and librdkafka 0.4, measured side by side (issue 27). Tools and tests that
read topics now and then (`consumer`, `GroupLag`, the admin calls) stay on
kafka-python, whose API they are written against.
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

import confluent_kafka
from kafka import KafkaAdminClient, KafkaConsumer

from .config import Settings, get_settings


class PublishError(RuntimeError):
    """The broker did not take a message (or did not say so in time)."""


class Published(NamedTuple):
    topic: str
    partition: int
    offset: int


class Delivery:
    """One message in flight: `get` blocks until the broker has it, as kafka-python's future did."""

    __slots__ = ("_client", "_done", "_error", "_message")

    def __init__(self, client: confluent_kafka.Producer):
        self._client = client
        self._done = threading.Event()
        self._error: confluent_kafka.KafkaError | None = None
        self._message: confluent_kafka.Message | None = None

    def _report(self, error, message) -> None:  # librdkafka's delivery callback, run inside poll()
        self._error, self._message = error, message
        self._done.set()

    def get(self, timeout: float | None = None) -> Published:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise PublishError(f"no acknowledgement from Kafka within {timeout} s")
            # Delivery callbacks run in whichever thread polls: this one, or another
            # thread's poll has already run ours (then the event is set).
            try:
                self._client.poll(min(remaining, 0.2))
            except confluent_kafka.KafkaException as exc:  # fatal: e.g. no right to a producer id
                raise PublishError(f"Kafka refused the message: {exc.args[0]}") from exc
        if self._error is not None or self._message is None:
            raise PublishError(f"Kafka refused the message: {self._error}")
        topic, partition, offset = self._message.topic(), self._message.partition(), self._message.offset()
        assert topic is not None and partition is not None and offset is not None  # a delivered message has all three
        return Published(topic, partition, offset)


class Producer:
    """kafka-python's producer surface (`send(...).get()`, `flush`, `close`) on librdkafka,
    so the call sites read the same whichever client is underneath."""

    def __init__(self, config: dict):
        self._client = confluent_kafka.Producer(config)
        self._enqueue_timeout_s = config["message.timeout.ms"] / 1000

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> Delivery:
        delivery = Delivery(self._client)
        deadline = time.monotonic() + self._enqueue_timeout_s
        while True:
            try:
                self._client.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=list(headers) if headers else None,
                    on_delivery=delivery._report,
                    # librdkafka's "unassigned" (-1): the partitioner chooses.
                    partition=-1 if partition is None else partition,
                )
                break
            except BufferError:  # the local queue is full (the broker is away): let it drain
                if time.monotonic() > deadline:
                    raise PublishError("Kafka's local send queue stayed full") from None
                self._client.poll(0.1)
            except confluent_kafka.KafkaException as exc:  # a fatal error: no login, no right to write
                raise PublishError(f"Kafka refused the message: {exc.args[0]}") from exc
        try:
            self._client.poll(0)  # serve the reports of earlier sends; never blocks
        except confluent_kafka.KafkaException as exc:
            raise PublishError(f"Kafka refused the message: {exc.args[0]}") from exc
        return delivery

    def flush(self, timeout: float | None = None) -> int:
        """Wait for every message in flight; returns how many are still waiting."""
        return self._client.flush(-1 if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)


def login_config(settings: Settings) -> dict[str, str]:
    """librdkafka's properties for this process's Kafka login: none without SASL."""
    login = settings.kafka_login
    if login is None:
        return {}
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": settings.kafka_sasl_mechanism,
        "sasl.username": login[0],
        "sasl.password": login[1],
    }


# The same login in kafka-python's words.
_KAFKA_PYTHON_NAMES = {
    "security.protocol": "security_protocol",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
}


def login_kwargs(settings: Settings) -> dict[str, str]:
    """The same login for kafka-python's clients (consumers, admin, probes)."""
    return {_KAFKA_PYTHON_NAMES[key]: value for key, value in login_config(settings).items()}


def admin_client(settings: Settings, **overrides) -> KafkaAdminClient:
    """kafka-python's admin client, logged in as this process."""
    return KafkaAdminClient(bootstrap_servers=settings.kafka_url, **login_kwargs(settings), **overrides)


def producer(settings: Settings | None = None, **overrides) -> Producer:
    """A producer whose `send(...).get()` returns only once the broker has the message.
    `overrides` are librdkafka configuration properties."""
    settings = settings or get_settings()
    config = {
        "bootstrap.servers": settings.kafka_url,
        "acks": "all",
        "enable.idempotence": True,  # a retried send is never written twice, and order holds per partition
        "linger.ms": 5,
        "request.timeout.ms": settings.kafka_request_timeout_ms,
        # A message the broker has not taken in this long fails its delivery (our get()
        # usually gives up sooner); librdkafka retries within it on its own.
        "message.timeout.ms": 2 * settings.kafka_request_timeout_ms,
        # Java's and kafka-python's partitioner, so a key lands on the same partition
        # whichever client sent it.
        "partitioner": "murmur2_random",
        "client.id": "triptych",
        **login_config(settings),
    }
    config.update(overrides)
    return Producer(config)


def consumer(settings: Settings | None = None, **overrides) -> KafkaConsumer:
    settings = settings or get_settings()
    options = dict(
        bootstrap_servers=settings.kafka_url,
        enable_auto_commit=False,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        **login_kwargs(settings),
    )
    options.update(overrides)
    return KafkaConsumer(**options)


def group_consumer(
    settings: Settings, group: str, client_id: str, initial_offset: str, **overrides
) -> confluent_kafka.Consumer:
    """A librdkafka consumer-group member that commits only when told to (the trigger's)."""
    config = {
        "bootstrap.servers": settings.kafka_url,
        "group.id": group,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": initial_offset,
        # A batched forward pass on a slow CPU can take a while; don't get evicted.
        "max.poll.interval.ms": 600_000,
        # The broker's minimum: a replica killed with -9 gives its partitions up after 6 s.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 2000,
        # librdkafka fetches ahead in the background; its default of 64 MB per
        # partition is 4,000 images of 16 KB. 4 MB keeps a replica's memory small and
        # still holds far more than one commit chunk.
        "queued.max.messages.kbytes": 4096,
        # ... but with that queue full the fetcher pauses for fetch.queue.backoff.ms,
        # 1 s by default: the runner with a no-op handler managed 960 events/s against
        # 19,000 with 20 ms (bench/runner_overhead.py).
        "fetch.queue.backoff.ms": 20,
        **login_config(settings),
    }
    config.update(overrides)
    return confluent_kafka.Consumer(config)


class GroupLag:
    """How many messages of `topic` one consumer group has not committed yet: a
    callable, its Kafka clients made on first use and kept."""

    def __init__(self, settings: Settings, group: str, topic: str, from_latest: bool = False):
        # from_latest: the group starts at the newest offset, so a partition it never
        # committed has nothing waiting (else everything in it does).
        self.settings, self.group, self.topic, self.from_latest = settings, group, topic, from_latest
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None

    def _clients(self) -> tuple[KafkaAdminClient, KafkaConsumer]:
        if self._admin is None or self._consumer is None:
            self._admin = admin_client(self.settings)
            self._consumer = consumer(self.settings)
        return self._admin, self._consumer

    def __call__(self) -> int:
        from kafka import TopicPartition

        admin, reader = self._clients()
        partitions = [TopicPartition(self.topic, p) for p in reader.partitions_for_topic(self.topic) or ()]
        committed = admin.list_group_offsets({self.group: partitions}).get(self.group, {})
        ends = reader.end_offsets(partitions)

        def start(tp, end: int) -> int:
            if committed.get(tp) and committed[tp].offset >= 0:
                return committed[tp].offset
            return end if self.from_latest else 0

        return sum(max(0, end - start(tp, end)) for tp, end in ends.items())

    def skip_to_end(self) -> None:
        """Commit the group at the newest offset of every partition: what was published
        before now is not its to handle. Kafka allows it only while the group has no member."""
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec

        admin, reader = self._clients()
        partitions = [TopicPartition(self.topic, p) for p in reader.partitions_for_topic(self.topic) or ()]
        results = admin.reset_group_offsets(self.group, {tp: OffsetSpec.LATEST for tp in partitions})
        failed = {tp: r["error"] for tp, r in results.items() if r.get("error") and r["error"].errno}
        if failed:
            raise RuntimeError(f"group {self.group}: offsets not moved: {failed}")

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                client.close()
        self._admin = self._consumer = None
