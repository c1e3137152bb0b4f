"""Per-minute metric windows, recomputed in the background at most once per
`interval_s` each, instead of after every batch.

A window is recomputed from all its predictions (never incremented), so the
recomputation that runs after the last batch touching it is exact. Doing it
after every batch made the aggregate function's database work grow with the
square of the rate (each batch rescanned its whole minute); now a window costs
one scan per interval however fast images arrive. The cost: a replica killed
within a second of committing a batch may leave that batch's windows stale until
another prediction of the same model and minute arrives (the predictions and
comparisons themselves are durable before the commit, as before).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from functools import partial

from ..db.connection import Database
from .store import recompute_window

log = logging.getLogger("triptych.aggregation")

Window = tuple[str, str, datetime]  # model, version, window start


def _recompute_one(cur, window: Window) -> None:
    recompute_window(cur, *window)


class WindowRefresher:
    def __init__(self, db: Database, interval_s: float = 1.0):
        self.db = db
        self.interval_s = interval_s
        self._dirty: set[Window] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def touch(self, windows: set[Window]) -> None:
        """Mark windows for recomputation; at once when the interval is 0."""
        if not windows:
            return
        if self.interval_s <= 0:
            self._recompute(windows)
            return
        with self._lock:
            self._dirty |= windows
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="metric-windows", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Recompute every window marked so far (a failure keeps it marked)."""
        with self._lock:
            windows, self._dirty = self._dirty, set()
        try:
            self._recompute(windows)
        except Exception:
            with self._lock:
                self._dirty |= windows
            raise

    def _recompute(self, windows: set[Window]) -> None:
        for model, version, start in sorted(windows):
            self.db.transaction(partial(_recompute_one, window=(model, version, start)))

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with the replica
            self._wake.wait(self.interval_s)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - Postgres away for a moment: retried next interval
                log.exception("recomputing metric windows failed; retrying")
