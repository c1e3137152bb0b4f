"""The app's one door to its data: Postgres through the shared read-side queries
(`triptych.db.queries`), the time ranges pages offer, and the classes a person may
assign. Callbacks call `read(query, ...)`; nothing here renders."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

from triptych.config import Settings, get_settings
from triptych.db.connection import Database
from triptych.models.classes import KnownClasses

T = TypeVar("T")

# The ranges the Compare and History pages offer: label -> length. Bounded on
# purpose: every query reads an indexed time range, never a whole table.
RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RANGE_LABELS = {
    "15m": "last 15 minutes",
    "1h": "last hour",
    "6h": "last 6 hours",
    "24h": "last 24 hours",
    "7d": "last 7 days",
    "30d": "last 30 days",
}


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def _database() -> Database:
    return Database(settings())


def read(query: Callable[..., T], *args, **kwargs) -> T:
    """Run one read-side query in its own transaction (one connection per server thread)."""
    return _database().transaction(lambda cur: query(cur, *args, **kwargs))


def write(work: Callable[..., T], *args, **kwargs) -> T:
    return _database().transaction(lambda cur: work(cur, *args, **kwargs))


def audit(
    event_type: str,
    message: str,
    subject: str | None,
    details: dict | None = None,
    severity: str = "info",
    image_id: str | None = None,
) -> None:
    """One line in `system_events`, from the dashboard, naming who did it."""
    write(lambda cur: record_event(cur, event_type, message, subject, details, severity, image_id))


def record_event(cur, event_type, message, subject, details, severity, image_id) -> None:
    cur.execute(
        "SELECT log_system_event(%s, %s, 'dashboard', %s, %s::jsonb, %s::uuid, NULL)",
        (event_type, severity, message, json.dumps({**(details or {}), "user": subject}, default=str), image_id),
    )


def time_range(key: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, end) for a range label; an unknown label is a clear error."""
    if key not in RANGES:
        raise ValueError(f"unknown time range {key!r}; one of {', '.join(RANGES)}")
    end = now or datetime.now(UTC)
    return end - RANGES[key], end


def model_names() -> list[str]:
    return list(settings().active_models)


@lru_cache(maxsize=1)
def _known_classes() -> KnownClasses:
    return KnownClasses(settings(), _database())


def known_classes() -> frozenset[str]:
    """The labels a person may assign (see triptych.models.classes)."""
    return _known_classes()()
