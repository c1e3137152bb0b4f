"""The hourly metrics job: per model version and hour, the same figures as the
per-minute windows (`model_metrics` rows with window_seconds 3600), computed from
the predictions while they exist. Retention later deletes old predictions and
minute windows, but keeps these, so the Compare page's long ranges stay cheap
and complete."""

from __future__ import annotations

from functools import partial

from ..aggregation.store import recompute_window
from ..config import Settings
from ..db.connection import Database
from .steps import Step

HOUR = 3600

# Complete hours with minute windows, newest first, within the look-back.
HOURS = """
SELECT DISTINCT model_name, model_version, date_trunc('hour', window_start) AS hour
FROM model_metrics
WHERE window_seconds = 60 AND window_start >= date_trunc('hour', now()) - make_interval(hours => %s)
  AND window_start < date_trunc('hour', now())
ORDER BY hour DESC
"""


def snapshot_hours(
    settings: Settings, run_id: str | None = None, lookback_hours: int = 48, db: Database | None = None
) -> dict:
    """(Re)compute the hourly rows of the last `lookback_hours` complete hours; idempotent."""
    db = db or Database(settings)
    with Step(db, run_id, "metrics") as step:
        hours = db.transaction(lambda cur: (cur.execute(HOURS, (lookback_hours,)), cur.fetchall())[1])
        for row in hours:  # one short transaction per hour and version
            db.transaction(
                partial(
                    recompute_window,
                    model=row["model_name"],
                    version=row["model_version"],
                    start=row["hour"],
                    seconds=HOUR,
                )
            )
        result = {"hourly_rows": len(hours), "hours": len({r["hour"] for r in hours}), "lookback_hours": lookback_hours}
        step.done(result)
    return result
