"""Dead letters: what a function gives up on goes to the `dead-letters` topic with
its error, origin and attempt count, and a `system_events` row records it.
`triptych dlq list | replay` read them back and resend them to their origin topic,
addressed to the function that failed (the others skip them)."""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass

from kafka import TopicPartition

from ..bus import consumer as make_consumer
from ..bus import producer as make_producer
from ..config import TOPIC_DEAD_LETTERS, Settings
from ..contracts import (
    HEADER_REPLAYED_FROM,
    HEADER_TARGET_FUNCTION,
    DeadLetter,
    KafkaOrigin,
    b64,
)
from ..db.events import events_by_dedup_prefix, log_system_event


def dead_letter_for(record, function: str, consumer_group: str, error: BaseException, attempts: int) -> DeadLetter:
    return DeadLetter(
        function=function,
        consumer_group=consumer_group,
        origin=KafkaOrigin(
            topic=record.topic, partition=record.partition, offset=record.offset, timestamp_ms=record.timestamp
        ),
        key_b64=b64(record.key),
        value_b64=b64(record.value or b""),
        headers=[(name, b64(value)) for name, value in (record.headers or [])],
        error=str(error) or repr(error),
        error_type=type(error).__name__,
        traceback="".join(tb.format_exception(error))[-4000:],
        attempts=attempts,
    )


class DeadLetterSink:
    """Publishes dead letters durably (acks=all, waited for) and records them."""

    def __init__(self, settings: Settings, topic: str = TOPIC_DEAD_LETTERS):
        self.settings = settings
        self.topic = topic
        self._producer = make_producer(settings)

    def send(self, letter: DeadLetter) -> None:
        self._producer.send(
            self.topic,
            key=letter.key(),
            value=letter.model_dump_json().encode(),
            headers=[("triptych-function", letter.function.encode()), ("triptych-error-type", letter.error_type.encode())],
        ).get(timeout=30)
        o = letter.origin
        log_system_event(
            "dead_letter",
            "error",
            letter.function,
            f"{letter.function} gave up on {o.topic}[{o.partition}]@{o.offset} after {letter.attempts} attempts: "
            f"{letter.error_type}: {letter.error[:300]}",
            details={
                "origin": o.model_dump(),
                "attempts": letter.attempts,
                "error": letter.error,
                "error_type": letter.error_type,
                "dead_letter_topic": self.topic,
            },
            dedup_key=letter.dedup_key,
            settings=self.settings,
        )

    def close(self) -> None:
        self._producer.close(timeout=10)


@dataclass
class StoredDeadLetter:
    partition: int
    offset: int
    letter: DeadLetter
    replayed: bool

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def replay_key(self) -> str:
        return f"dlq-replay:{TOPIC_DEAD_LETTERS}:{self.ref}"


def read_dead_letters(settings: Settings, function: str | None = None) -> list[StoredDeadLetter]:
    """Every dead letter on the topic, oldest first, with whether it was replayed."""
    consumer = make_consumer(settings, consumer_timeout_ms=2000)
    try:
        partitions = [TopicPartition(TOPIC_DEAD_LETTERS, p) for p in consumer.partitions_for_topic(TOPIC_DEAD_LETTERS) or ()]
        consumer.assign(partitions)
        end = consumer.end_offsets(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[StoredDeadLetter] = []
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    letter = DeadLetter.model_validate_json(record.value)
                    if function is None or letter.function == function:
                        found.append(StoredDeadLetter(record.partition, record.offset, letter, replayed=False))
    finally:
        consumer.close()
    replayed = events_by_dedup_prefix(f"dlq-replay:{TOPIC_DEAD_LETTERS}:", settings)
    for item in found:
        item.replayed = item.replay_key in replayed
    found.sort(key=lambda d: d.letter.dead_lettered_at)
    return found


def replay(settings: Settings, items: list[StoredDeadLetter]) -> int:
    """Resend each dead letter's original message to its origin topic, for its function only."""
    producer = make_producer(settings)
    try:
        for item in items:
            letter = item.letter
            headers = [
                (name, value)
                for name, value in letter.original_headers()
                if name not in (HEADER_TARGET_FUNCTION, HEADER_REPLAYED_FROM)
            ]
            headers += [
                (HEADER_TARGET_FUNCTION, letter.function.encode()),
                (HEADER_REPLAYED_FROM, f"{TOPIC_DEAD_LETTERS}:{item.ref}".encode()),
            ]
            producer.send(letter.origin.topic, key=letter.key(), value=letter.value(), headers=headers).get(timeout=30)
            log_system_event(
                "dlq_replayed",
                "info",
                "dlq",
                f"replayed dead letter {item.ref} of {letter.function} to {letter.origin.topic}",
                details={"origin": letter.origin.model_dump(), "function": letter.function},
                dedup_key=item.replay_key,
                settings=settings,
            )
    finally:
        producer.close(timeout=10)
    return len(items)
