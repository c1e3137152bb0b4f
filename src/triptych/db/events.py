"""system_events: the audit trail of quarantines, dead letters, promotions and
replays. Writes go through log_system_event(), whose dedup key makes a replayed
record a no-op."""

from __future__ import annotations

import json
from typing import Any

import psycopg2
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from ..config import Settings, get_settings
from .connection import connection


# Only a lost or refused connection is worth waiting for; a bad value or a bug in
# the query fails at once (retrying it would stall the caller for a minute and then
# fail anyway). psycopg2 raises OperationalError for the one, InterfaceError for a
# connection closed under it.
@retry(
    wait=wait_exponential(multiplier=0.2, max=5),
    stop=stop_after_delay(60),
    reraise=True,
    retry=retry_if_exception_type((psycopg2.OperationalError, psycopg2.InterfaceError)),
)
def log_system_event(
    event_type: str,
    severity: str,
    component: str,
    message: str,
    details: dict[str, Any] | None = None,
    image_id: str | None = None,
    dedup_key: str | None = None,
    settings: Settings | None = None,
) -> int:
    """Record an event; retried for up to a minute while Postgres cannot be reached,
    so a Postgres restart loses nothing."""
    with connection(settings or get_settings()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT log_system_event(%s, %s, %s, %s, %s::jsonb, %s::uuid, %s)",
            (event_type, severity, component, message, json.dumps(details or {}, default=str), image_id, dedup_key),
        )
        return cur.fetchone()[0]


def events_by_dedup_prefix(prefix: str, settings: Settings | None = None) -> dict[str, dict]:
    with connection(settings or get_settings()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT dedup_key, event_type, created_at, details FROM system_events WHERE dedup_key LIKE %s",
            (prefix.replace("%", r"\%") + "%",),
        )
        return {key: {"event_type": t, "created_at": at, "details": d} for key, t, at, d in cur.fetchall()}
