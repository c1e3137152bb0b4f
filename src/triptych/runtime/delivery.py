"""Delivery settings of a Kafka trigger: batching, bounded retries, dead letters."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import TOPIC_DEAD_LETTERS


@dataclass(frozen=True)
class Delivery:
    """How the local runner delivers Kafka messages to a handler."""

    batch_size: int = 1
    batch_wait_ms: int = 0
    max_attempts: int = 3
    retry_backoff_ms: int = 200
    dead_letter_topic: str = TOPIC_DEAD_LETTERS

    def __post_init__(self):
        if self.batch_size < 1 or self.max_attempts < 1 or self.batch_wait_ms < 0 or self.retry_backoff_ms < 0:
            raise ValueError(f"invalid delivery settings: {self}")
