"""Postgres connections for function replicas: one per thread (an HTTP trigger
runs handler calls concurrently, and a psycopg2 connection serves one transaction
at a time), each re-opened after a server restart.

A transaction that fails because the connection broke is retried on a fresh
connection (with backoff, for up to a minute): a Postgres restart makes functions
wait, not lose work. Any other database error propagates to the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg2
import psycopg2.extras
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ..config import Settings, get_settings

T = TypeVar("T")

_CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


@contextmanager
def connection(settings: Settings | None = None) -> Iterator[psycopg2.extensions.connection]:
    """A one-off connection whose `with` block is one transaction, closed afterwards."""
    conn = psycopg2.connect((settings or get_settings()).postgres_url, connect_timeout=5)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


class Database:
    def __init__(self, settings: Settings | None = None):
        self.dsn = (settings or get_settings()).postgres_url
        self._local = threading.local()

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = psycopg2.connect(self.dsn, connect_timeout=5)
        return conn

    def transaction(self, work: Callable[[Any], T]) -> T:
        """Run `work(cursor)` in one transaction; commit on return, roll back on error.
        A broken connection is retried on a fresh one for up to a minute."""
        for attempt in Retrying(
            retry=retry_if_exception_type(_CONNECTION_ERRORS),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(60),
            reraise=True,
        ):
            with attempt:
                return self._once(work)
        raise AssertionError("unreachable: Retrying re-raises the last error")

    def _once(self, work: Callable[[Any], T]) -> T:
        conn = self._connection()
        try:
            with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                return work(cur)
        except _CONNECTION_ERRORS:
            self.close()
            raise

    def close(self) -> None:
        """Close this thread's connection (the next transaction opens a new one)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
