"""Read-side queries: the live view (`triptych watch`, the dashboard's Live page) (see the package's docstring)."""

from __future__ import annotations

# --- the live view (`triptych watch`, the dashboard's Live page) ---------------

LIVE_SUMMARY = """
SELECT
    (SELECT count(*) FROM images WHERE uploaded_at > now() - make_interval(secs => %(window)s)) AS images_in,
    (SELECT count(*) FROM images WHERE status = 'quarantined'
        AND uploaded_at > now() - make_interval(secs => %(window)s)) AS quarantined,
    (SELECT count(*) FROM model_comparisons WHERE created_at > now() - make_interval(secs => %(window)s)) AS compared,
    (SELECT avg((agreement_level = 'all')::int)::float8 FROM model_comparisons
        WHERE created_at > now() - make_interval(secs => %(window)s)) AS agreement_rate,
    (SELECT avg(consensus_correct::int)::float8 FROM model_comparisons
        WHERE created_at > now() - make_interval(secs => %(window)s) AND consensus_correct IS NOT NULL)
        AS consensus_accuracy,
    (SELECT count(*) FROM system_events WHERE event_type = 'dead_letter'
        AND created_at > now() - make_interval(secs => %(window)s)) AS dead_letters
"""

PER_MODEL = """
SELECT p.model_name,
       string_agg(DISTINCT p.model_version, ',') AS versions,
       count(*) AS predictions,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.inference_ms) AS p50_inference_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY p.inference_ms) AS p95_inference_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.total_ms) AS p50_total_ms,
       avg(p.confidence) AS mean_confidence,
       (avg((p.predicted_class = i.ground_truth_label)::int)
           FILTER (WHERE i.ground_truth_label IS NOT NULL))::float8 AS accuracy
FROM predictions p JOIN images i USING (image_id)
WHERE p.created_at > now() - make_interval(secs => %(window)s) AND p.role = 'champion'
GROUP BY p.model_name
ORDER BY p.model_name
"""


def live_summary(cur, window_s: int) -> dict:
    """Counts over the last `window_s` seconds, with throughput in compared images/s."""
    cur.execute(LIVE_SUMMARY, {"window": window_s})
    row = dict(cur.fetchone())
    row["throughput"] = row["compared"] / window_s
    return row


def per_model(cur, window_s: int) -> list[dict]:
    cur.execute(PER_MODEL, {"window": window_s})
    return [dict(r) for r in cur.fetchall()]


def recent_comparisons(cur, limit: int = 12) -> list[dict]:
    """The stream as it happens: the newest compared images with every model's answer."""
    cur.execute(
        """SELECT c.image_id, c.created_at AS compared_at, c.consensus_class, c.consensus_confidence,
                  c.agreement_level, c.consensus_correct, c.per_model, i.filename, i.source, i.ground_truth_label
           FROM model_comparisons c JOIN images i USING (image_id)
           ORDER BY c.created_at DESC LIMIT %s""",
        (limit,),
    )
    return [dict(r) for r in cur.fetchall()]
