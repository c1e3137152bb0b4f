"""Reading dead letters back (`triptych dlq list | replay`) and resending them to
their origin topic, addressed to the function that failed (the others skip them).
Writing them is the delivery wrapper's (`triptych.sdk.dead_letters`)."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import TopicPartition

from ..bus import consumer as make_consumer
from ..bus import producer as make_producer
from ..config import Settings
from ..contracts import (
    HEADER_REPLAYED_FROM,
    HEADER_TARGET_FUNCTION,
    TOPIC_DEAD_LETTERS,
    DeadLetter,
)
from ..db.events import events_by_dedup_prefix, log_system_event


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
        partitions = [
            TopicPartition(TOPIC_DEAD_LETTERS, p) for p in consumer.partitions_for_topic(TOPIC_DEAD_LETTERS) or ()
        ]
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
