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
        retries=5,
        linger_ms=5,
        max_in_flight_requests_per_connection=1,  # keep per-partition order through retries
    )
    options.update(overrides)
    return KafkaProducer(**options)


def consumer(settings: Settings | None = None, **overrides) -> KafkaConsumer:
    settings = settings or get_settings()
    options = dict(bootstrap_servers=settings.kafka_url, enable_auto_commit=False)
    options.update(overrides)
    return KafkaConsumer(**options)
