"""The drift job (every minute, in the `jobs` function): feed the detectors of
triptych.stats.drift with what arrived since the last run, and say when one fires.

- Output detectors read each comparison once, in id order, from a watermark.
- The input detector compares the newest live images' pixel statistics (at most
  `drift_window` of the last `drift_window_hours`) with the training set's, which
  are computed once per data set (from `drift_reference_count` of its images).
- A detector that fires turns to `drift` for `drift_hold_minutes` (so an alert has
  time to fire and someone to look), writes a `drift_detected` system event, and
  raises `triptych_drift_detected`, which the `StreamDrifting` alert watches.

All state lives in Postgres (drift_detectors, drift_watermarks): any replica may
run the job, and a restart resumes where the last run stopped.
"""

from __future__ import annotations

import json
import logging
import pickle
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg2
from prometheus_client import Gauge

from ..config import Settings
from ..datasets.bucket import load_split
from ..db.connection import Database
from ..db.events import log_system_event
from ..stats.drift import StreamWatch, input_drift
from ..stats.pixels import SIZE, pixel_features
from .training_set import base_dataset

log = logging.getLogger("triptych.drift")

DRIFT = Gauge(
    "triptych_drift_detected",
    "1 while a drift detector's latest detection is recent (drift_hold_minutes)",
    ["detector"],
)
BATCH = 20_000  # comparisons read per run at most; a backlog is read over the next runs

_NEW_COMPARISONS = """SELECT comparison_id, per_model, agreement_level FROM model_comparisons
                      WHERE comparison_id > %s ORDER BY comparison_id LIMIT %s"""
_LIVE_STATS = """SELECT pixel_stats FROM images
                 WHERE pixel_stats IS NOT NULL AND uploaded_at > now() - %s * interval '1 hour'
                 ORDER BY uploaded_at DESC LIMIT %s"""


def _watermark(cur, name: str, default):
    cur.execute("SELECT value FROM drift_watermarks WHERE name = %s", (name,))
    row = cur.fetchone()
    return row["value"] if row else default


def _set_watermark(cur, name: str, value) -> None:
    cur.execute(
        """INSERT INTO drift_watermarks (name, value) VALUES (%s, %s::jsonb)
                   ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
        (name, json.dumps(value)),
    )


def reference_stats(settings: Settings, db: Database) -> tuple[str, list[dict]]:
    """The training set's pixel statistics, computed once per data set and kept."""
    dataset = base_dataset(settings)
    key = f"reference:{dataset}"
    kept = db.transaction(lambda cur: _watermark(cur, key, None))
    if kept is not None:
        return dataset, kept
    split = load_split(dataset, "train", SIZE, settings.drift_reference_count, settings)
    stats = [pixel_features(image) for image in split.images]
    db.transaction(lambda cur: _set_watermark(cur, key, stats))
    return dataset, stats


def _load_detectors(cur) -> dict[str, dict]:
    cur.execute("SELECT detector, kind, status, state, summary, drift_at FROM drift_detectors")
    return {r["detector"]: dict(r) for r in cur.fetchall()}


def _save(
    cur, detector: str, kind: str, status: str, state: bytes | None, summary: dict, drift_at: datetime | None
) -> None:
    cur.execute(
        """INSERT INTO drift_detectors (detector, kind, status, state, summary, drift_at, updated_at)
           VALUES (%s, %s, %s, %s, %s::jsonb, %s, now())
           ON CONFLICT (detector) DO UPDATE SET status = EXCLUDED.status, state = EXCLUDED.state,
               summary = EXCLUDED.summary, drift_at = EXCLUDED.drift_at, updated_at = now()""",
        (detector, kind, status, psycopg2.Binary(state) if state is not None else None, json.dumps(summary), drift_at),
    )


def _streams(rows: list[dict]) -> dict[str, list[float]]:
    """Each output detector's new values, in comparison order."""
    streams: dict[str, list[float]] = {"agreement": []}
    for row in rows:
        streams["agreement"].append(1.0 if row["agreement_level"] == "all" else 0.0)
        for model, answer in (row["per_model"] or {}).items():
            if isinstance(answer, dict) and answer.get("confidence") is not None:
                streams.setdefault(f"confidence:{model}", []).append(float(answer["confidence"]))
    return streams


def watch_drift(settings: Settings, db: Database | None = None) -> dict:
    """One run of every detector; returns each one's summary."""
    db = db or Database(settings)
    now = datetime.now(UTC)
    hold = timedelta(minutes=settings.drift_hold_minutes)
    known = db.transaction(_load_detectors)
    since = db.transaction(lambda cur: _watermark(cur, "comparisons", 0))
    rows = db.transaction(lambda cur: (cur.execute(_NEW_COMPARISONS, (since, BATCH)), cur.fetchall())[1])
    fired: list[tuple[str, dict]] = []
    results: dict[str, dict] = {}

    streams = _streams(rows)
    # A detector with nothing new this run still ages: its `drift` ends after the hold.
    for name, detector in known.items():
        if detector["kind"] == "output":
            streams.setdefault(name, [])
    for name, values in streams.items():
        previous = known.get(name)
        watch = pickle.loads(previous["state"]) if previous and previous["state"] else StreamWatch()
        found = watch.update(values)
        drift_at = now if found else (previous or {}).get("drift_at")
        summary = {
            "estimate": watch.estimate,
            "window": watch.width,
            "seen": watch.seen,
            "detections": watch.detections[-5:],
            "new_values": len(values),
        }
        status = _status(drift_at, now, hold, watch.estimate is not None)
        if found:
            fired.append((name, summary))
        results[name] = {"kind": "output", "status": status, **summary}
        state = pickle.dumps(watch)
        db.transaction(
            partial(_save, detector=name, kind="output", status=status, state=state, summary=summary, drift_at=drift_at)
        )

    results["input:pixels"] = _input_detector(settings, db, known.get("input:pixels"), now, hold, fired)
    if rows:
        db.transaction(lambda cur: _set_watermark(cur, "comparisons", rows[-1]["comparison_id"]))
    for name, result in results.items():
        DRIFT.labels(name).set(1 if result["status"] == "drift" else 0)
    for name, summary in fired:
        log_system_event(
            "drift_detected",
            "warning",
            "drift",
            f"{name}: the stream changed ({_describe(name, summary)})",
            {"detector": name, **summary},
            settings=settings,
        )
    return results


def _input_detector(
    settings: Settings, db: Database, previous: dict | None, now: datetime, hold: timedelta, fired: list
) -> dict:
    try:
        dataset, reference = reference_stats(settings, db)
    except Exception as exc:  # noqa: BLE001 - no training set in the bucket: the other detectors still run
        log.warning("no reference statistics for input drift: %s", exc)
        return {"kind": "input", "status": "warming up", "error": str(exc)}
    live = [
        r["pixel_stats"]
        for r in db.transaction(
            lambda cur: (
                cur.execute(_LIVE_STATS, (settings.drift_window_hours, settings.drift_window)),
                cur.fetchall(),
            )[1]
        )
    ]
    test = input_drift(reference, live, settings.drift_alpha)
    was_drift = bool(previous and previous["status"] == "drift")
    drift_at = now if test.drifted else (previous or {}).get("drift_at")
    summary = {
        "dataset": dataset,
        "n_reference": test.n_reference,
        "n_live": test.n_live,
        "alpha": test.alpha,
        "tests": [t.__dict__ for t in test.tests],
        "worst": test.worst.__dict__ if test.worst else None,
    }
    status = _status(drift_at, now, hold, bool(test.tests))
    if test.drifted and not was_drift:
        fired.append(("input:pixels", summary))
    db.transaction(lambda cur: _save(cur, "input:pixels", "input", status, None, summary, drift_at))
    return {"kind": "input", "status": status, **summary}


def _status(drift_at: datetime | None, now: datetime, hold: timedelta, ready: bool) -> str:
    if drift_at is not None and now - drift_at <= hold:
        return "drift"
    return "ok" if ready else "warming up"


def _describe(name: str, summary: dict) -> str:
    if name == "input:pixels" and summary.get("worst"):
        w = summary["worst"]
        return (
            f"{w['feature']} median {w['reference_median']:.3g} in training, {w['live_median']:.3g} live, "
            f"KS p = {w['p_value']:.2g} over {summary['n_live']} images"
        )
    last = (summary.get("detections") or [{}])[-1]
    before, now = last.get("mean_before"), summary.get("estimate")
    if before is None or now is None:
        return "ADWIN found a change"
    return f"mean {before:.3f} before, {now:.3f} now (ADWIN)"
