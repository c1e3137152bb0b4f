"""Kafka access: producer and consumer factories with Triptych's defaults, so every
component connects the same way (settings, timeouts, durability)."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer

from .config import Settings, get_settings


def producer(settings: Settings | None = None, **overrides) -> KafkaProducer:
    """A producer whose `send(...).get()` returns only once the broker has the message."""
    settings = settings or get_settings()
    options = dict(
        bootstrap_servers=settings.kafka_url,
        acks="all",
        enable_idempotence=True,  # a retried send is never written twice
        retries=5,
        linger_ms=5,
        max_in_flight_requests_per_connection=1,  # keep per-partition order through retries
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    options.update(overrides)
    return KafkaProducer(**options)


def consumer(settings: Settings | None = None, **overrides) -> KafkaConsumer:
    settings = settings or get_settings()
    options = dict(bootstrap_servers=settings.kafka_url, enable_auto_commit=False,
                   request_timeout_ms=settings.kafka_request_timeout_ms)
    options.update(overrides)
    return KafkaConsumer(**options)


class GroupLag:
    """How many messages of `topic` one consumer group has not committed yet: a
    callable, its Kafka clients made on first use and kept."""

    def __init__(self, settings: Settings, group: str, topic: str, from_latest: bool = False):
        # from_latest: the group starts at the newest offset, so a partition it never
        # committed has nothing waiting (else everything in it does).
        self.settings, self.group, self.topic, self.from_latest = settings, group, topic, from_latest
        self._admin = self._consumer = None

    def __call__(self) -> int:
        from kafka import KafkaAdminClient, TopicPartition

        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_url)
            self._consumer = consumer(self.settings)
        partitions = [TopicPartition(self.topic, p) for p in self._consumer.partitions_for_topic(self.topic) or ()]
        committed = self._admin.list_group_offsets({self.group: partitions}).get(self.group, {})
        ends = self._consumer.end_offsets(partitions)

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

        self()  # the clients, made on first use
        partitions = [TopicPartition(self.topic, p) for p in self._consumer.partitions_for_topic(self.topic) or ()]
        results = self._admin.reset_group_offsets(self.group, {tp: OffsetSpec.LATEST for tp in partitions})
        failed = {tp: r["error"] for tp, r in results.items() if r.get("error") and r["error"].errno}
        if failed:
            raise RuntimeError(f"group {self.group}: offsets not moved: {failed}")

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                client.close()
        self._admin = self._consumer = None
