"""The aggregate function's logic: a batch of predictions in, durable rows out.

Predictions are upserted in one transaction; then every image of the batch whose
active models have all answered gets its comparison; the touched per-minute
metric windows are recomputed in the background, at most once a second each
(`windows.WindowRefresher`). A replica killed anywhere in between is harmless:
the batch is redelivered and every step is an upsert or a recomputation.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from ..config import Settings, get_settings
from ..contracts import PredictionMessage
from ..db.connection import Database
from ..sdk import PermanentError
from .store import compare_complete, refresh_shadow, upsert_int8, upsert_predictions, window_start
from .windows import WindowRefresher

log = logging.getLogger("triptych.aggregate")
PREDICTIONS_BY_CLASS = Counter(
    "triptych_predictions_total", "Predictions stored, by model and class", ("model", "predicted_class")
)
COMPARISONS = Counter("triptych_comparisons_total", "Comparisons written, by agreement level", ("agreement",))
AGREEMENT_RATE = Gauge("triptych_agreement_rate", "Share of the last batch's comparisons where all models agree")


def parse_predictions(bodies: list) -> list[PredictionMessage]:
    try:
        return [
            PredictionMessage.model_validate_json(b)
            if isinstance(b, (bytes, str))
            else PredictionMessage.model_validate(b)
            for b in bodies
        ]
    except ValidationError as exc:
        raise PermanentError(f"malformed prediction message: {exc.errors()[:3]}") from exc


class Aggregator:
    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.active_models = list(settings.active_models)
        self.windows = WindowRefresher(db, settings.metrics_refresh_s)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Aggregator:
        settings = settings or get_settings()
        return cls(settings, Database(settings))

    def handle(self, bodies: list) -> int:
        """Store a batch of predictions; returns the number of comparisons written."""
        messages = parse_predictions(bodies)
        # An int8 twin's answer goes to a table of its own: it never meets a comparison.
        int8 = [m for m in messages if m.role == "int8"]
        messages = [m for m in messages if m.role != "int8"]
        # A shadow answer (a challenger's) is stored and shown beside the comparison,
        # but never completes or changes one.
        image_ids = list(dict.fromkeys(m.image_id for m in messages if m.role == "champion"))
        shadowed = list(dict.fromkeys(m.image_id for m in messages if m.role == "shadow"))

        def store(cur):
            upsert_int8(cur, int8)
            upsert_predictions(cur, messages)
            for image_id in shadowed:
                refresh_shadow(cur, image_id)
            return compare_complete(cur, image_ids, self.active_models)

        started = time.perf_counter()
        comparisons = self.db.transaction(store)
        took_ms = round((time.perf_counter() - started) * 1000, 1)
        for image_id, c in comparisons.items():
            log.info(
                "compared",
                extra={
                    "image_id": image_id,
                    "stage": "aggregate",
                    "agreement": c.agreement_level,
                    "consensus": c.consensus_class,
                    "batch_size": len(messages),
                    "duration_ms": took_ms,
                },
            )
        self.windows.touch(
            {(m.model_name, m.model_version, window_start(m.predicted_at)) for m in messages if m.role == "champion"}
        )
        for m in messages:
            PREDICTIONS_BY_CLASS.labels(m.model_name, m.predicted_class).inc()
        for c in comparisons.values():
            COMPARISONS.labels(c.agreement_level).inc()
        if comparisons:
            AGREEMENT_RATE.set(sum(c.agreement_level == "all" for c in comparisons.values()) / len(comparisons))
        return len(comparisons)
