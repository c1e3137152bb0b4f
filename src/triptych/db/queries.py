"""Read-side queries shared by the terminal view, the API and the dashboard."""

from __future__ import annotations

LIVE_SUMMARY = """
SELECT
    (SELECT count(*) FROM images WHERE uploaded_at > now() - make_interval(secs => %(window)s)) AS images_in,
    (SELECT count(*) FROM images WHERE status = 'quarantined'
        AND uploaded_at > now() - make_interval(secs => %(window)s)) AS quarantined,
    (SELECT count(*) FROM model_comparisons WHERE created_at > now() - make_interval(secs => %(window)s)) AS compared,
    (SELECT avg((agreement_level = 'all')::int) FROM model_comparisons
        WHERE created_at > now() - make_interval(secs => %(window)s)) AS agreement_rate,
    (SELECT avg(consensus_correct::int) FROM model_comparisons
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
       avg((p.predicted_class = i.ground_truth_label)::int) FILTER (WHERE i.ground_truth_label IS NOT NULL) AS accuracy
FROM predictions p JOIN images i USING (image_id)
WHERE p.created_at > now() - make_interval(secs => %(window)s)
GROUP BY p.model_name
ORDER BY p.model_name
"""
