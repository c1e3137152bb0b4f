"""Versioned SQL migrations: ``migrations/NNNN_name.sql``, applied in order, once.

Each file runs in its own transaction together with its row in
``schema_migrations``, under an advisory lock, so concurrent `triptych up` calls
and repeated runs are safe. A migration that was edited after being applied is
refused (its checksum no longer matches): write a new migration instead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg2

# Any constant works; it only has to be the same for every Triptych process.
_MIGRATION_LOCK_ID = 0x7217_7C4

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("triptych.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"Two migrations share a version number: {versions}")
    return found


def migrate(dsn: str) -> list[Migration]:
    """Apply every migration not yet applied; return those applied now."""
    applied_now: list[Migration] = []
    conn = psycopg2.connect(dsn)
    try:
        with conn:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_ID,))
                cur.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                           version    INTEGER PRIMARY KEY,
                           name       TEXT NOT NULL,
                           checksum   CHAR(64) NOT NULL,
                           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
                )
                cur.execute("SELECT version, checksum FROM schema_migrations")
                done = dict(cur.fetchall())
        for migration in available_migrations():
            if migration.version in done:
                if done[migration.version].strip() != migration.checksum:
                    raise MigrationError(
                        f"Migration {migration.version:04d}_{migration.name} was changed after it was applied; "
                        "add a new migration instead of editing an applied one."
                    )
                continue
            with conn:  # one transaction: the schema change and its record together
                with conn.cursor() as cur:
                    cur.execute(migration.sql)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            applied_now.append(migration)
    finally:
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_ID,))
        finally:
            conn.close()
    return applied_now
