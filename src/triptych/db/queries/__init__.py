"""Read-side queries shared by the terminal view, the dashboard and the API, one
module per view (live, one_image, ranges, history, review, lifecycle); every name
is also here, so `queries.<name>` reads the same wherever it lives.

Every query is bounded: by a time range on an indexed timestamp, by a LIMIT on an
index order, or by a partial index (the review queue). None scans a whole table on
a refresh; `bench/dashboard_queries.py` times them on 100,000 images.

Functions take a cursor (a RealDictCursor, see `Database.transaction`) and return
plain dicts and lists, so callers decide how to show them.
"""

from __future__ import annotations

from .history import AGREEMENT_LEVELS, HistoryFilter, history_count, history_rows, uuid_prefix_range
from .lifecycle import LIFECYCLE_EVENTS, drift_state, lifecycle_events
from .live import LIVE_SUMMARY, PER_MODEL, live_summary, per_model, recent_comparisons
from .one_image import (
    PredictionFilter,
    answers_for,
    champion_answer,
    image_detail,
    image_location,
    images_by_id,
    latest_comparison,
    performance_series,
    predictions_for,
    recent_predictions,
)
from .ranges import (
    SAMPLE_ANSWERS,
    SAMPLE_IMAGES,
    agreement_matrix,
    calibration_bins,
    confidence_distribution,
    confusion_counts,
    correctness_patterns,
    int8_beside_fp32,
    latency_distribution,
    range_counts,
    series_step,
    throughput_series,
    version_comparison,
)
from .review import quarantined, recent_classes, review_queue
from .shared import LATEST_COMPARISON, Keyset

__all__ = [
    "LATEST_COMPARISON",
    "AGREEMENT_LEVELS",
    "HistoryFilter",
    "Keyset",
    "LIFECYCLE_EVENTS",
    "LIVE_SUMMARY",
    "PER_MODEL",
    "PredictionFilter",
    "SAMPLE_ANSWERS",
    "SAMPLE_IMAGES",
    "agreement_matrix",
    "answers_for",
    "calibration_bins",
    "champion_answer",
    "confidence_distribution",
    "confusion_counts",
    "correctness_patterns",
    "drift_state",
    "history_count",
    "history_rows",
    "image_detail",
    "image_location",
    "images_by_id",
    "int8_beside_fp32",
    "latency_distribution",
    "latest_comparison",
    "lifecycle_events",
    "live_summary",
    "per_model",
    "performance_series",
    "predictions_for",
    "quarantined",
    "range_counts",
    "recent_classes",
    "recent_comparisons",
    "recent_predictions",
    "review_queue",
    "series_step",
    "throughput_series",
    "uuid_prefix_range",
    "version_comparison",
]
