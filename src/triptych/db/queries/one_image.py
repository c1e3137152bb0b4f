"""Read-side queries: one image (see the package's docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .shared import LATEST_COMPARISON

# --- one image ------------------------------------------------------------------


def answers_for(cur, image_ids: list[str]) -> dict[str, dict]:
    """For a handful of images (an upload): each model's newest answer so far, and
    the comparison once every model has answered. {image_id: {"answers", "comparison", "status"}}"""
    if not image_ids:
        return {}
    cur.execute(
        """SELECT i.image_id, i.status, i.quarantine_reason, c.consensus_class, c.agreement_level, c.consensus_correct,
                  c.per_model, c.compared_at
           FROM images i """
        + LATEST_COMPARISON
        + """ WHERE i.image_id = ANY(%s::uuid[])""",
        (image_ids,),
    )
    result = {
        str(r["image_id"]): {
            "status": r["status"],
            "quarantine_reason": r["quarantine_reason"],
            "comparison": dict(r) if r["compared_at"] else None,
            "answers": {},
        }
        for r in cur.fetchall()
    }
    cur.execute(
        """SELECT DISTINCT ON (image_id, model_name) image_id, model_name, model_version, predicted_class, confidence,
                  inference_ms
           FROM predictions WHERE image_id = ANY(%s::uuid[]) AND role = 'champion'
           ORDER BY image_id, model_name, predicted_at DESC""",
        (image_ids,),
    )
    for r in cur.fetchall():
        entry = result.get(str(r["image_id"]))
        if entry is not None:
            entry["answers"][r["model_name"]] = {
                "class": r["predicted_class"],
                "confidence": r["confidence"],
                "version": r["model_version"],
                "inference_ms": r["inference_ms"],
            }
    return result


def image_detail(cur, image_id: str) -> dict | None:
    """The image row, every prediction (newest model version first), its latest
    comparison, and its neighbours in upload order; None for an unknown id."""
    cur.execute("SELECT * FROM images WHERE image_id = %s", (image_id,))
    image = cur.fetchone()
    if image is None:
        return None
    cur.execute(
        """SELECT model_name, model_version, predicted_class, confidence, top_k, fetch_ms, decode_ms, preprocess_ms,
                  inference_ms, total_ms, backend, batch_size, worker_id, predicted_at, role
           FROM predictions WHERE image_id = %s ORDER BY model_name, predicted_at DESC""",
        (image_id,),
    )
    predictions = [dict(r) for r in cur.fetchall()]
    comparison = latest_comparison(cur, image_id)
    key = (image["uploaded_at"], image["image_id"])
    cur.execute(
        """SELECT image_id FROM images WHERE (uploaded_at, image_id) < (%s, %s)
                   ORDER BY uploaded_at DESC, image_id DESC LIMIT 1""",
        key,
    )
    older = cur.fetchone()
    cur.execute(
        """SELECT image_id FROM images WHERE (uploaded_at, image_id) > (%s, %s)
                   ORDER BY uploaded_at, image_id LIMIT 1""",
        key,
    )
    newer = cur.fetchone()
    return {
        "image": dict(image),
        "predictions": predictions,
        "comparison": comparison,
        "older_id": str(older["image_id"]) if older else None,
        "newer_id": str(newer["image_id"]) if newer else None,
    }


def champion_answer(cur, image_id: str, model_name: str) -> dict | None:
    """A model's newest champion answer to an image (version and class), or None."""
    cur.execute(
        """SELECT model_version, predicted_class, confidence FROM predictions
                   WHERE image_id = %s AND model_name = %s AND role = 'champion'
                   ORDER BY predicted_at DESC LIMIT 1""",
        (image_id, model_name),
    )
    row = cur.fetchone()
    return dict(row) if row else None


def image_location(cur, image_id: str) -> dict | None:
    """Where an image's bytes are (bucket, key, version), for the media route."""
    cur.execute("SELECT bucket, object_key, object_version, content_type FROM images WHERE image_id = %s", (image_id,))
    row = cur.fetchone()
    return dict(row) if row else None


@dataclass
class PredictionFilter:
    """What the API's prediction list filters by (every bound optional)."""

    model: str | None = None
    predicted_class: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def recent_predictions(
    cur, f: PredictionFilter, limit: int = 100, after: tuple[datetime, int] | None = None
) -> list[dict]:
    """The newest predictions, every model's separately (newest first, keyset by
    (created_at, prediction_id)); served by the created_at indexes."""
    cur.execute(
        """SELECT p.prediction_id, p.image_id, p.model_name, p.model_version, p.predicted_class, p.confidence,
                  p.inference_ms, p.total_ms, p.backend, p.batch_size, p.created_at, p.role, i.filename, i.source,
                  i.ground_truth_label
           FROM predictions p JOIN images i USING (image_id)
           WHERE (%(model)s::text IS NULL OR p.model_name = %(model)s)
             AND (%(cls)s::text IS NULL OR p.predicted_class = %(cls)s)
             AND (%(source)s::text IS NULL OR i.source = %(source)s)
             AND (%(since)s::timestamptz IS NULL OR p.created_at >= %(since)s)
             AND (%(until)s::timestamptz IS NULL OR p.created_at < %(until)s)
             AND (%(at)s::timestamptz IS NULL OR (p.created_at, p.prediction_id) < (%(at)s, %(id)s))
           ORDER BY p.created_at DESC, p.prediction_id DESC LIMIT %(limit)s""",
        {
            "model": f.model,
            "cls": f.predicted_class,
            "source": f.source,
            "since": f.since,
            "until": f.until,
            "at": after and after[0],
            "id": after and after[1],
            "limit": limit,
        },
    )
    return [dict(r) for r in cur.fetchall()]


def images_by_id(cur, image_ids: list[str]) -> dict[str, dict]:
    """A handful of images with their latest comparison (its columns null while pending)."""
    cur.execute(
        f"""SELECT i.image_id, i.filename, i.uploaded_at, i.status, i.ground_truth_label, c.*
                    FROM images i {LATEST_COMPARISON} WHERE i.image_id = ANY(%s::uuid[])""",
        (image_ids,),
    )
    return {str(r["image_id"]): dict(r) for r in cur.fetchall()}


def predictions_for(cur, image_ids: list[str]) -> dict[str, list[dict]]:
    """Every prediction of a page of images in one query: {image_id: [rows, by model]}."""
    result: dict[str, list[dict]] = {i: [] for i in image_ids}
    if image_ids:
        cur.execute(
            """SELECT prediction_id, image_id, model_name, model_version, predicted_class, confidence,
                              inference_ms, created_at
                       FROM predictions WHERE image_id = ANY(%s::uuid[]) ORDER BY image_id, model_name, created_at""",
            (image_ids,),
        )
        for r in cur.fetchall():
            result[str(r["image_id"])].append(dict(r))
    return result


def latest_comparison(cur, image_id: str) -> dict | None:
    """An image's newest comparison (the one its current model set produced)."""
    cur.execute(
        """SELECT image_id, model_set, model_versions, consensus_class, consensus_confidence, agreement_level,
                  agreement_ratio, fastest_model, fastest_inference_ms, ground_truth_label, per_model,
                  consensus_correct, needs_review, created_at, updated_at, shadow
           FROM model_comparisons WHERE image_id = %s ORDER BY updated_at DESC LIMIT 1""",
        (image_id,),
    )
    row = cur.fetchone()
    return dict(row) if row else None


def performance_series(cur, start: datetime, end: datetime, model: str | None = None, limit: int = 5000) -> list[dict]:
    """The per-minute `model_metrics` rows of a range (oldest first): counts,
    latency percentiles, confidence and accuracy of each model version."""
    cur.execute(
        """SELECT model_name, model_version, window_start, window_seconds, prediction_count, mean_inference_ms,
                  p50_inference_ms, p95_inference_ms, p99_inference_ms, p95_total_ms, mean_confidence,
                  labelled_count, correct_count, accuracy, agreement_rate
           FROM model_metrics WHERE window_seconds = 60 AND window_start >= %s AND window_start < %s
             AND (%s::text IS NULL OR model_name = %s)
           ORDER BY window_start, model_name, model_version LIMIT %s""",
        (start, end, model, model, limit),
    )
    return [dict(r) for r in cur.fetchall()]
