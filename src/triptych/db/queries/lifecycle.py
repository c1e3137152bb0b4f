"""Read-side queries: the model lifecycle (see the package's docstring)."""

from __future__ import annotations

# --- the model lifecycle ------------------------------------------------------------

LIFECYCLE_EVENTS = (
    "model_promoted",
    "model_challenger",
    "model_rejected",
    "model_registered",
    "model_not_promoted",
    "training_started",
    "training_epoch",
    "label_set",
    "alert",
)


def lifecycle_events(cur, limit: int = 100, types: tuple[str, ...] = LIFECYCLE_EVENTS) -> list[dict]:
    cur.execute(
        """SELECT event_type, severity, component, message, details, created_at FROM system_events
           WHERE event_type = ANY(%s) ORDER BY created_at DESC LIMIT %s""",
        (list(types), limit),
    )
    return [dict(r) for r in cur.fetchall()]


def drift_state(cur) -> list[dict]:
    """Every drift detector's current state (triptych.lifecycle.drift), for the API and the Compare page."""
    cur.execute(
        "SELECT detector, kind, status, summary, drift_at, updated_at FROM drift_detectors ORDER BY kind, detector"
    )
    return [dict(r) for r in cur.fetchall()]
