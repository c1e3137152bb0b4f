"""The aggregate function's writes. Every statement is an upsert keyed by the
natural key, or a recomputation from rows, so replaying the whole predictions
topic changes nothing."""

from __future__ import annotations

import json
from datetime import datetime

from psycopg2.extras import execute_values

from ..contracts import PredictionMessage
from .compare import Answer, Comparison, compare

WINDOW_SECONDS = 60

UPSERT_PREDICTIONS = """
INSERT INTO predictions (image_id, model_name, model_version, predicted_class, confidence, top_k, fetch_ms, decode_ms,
                         preprocess_ms, inference_ms, total_ms, backend, batch_size, worker_id, predicted_at, role)
VALUES %s
ON CONFLICT (image_id, model_name, model_version) DO UPDATE SET
    predicted_class = EXCLUDED.predicted_class, confidence = EXCLUDED.confidence, top_k = EXCLUDED.top_k,
    fetch_ms = EXCLUDED.fetch_ms, decode_ms = EXCLUDED.decode_ms, preprocess_ms = EXCLUDED.preprocess_ms,
    inference_ms = EXCLUDED.inference_ms, total_ms = EXCLUDED.total_ms, backend = EXCLUDED.backend,
    batch_size = EXCLUDED.batch_size, worker_id = EXCLUDED.worker_id, predicted_at = EXCLUDED.predicted_at,
    -- A version that answered both in shadow and as champion (just promoted) counts as champion.
    role = CASE WHEN predictions.role = 'champion' OR EXCLUDED.role = 'champion' THEN 'champion' ELSE 'shadow' END,
    updated_at = now()
"""
PREDICTION_ROW = "(%s::uuid, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def upsert_predictions(cur, messages: list[PredictionMessage]) -> None:
    """All of a batch's predictions in one statement. A key that comes twice (a
    redelivery inside the batch) is written once: a champion answer over a shadow
    one, else the later one, as two single upserts in turn would leave it."""
    rows: dict[tuple, PredictionMessage] = {}
    for m in messages:
        key = (m.image_id, m.model_name, m.model_version)
        previous = rows.get(key)
        if previous is not None and "champion" in (previous.role, m.role):
            m = m.model_copy(update={"role": "champion"})
        rows[key] = m
    values = []
    for m in rows.values():
        t = m.timings
        values.append(
            (
                m.image_id,
                m.model_name,
                m.model_version,
                m.predicted_class,
                m.confidence,
                json.dumps([s.model_dump() for s in m.top_k]),
                t.fetch_ms,
                t.decode_ms,
                t.preprocess_ms,
                t.inference_ms,
                t.total_ms,
                m.backend,
                m.batch_size,
                m.worker_id,
                m.predicted_at,
                m.role,
            )
        )
    if values:
        execute_values(cur, UPSERT_PREDICTIONS, values, template=PREDICTION_ROW, page_size=len(values))


UPSERT_INT8 = """
INSERT INTO int8_predictions (image_id, model_name, model_version, predicted_class, confidence, inference_ms, backend)
VALUES %s
ON CONFLICT (image_id, model_name, model_version) DO UPDATE SET
    predicted_class = EXCLUDED.predicted_class, confidence = EXCLUDED.confidence,
    inference_ms = EXCLUDED.inference_ms, backend = EXCLUDED.backend
"""


def upsert_int8(cur, messages: list[PredictionMessage]) -> None:
    """The int8 twin's answers (role int8), one row per (image, model, version): a
    replay, or a key twice in a batch, leaves one row (the later answer)."""
    rows = {(m.image_id, m.model_name, m.model_version): m for m in messages}
    values = [
        (m.image_id, m.model_name, m.model_version, m.predicted_class, m.confidence, m.timings.inference_ms, m.backend)
        for m in rows.values()
    ]
    if values:
        execute_values(cur, UPSERT_INT8, values, template="(%s::uuid, %s, %s, %s, %s, %s, %s)", page_size=len(values))


UPSERT_COMPARISONS = """
INSERT INTO model_comparisons (image_id, model_set, model_versions, consensus_class, consensus_confidence,
                               agreement_level, agreement_ratio, fastest_model, fastest_inference_ms,
                               ground_truth_label, per_model, consensus_correct, needs_review)
VALUES %s
ON CONFLICT (image_id, model_set) DO UPDATE SET
    model_versions = EXCLUDED.model_versions, consensus_class = EXCLUDED.consensus_class,
    consensus_confidence = EXCLUDED.consensus_confidence, agreement_level = EXCLUDED.agreement_level,
    agreement_ratio = EXCLUDED.agreement_ratio, fastest_model = EXCLUDED.fastest_model,
    fastest_inference_ms = EXCLUDED.fastest_inference_ms, ground_truth_label = EXCLUDED.ground_truth_label,
    per_model = EXCLUDED.per_model, consensus_correct = EXCLUDED.consensus_correct,
    needs_review = EXCLUDED.needs_review, updated_at = now()
"""
COMPARISON_ROW = "(%s::uuid, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"


def comparison_row(image_id: str, c: Comparison) -> tuple:
    return (
        image_id,
        c.model_set,
        json.dumps(c.model_versions),
        c.consensus_class,
        c.consensus_confidence,
        c.agreement_level,
        c.agreement_ratio,
        c.fastest_model,
        c.fastest_inference_ms,
        c.ground_truth_label,
        json.dumps(c.per_model),
        c.consensus_correct,
        c.needs_review,
    )


def upsert_comparison(cur, image_id: str, c: Comparison) -> None:
    """One image's comparison (and its review flag), as compare_complete writes them."""
    write_comparisons(cur, {image_id: c})


def write_comparisons(cur, comparisons: dict[str, Comparison]) -> None:
    """Comparisons by image id, and each image's review flag: one statement each."""
    execute_values(
        cur,
        UPSERT_COMPARISONS,
        [comparison_row(image_id, c) for image_id, c in comparisons.items()],
        template=COMPARISON_ROW,
        page_size=len(comparisons),
    )
    # Disagreements feed the labelling / retraining loop.
    execute_values(
        cur,
        """UPDATE images SET status = 'classified', needs_review = v.needs_review
                           FROM (VALUES %s) AS v(image_id, needs_review) WHERE images.image_id = v.image_id""",
        [(image_id, c.needs_review) for image_id, c in comparisons.items()],
        template="(%s::uuid, %s)",
        page_size=len(comparisons),
    )


def compare_complete(cur, image_ids: list[str], active_models: list[str]) -> dict[str, Comparison]:
    """Write the comparison of every image among `image_ids` whose active models
    have all answered (each model's latest champion answer), in a few statements
    for the whole batch; returns them by image id."""
    if not image_ids:
        return {}
    cur.execute(
        """SELECT DISTINCT ON (p.image_id, p.model_name) p.image_id::text AS image_id, p.model_name,
                  p.model_version, p.predicted_class, p.confidence, p.inference_ms, i.ground_truth_label,
                  EXISTS (SELECT 1 FROM predictions s WHERE s.image_id = p.image_id AND s.role = 'shadow') AS shadowed
           FROM predictions p JOIN images i USING (image_id)
           WHERE p.image_id = ANY(%s::uuid[]) AND p.model_name = ANY(%s) AND p.role = 'champion'
           ORDER BY p.image_id, p.model_name, p.predicted_at DESC, p.model_version DESC""",
        (list(image_ids), active_models),
    )
    by_image: dict[str, list[dict]] = {}
    for row in cur.fetchall():
        by_image.setdefault(row["image_id"], []).append(row)
    comparisons = {}
    for image_id, rows in by_image.items():
        if {r["model_name"] for r in rows} != set(active_models):
            continue  # still waiting for a model
        answers = [
            Answer(r["model_name"], r["model_version"], r["predicted_class"], r["confidence"], r["inference_ms"])
            for r in rows
        ]
        comparisons[image_id] = compare(answers, rows[0]["ground_truth_label"])
    if not comparisons:
        return {}
    write_comparisons(cur, comparisons)
    for image_id in comparisons:
        if any(r["shadowed"] for r in by_image[image_id]):
            refresh_shadow(cur, image_id)  # only images a challenger answered: most have none
    return comparisons


def refresh_shadow(cur, image_id: str) -> None:
    """Put the image's shadow answers (each challenger's latest) beside its
    comparisons' champion answers; consensus and agreement stay untouched."""
    cur.execute(
        """UPDATE model_comparisons c SET shadow = COALESCE((
               SELECT jsonb_object_agg(s.model_name, jsonb_build_object(
                   'version', s.model_version, 'class', s.predicted_class, 'confidence', s.confidence,
                   'inference_ms', s.inference_ms,
                   'correct', CASE WHEN i.ground_truth_label IS NULL THEN NULL
                                   ELSE s.predicted_class = i.ground_truth_label END))
               FROM (SELECT DISTINCT ON (model_name) * FROM predictions
                     WHERE image_id = c.image_id AND role = 'shadow'
                     ORDER BY model_name, predicted_at DESC) s
               JOIN images i USING (image_id)), '{}'::jsonb)
           WHERE c.image_id = %s""",
        (image_id,),
    )


def window_start(at: datetime) -> datetime:
    """The minute a prediction counts in (WINDOW_SECONDS is one minute)."""
    return at.replace(second=0, microsecond=0)


RECOMPUTE_WINDOW = """
INSERT INTO model_metrics (model_name, model_version, window_start, window_seconds, prediction_count,
                           mean_inference_ms, p50_inference_ms, p95_inference_ms, p99_inference_ms,
                           mean_total_ms, p50_total_ms, p95_total_ms, p99_total_ms, mean_confidence,
                           labelled_count, correct_count, accuracy, agreement_rate, updated_at)
SELECT p.model_name, p.model_version, %(start)s, %(seconds)s, count(*),
       avg(p.inference_ms),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.inference_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY p.inference_ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY p.inference_ms),
       avg(p.total_ms),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.total_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY p.total_ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY p.total_ms),
       avg(p.confidence),
       count(i.ground_truth_label),
       count(*) FILTER (WHERE p.predicted_class = i.ground_truth_label),
       (count(*) FILTER (WHERE p.predicted_class = i.ground_truth_label))::double precision
           / NULLIF(count(i.ground_truth_label), 0),
       avg(CASE WHEN c.consensus_class IS NULL THEN NULL
                WHEN c.consensus_class = p.predicted_class THEN 1.0 ELSE 0.0 END),
       now()
FROM predictions p
JOIN images i USING (image_id)
LEFT JOIN LATERAL (SELECT consensus_class FROM model_comparisons mc WHERE mc.image_id = p.image_id
                   ORDER BY mc.updated_at DESC LIMIT 1) c ON TRUE
WHERE p.model_name = %(model)s AND p.model_version = %(version)s AND p.role = 'champion'
  AND p.predicted_at >= %(start)s AND p.predicted_at < %(start)s + make_interval(secs => %(seconds)s)
GROUP BY p.model_name, p.model_version
ON CONFLICT (model_name, model_version, window_seconds, window_start) DO UPDATE SET
    prediction_count = EXCLUDED.prediction_count, mean_inference_ms = EXCLUDED.mean_inference_ms,
    p50_inference_ms = EXCLUDED.p50_inference_ms, p95_inference_ms = EXCLUDED.p95_inference_ms,
    p99_inference_ms = EXCLUDED.p99_inference_ms, mean_total_ms = EXCLUDED.mean_total_ms,
    p50_total_ms = EXCLUDED.p50_total_ms, p95_total_ms = EXCLUDED.p95_total_ms, p99_total_ms = EXCLUDED.p99_total_ms,
    mean_confidence = EXCLUDED.mean_confidence, labelled_count = EXCLUDED.labelled_count,
    correct_count = EXCLUDED.correct_count, accuracy = EXCLUDED.accuracy, agreement_rate = EXCLUDED.agreement_rate,
    updated_at = now()
"""


def recompute_window(cur, model: str, version: str, start: datetime, seconds: int = WINDOW_SECONDS) -> None:
    """One model version's metrics over [start, start + seconds), from its champion answers."""
    # Serialise recomputations of one window across replicas: the last one to run
    # sees every committed prediction, so the row converges to the truth.
    cur.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"metrics:{model}:{version}:{seconds}:{start.isoformat()}",)
    )
    cur.execute(RECOMPUTE_WINDOW, {"model": model, "version": version, "start": start, "seconds": seconds})
