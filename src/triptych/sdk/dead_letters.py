"""Writing dead letters: what a function gives up on goes to the `dead-letters`
topic with its error, origin and attempt count, and a `system_events` row records
it (its dedup key makes a second delivery of the same record a no-op).
`triptych dlq list | replay` read them back (`triptych.runtime.dlq`)."""

from __future__ import annotations

import json
import traceback as tb
from datetime import datetime
from typing import Any

from ..bus import producer as make_producer
from ..config import Settings
from ..contracts import TOPIC_DEAD_LETTERS, DeadLetter, KafkaOrigin, b64
from ..db.events import log_system_event


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, default=str).encode()  # a body the wrapper already decoded


def dead_letter_for(event: Any, function: str, consumer_group: str, error: BaseException, attempts: int) -> DeadLetter:
    """A dead letter for one Kafka event, as the local runner or Nuclio's processor
    hands it to a handler (topic, shard_id = partition, offset, headers; the key
    only locally: Nuclio 1.14's Kafka event does not carry it)."""
    timestamp = getattr(event, "timestamp", None)
    key = (getattr(event, "fields", None) or {}).get("key")
    return DeadLetter(
        function=function,
        consumer_group=consumer_group,
        origin=KafkaOrigin(
            topic=_as_bytes(event.topic or event.path).decode(errors="replace"),
            partition=int(event.shard_id or 0),
            offset=int(event.offset or 0),
            timestamp_ms=int(timestamp.timestamp() * 1000) if isinstance(timestamp, datetime) else None,
        ),
        key_b64=b64(_as_bytes(key)) if key is not None else None,
        value_b64=b64(_as_bytes(event.body)),
        headers=[
            (_as_bytes(name).decode(errors="replace"), b64(_as_bytes(value)))
            for name, value in (event.headers or {}).items()
        ],
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
            headers=[
                ("triptych-function", letter.function.encode()),
                ("triptych-error-type", letter.error_type.encode()),
            ],
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
