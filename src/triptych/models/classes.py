"""The classes a person may assign to an image (a label on the review queue, an
upload's true class): every label some champion knows, from the MLflow registry,
cached a minute; when the registry cannot be reached, the classes the models
answered lately. Shared by the dashboard and the API."""

from __future__ import annotations

import threading
import time

from ..config import Settings
from ..db.connection import Database
from ..db.queries import recent_classes

CLASSES_TTL_S = 60.0


class KnownClasses:
    def __init__(self, settings: Settings, db: Database, ttl_s: float = CLASSES_TTL_S):
        self.settings = settings
        self.db = db
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, frozenset[str]] = (0.0, frozenset())

    def __call__(self) -> frozenset[str]:
        with self._lock:
            fetched_at, classes = self._cached
            if classes and time.monotonic() - fetched_at < self.ttl_s:
                return classes
        try:
            from .registry import champion_labels

            found = frozenset(champion_labels(self.settings))
        except Exception:  # noqa: BLE001 - the registry being away must not break labelling
            found = frozenset()
        if not found:
            found = frozenset(self.db.transaction(recent_classes))
        with self._lock:
            self._cached = (time.monotonic(), found)
        return found
