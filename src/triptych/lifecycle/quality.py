"""The daily data-quality job.

1. Objects: every registered image's object is read back; one that is gone is
   reported, one that no longer decodes (or whose bytes changed) is moved to
   `quarantine/` and its image marked quarantined.
2. Integrity: images still without a comparison long after upload, comparisons
   out of step with the predictions they summarise, predictions without an image.
3. Retention: images (with their predictions and comparisons, and their objects,
   quarantined ones included; not those a person labelled), stray predictions and comparisons, and per-minute
   metric windows older than `retention_days` are deleted in small batches, each
   its own short transaction, so the pipeline never waits on a long lock. Hourly
   snapshots (the metrics job) are kept for the long ranges.
4. Figures over the last day (dead-letter rate, agreement against the week
   before); one past its threshold writes an `alert` event.

The report goes to s3://reports/data-quality/ as JSON and as a readable HTML page,
and the run's step links both.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
from datetime import UTC, datetime, timedelta

from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from ..config import Settings
from ..db.connection import Database
from ..db.events import log_system_event
from ..imaging import DecodeError, decode
from ..ingress.objects import move_to_quarantine
from ..storage import MISSING_OBJECT_CODES, minio_client, read_object
from .steps import Step

log = logging.getLogger("triptych.lifecycle")

BATCH = 500
EXAMPLES = 20


def check_objects(db: Database, s3, settings: Settings, limit: int = 100_000) -> dict:
    """Read back each registered image's object (the newest `limit`)."""
    rows = db.transaction(
        lambda cur: (
            cur.execute(
                """SELECT image_id, bucket, object_key, object_version, sha256 FROM images
           WHERE status <> 'quarantined' ORDER BY uploaded_at DESC LIMIT %s""",
                (limit,),
            ),
            cur.fetchall(),
        )[1]
    )
    missing, quarantined = [], []
    for row in rows:
        try:
            data = read_object(s3, row["bucket"], row["object_key"], row["object_version"] or None)
        except S3Error as exc:
            if exc.code in MISSING_OBJECT_CODES:
                missing.append(str(row["image_id"]))
                continue
            raise
        problem = None
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            problem = ("changed", "the object's bytes no longer match the registered sha256")
        else:
            try:
                decode(data)
            except DecodeError as exc:
                problem = ("undecodable", str(exc))
        if problem:
            quarantine(db, s3, row, *problem, settings=settings)
            quarantined.append(str(row["image_id"]))
    return {
        "checked": len(rows),
        "missing": len(missing),
        "missing_examples": missing[:EXAMPLES],
        "quarantined": len(quarantined),
        "quarantined_examples": quarantined[:EXAMPLES],
    }


def quarantine(db: Database, s3, row: dict, code: str, reason: str, settings: Settings) -> None:
    target = move_to_quarantine(s3, row["bucket"], row["object_key"], row["object_version"], code)
    db.transaction(
        lambda cur: cur.execute(
            """UPDATE images SET status = 'quarantined', quarantine_reason = %s, object_key = %s, needs_review = FALSE
           WHERE image_id = %s""",
            (f"{code}: {reason}"[:500], target, row["image_id"]),
        )
    )
    log_system_event(
        "image_quarantined",
        "warning",
        "data-quality",
        f"{row['bucket']}/{row['object_key']} moved to {target}: {code}: {reason}"[:1000],
        details={
            "bucket": row["bucket"],
            "key": row["object_key"],
            "quarantine_key": target,
            "code": code,
            "reason": reason,
        },
        image_id=str(row["image_id"]),
        dedup_key=f"dq-quarantine:{row['image_id']}",
        settings=settings,
    )


INTEGRITY = {
    "images_without_comparison": """
        SELECT i.image_id FROM images i
        WHERE i.status <> 'quarantined' AND i.uploaded_at < now() - make_interval(secs => %(timeout)s)
          AND NOT EXISTS (SELECT 1 FROM model_comparisons c WHERE c.image_id = i.image_id)
        ORDER BY i.uploaded_at DESC""",
    "comparisons_out_of_step": """
        SELECT DISTINCT c.image_id FROM model_comparisons c
        CROSS JOIN LATERAL jsonb_each(c.per_model) m
        WHERE NOT EXISTS (SELECT 1 FROM predictions p
                          WHERE p.image_id = c.image_id AND p.model_name = m.key
                            AND p.model_version = m.value->>'version' AND p.predicted_class = m.value->>'class')""",
    "predictions_without_image": """
        SELECT p.image_id FROM predictions p
        WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.image_id = p.image_id)""",
}


def integrity(db: Database, settings: Settings) -> dict:
    def check(cur):
        found = {}
        for name, sql in INTEGRITY.items():
            cur.execute(
                f"SELECT count(*) OVER () AS n, image_id FROM ({sql}) q LIMIT {EXAMPLES}",
                {"timeout": settings.comparison_timeout_s},
            )
            rows = cur.fetchall()
            found[name] = {"count": rows[0]["n"] if rows else 0, "examples": [str(r["image_id"]) for r in rows]}
        return found

    return db.transaction(check)


def _batches(db: Database, sql: str, params: dict) -> int:
    """Run a `DELETE ... LIMIT`-style statement until it deletes nothing; each batch commits."""
    total = 0
    while True:
        deleted = db.transaction(lambda cur: (cur.execute(sql, {**params, "batch": BATCH}), cur.rowcount)[1])
        total += deleted
        if deleted < BATCH:
            return total


# Old images, except those a person labelled (the review loop's work is training data to keep).
RETIRED_IMAGES = """
SELECT i.image_id, i.bucket, i.object_key, i.object_version FROM images i
WHERE i.uploaded_at < %s
  AND NOT EXISTS (SELECT 1 FROM system_events e WHERE e.event_type = 'label_set' AND e.image_id = i.image_id)
LIMIT %s
"""


def apply_retention(db: Database, s3, settings: Settings, now: datetime | None = None) -> dict:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.retention_days)
    images = objects = 0
    while True:  # objects first: a crash in between leaves rows whose object is gone, reported and retried
        rows = db.transaction(lambda cur: (cur.execute(RETIRED_IMAGES, (cutoff, BATCH)), cur.fetchall())[1])
        if not rows:
            break
        by_bucket: dict[str, list[DeleteObject]] = {}
        for r in rows:
            by_bucket.setdefault(r["bucket"], []).append(DeleteObject(r["object_key"], r["object_version"] or None))
        for bucket, keys in by_bucket.items():
            try:
                errors = list(s3.remove_objects(bucket, keys))
            except S3Error as exc:
                if exc.code != "NoSuchBucket":
                    raise
                errors = []
            for error in errors:
                log.warning("retention could not delete %s/%s: %s", bucket, error.name, error.message)
            objects += len(keys) - len(errors)
        ids = [str(r["image_id"]) for r in rows]
        images += db.transaction(
            lambda cur, ids=ids: (
                cur.execute("DELETE FROM images WHERE image_id = ANY(%s::uuid[])", (ids,)),
                cur.rowcount,
            )[1]
        )
    params = {"cutoff": cutoff}
    predictions = _batches(
        db,
        """DELETE FROM predictions WHERE prediction_id IN (
        SELECT prediction_id FROM predictions WHERE predicted_at < %(cutoff)s LIMIT %(batch)s)""",
        params,
    )
    int8 = _batches(
        db,
        """DELETE FROM int8_predictions WHERE ctid IN (
        SELECT ctid FROM int8_predictions WHERE created_at < %(cutoff)s LIMIT %(batch)s)""",
        params,
    )
    comparisons = _batches(
        db,
        """DELETE FROM model_comparisons WHERE comparison_id IN (
        SELECT comparison_id FROM model_comparisons WHERE created_at < %(cutoff)s LIMIT %(batch)s)""",
        params,
    )
    windows = _batches(
        db,
        """DELETE FROM model_metrics WHERE ctid IN (
        SELECT ctid FROM model_metrics WHERE window_seconds = 60 AND window_start < %(cutoff)s LIMIT %(batch)s)""",
        params,
    )
    return {
        "cutoff": cutoff.isoformat(),
        "images": images,
        "objects": objects,
        "predictions": predictions,
        "int8_predictions": int8,
        "comparisons": comparisons,
        "metric_windows": windows,
    }


FIGURES = """
SELECT
  (SELECT count(*) FROM images WHERE uploaded_at > now() - interval '1 day') AS images_day,
  (SELECT count(*) FROM system_events WHERE event_type = 'dead_letter'
      AND created_at > now() - interval '1 day') AS dead_letters_day,
  (SELECT avg((agreement_level = 'all')::int) FROM model_comparisons
      WHERE created_at > now() - interval '1 day') AS agreement_day,
  (SELECT avg((agreement_level = 'all')::int) FROM model_comparisons
      WHERE created_at <= now() - interval '1 day' AND created_at > now() - interval '8 days') AS agreement_week
"""


def figures_and_alerts(db: Database, settings: Settings) -> tuple[dict, list[dict]]:
    figures = db.transaction(lambda cur: (cur.execute(FIGURES), dict(cur.fetchone()))[1])
    figures = {k: float(v) if v is not None else None for k, v in figures.items()}
    alerts = []
    if figures["images_day"]:
        rate = figures["dead_letters_day"] / figures["images_day"]
        figures["dead_letter_rate"] = rate
        if rate > settings.alert_dead_letter_rate:
            alerts.append(
                {
                    "name": "dead_letter_rate",
                    "value": rate,
                    "threshold": settings.alert_dead_letter_rate,
                    "message": f"{rate:.1%} of the last day's images were dead-lettered",
                }
            )
    if figures["agreement_day"] is not None and figures["agreement_week"] is not None:
        drop = figures["agreement_week"] - figures["agreement_day"]
        if drop > settings.alert_agreement_drop:
            alerts.append(
                {
                    "name": "agreement_drop",
                    "value": drop,
                    "threshold": settings.alert_agreement_drop,
                    "message": f"the models agree on {figures['agreement_day']:.1%} of the last day's images, "
                    f"{figures['agreement_week']:.1%} the week before",
                }
            )
    return figures, alerts


def render_html(report: dict) -> str:
    def table(title: str, data: dict) -> str:
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v, default=str))}</td></tr>"
            for k, v in data.items()
        )
        return f"<h2>{html.escape(title)}</h2><table>{rows}</table>"

    alerts = "".join(f"<li>{html.escape(a['message'])}</li>" for a in report["alerts"]) or "<li>none</li>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Triptych data quality {report["date"]}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}}
table{{border-collapse:collapse;width:100%}}th,td{{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;
vertical-align:top}}th{{width:16rem;color:#555;font-weight:600}}td{{font-family:ui-monospace,monospace;font-size:.85rem;
word-break:break-all}}</style></head><body><h1>Data quality, {report["date"]}</h1>
<h2>Alerts</h2><ul>{alerts}</ul>{table("Objects", report["objects"])}
{"".join(table(f"Integrity: {k.replace('_', ' ')}", v) for k, v in report["integrity"].items())}
{table("Retention", report["retention"])}{table("Last day", report["figures"])}</body></html>"""


def write_report(s3, settings: Settings, report: dict, name: str) -> dict:
    keys = {}
    for ext, body, ctype in (
        ("json", json.dumps(report, indent=2, default=str), "application/json"),
        ("html", render_html(report), "text/html; charset=utf-8"),
    ):
        data = body.encode()
        key = f"data-quality/{name}.{ext}"
        s3.put_object(settings.reports_bucket, key, io.BytesIO(data), len(data), content_type=ctype)
        keys[f"report_{ext}"] = f"s3://{settings.reports_bucket}/{key}"
    return keys


def run_data_quality(settings: Settings, run_id: str | None = None, db: Database | None = None) -> dict:
    db = db or Database(settings)
    s3 = minio_client(settings)
    now = datetime.now(UTC)
    with Step(db, run_id, "data-quality") as step:
        report = {
            "date": now.strftime("%Y-%m-%d %H:%M UTC"),
            "run_id": run_id,
            "objects": check_objects(db, s3, settings),
            "integrity": integrity(db, settings),
            "retention": apply_retention(db, s3, settings, now),
        }
        report["figures"], report["alerts"] = figures_and_alerts(db, settings)
        for alert in report["alerts"]:
            log_system_event(
                "alert",
                "warning",
                "data-quality",
                alert["message"],
                details=alert,
                dedup_key=f"dq-alert:{alert['name']}:{now:%Y-%m-%d}",
                settings=settings,
            )
        links = write_report(s3, settings, report, f"{now:%Y%m%dT%H%M%S}-{(run_id or 'adhoc')[:8]}")
        summary = {
            **links,
            "checked": report["objects"]["checked"],
            "quarantined": report["objects"]["quarantined"],
            "missing_objects": report["objects"]["missing"],
            **{k: v["count"] for k, v in report["integrity"].items()},
            "deleted_images": report["retention"]["images"],
            "alerts": len(report["alerts"]),
        }
        step.done(summary)
    return summary
