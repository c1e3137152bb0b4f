"""Read-side queries shared by the terminal view, the dashboard and the API.

Every query is bounded: by a time range on an indexed timestamp, by a LIMIT on an
index order, or by a partial index (the review queue). None scans a whole table on
a refresh; `bench/dashboard_queries.py` times them on 100,000 images.

Functions take a cursor (a RealDictCursor, see `Database.transaction`) and return
plain dicts and lists, so callers decide how to show them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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


# The newest comparison of an image: an image compared again by a newer model set
# shows its latest answers.
_LATEST_COMPARISON = """
LEFT JOIN LATERAL (
    SELECT mc.consensus_class, mc.consensus_confidence, mc.agreement_level, mc.consensus_correct, mc.per_model,
           mc.fastest_model, mc.created_at AS compared_at
    FROM model_comparisons mc WHERE mc.image_id = i.image_id ORDER BY mc.updated_at DESC LIMIT 1
) c ON TRUE
"""


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
        + _LATEST_COMPARISON
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
                    FROM images i {_LATEST_COMPARISON} WHERE i.image_id = ANY(%s::uuid[])""",
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


# --- the models side by side over a time range ---------------------------------
#
# Over a wide range these read a bounded sample: the newest SAMPLE_ANSWERS
# predictions or SAMPLE_IMAGES comparisons in the range, so a day or a month costs
# what a busy hour does. `range_counts` says how much the range holds, so a page can
# say when it shows a sample. Throughput reads the per-minute rows, never a sample.

SAMPLE_IMAGES = 10_000
SAMPLE_ANSWERS = 30_000

_NEWEST_ANSWERS = """
WITH p AS (SELECT model_name, inference_ms, confidence FROM predictions
           WHERE created_at >= %(start)s AND created_at < %(end)s AND role = 'champion'
           ORDER BY created_at DESC LIMIT %(cap)s)
"""

_NEWEST_COMPARISONS = """
WITH c AS (SELECT per_model, consensus_class, ground_truth_label FROM model_comparisons
           WHERE created_at >= %(start)s AND created_at < %(end)s ORDER BY created_at DESC LIMIT %(cap)s)
"""


def range_counts(cur, start: datetime, end: datetime) -> dict:
    """How many predictions and compared images a range holds, counted up to one
    past the sample sizes (enough to say whether a page shows a sample)."""
    cur.execute(
        """SELECT (SELECT count(*) FROM (SELECT 1 FROM predictions WHERE created_at >= %(start)s
                                         AND created_at < %(end)s LIMIT %(answers)s) a) AS answers,
                  (SELECT count(*) FROM (SELECT 1 FROM model_comparisons WHERE created_at >= %(start)s
                                         AND created_at < %(end)s LIMIT %(images)s) i) AS images""",
        {"start": start, "end": end, "answers": SAMPLE_ANSWERS + 1, "images": SAMPLE_IMAGES + 1},
    )
    return dict(cur.fetchone())


def latency_distribution(cur, start: datetime, end: datetime, bins: int = 40, cap: int = SAMPLE_ANSWERS) -> dict:
    """Per model: count, mean, p50/p95/p99 of inference time, and a histogram on
    shared bin edges (0 to 1.05 x the largest p99; the last bin holds everything
    above) so the models' shapes compare at a glance. Over the newest `cap` answers."""
    params = {"start": start, "end": end, "cap": cap, "bins": bins}
    cur.execute(
        _NEWEST_ANSWERS
        + """
        SELECT model_name, count(*) AS n, avg(inference_ms) AS mean_ms,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY inference_ms) AS pct
        FROM p GROUP BY model_name ORDER BY model_name""",
        params,
    )
    summary = {
        r["model_name"]: {
            "n": r["n"],
            "mean_ms": r["mean_ms"],
            "p50_ms": r["pct"][0],
            "p95_ms": r["pct"][1],
            "p99_ms": r["pct"][2],
        }
        for r in cur.fetchall()
    }
    if not summary:
        return {"summary": {}, "edges": [], "counts": {}}
    params["top"] = top = max(max(s["p99_ms"] for s in summary.values()) * 1.05, 1e-3)
    cur.execute(
        _NEWEST_ANSWERS
        + """
        SELECT model_name, least(width_bucket(inference_ms, 0, %(top)s, %(bins)s), %(bins)s) AS bucket, count(*) AS n
        FROM p GROUP BY 1, 2""",
        params,
    )
    counts = {m: [0] * bins for m in summary}
    for r in cur.fetchall():
        counts[r["model_name"]][max(r["bucket"], 1) - 1] += r["n"]
    return {"summary": summary, "edges": [top * k / bins for k in range(bins + 1)], "counts": counts}


def confidence_distribution(
    cur, start: datetime, end: datetime, bins: int = 20, cap: int = SAMPLE_ANSWERS
) -> dict[str, list[int]]:
    """Per model, how many of the newest `cap` answers fell in each confidence bin of [0, 1]."""
    cur.execute(
        _NEWEST_ANSWERS
        + """
        SELECT model_name, least(width_bucket(confidence, 0, 1, %(bins)s), %(bins)s) AS bucket, count(*) AS n
        FROM p GROUP BY 1, 2""",
        {"start": start, "end": end, "cap": cap, "bins": bins},
    )
    counts: dict[str, list[int]] = {}
    for r in cur.fetchall():
        counts.setdefault(r["model_name"], [0] * bins)[max(r["bucket"], 1) - 1] += r["n"]
    return dict(sorted(counts.items()))


def series_step(start: datetime, end: datetime, points: int = 240) -> timedelta:
    """A whole number of minutes that gives at most about `points` points."""
    minutes = max(1, int((end - start).total_seconds() // 60 // points) + 1)
    return timedelta(minutes=minutes)


def throughput_series(cur, start: datetime, end: datetime) -> dict:
    """Predictions per second for each model over time, from the per-minute
    `model_metrics` rows the aggregate function keeps (a few rows per minute
    instead of every prediction)."""
    step = series_step(start, end)
    # Steps of an hour or more read an hour's snapshot (the metrics job's, kept past
    # retention) where one exists, else that hour's minute windows: never both.
    cur.execute(
        """SELECT model_name, date_bin(%(step)s, window_start, TIMESTAMPTZ '2000-01-01') AS t,
                  sum(prediction_count) AS n, avg(p95_inference_ms) AS p95_ms
           FROM model_metrics m
           WHERE window_start >= %(start)s AND window_start < %(end)s
             AND ((window_seconds = 3600 AND %(hourly)s)
                  OR (window_seconds = 60 AND NOT (%(hourly)s AND EXISTS (
                      SELECT 1 FROM model_metrics h WHERE h.model_name = m.model_name
                         AND h.model_version = m.model_version AND h.window_seconds = 3600
                         AND h.window_start = date_trunc('hour', m.window_start)))))
           GROUP BY 1, 2 ORDER BY 2""",
        {"step": step, "start": start, "end": end, "hourly": step >= timedelta(hours=1)},
    )
    series: dict[str, dict[str, list]] = {}
    for r in cur.fetchall():
        s = series.setdefault(r["model_name"], {"t": [], "per_s": [], "p95_ms": []})
        s["t"].append(r["t"])
        s["per_s"].append(r["n"] / step.total_seconds())
        s["p95_ms"].append(r["p95_ms"])
    return {"step_s": step.total_seconds(), "series": dict(sorted(series.items()))}


def agreement_matrix(cur, start: datetime, end: datetime, models: list[str], cap: int = SAMPLE_IMAGES) -> dict:
    """For each pair of models, the share of compared images (the newest `cap`)
    where both gave the same class, with how many images that took. The diagonal
    is 1 by definition."""
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
    if not pairs:
        return {"models": models, "rate": {}, "n": {}}
    params: dict = {"start": start, "end": end, "cap": cap}
    columns = []
    for k, (a, b) in enumerate(pairs):
        params[f"a{k}"], params[f"b{k}"] = a, b
        columns.append(
            f"count(*) FILTER (WHERE per_model ? %(a{k})s AND per_model ? %(b{k})s) AS n{k}, "
            f"count(*) FILTER (WHERE per_model->%(a{k})s->>'class' = per_model->%(b{k})s->>'class') "
            f"AS same{k}"
        )
    cur.execute(_NEWEST_COMPARISONS + f"SELECT {', '.join(columns)} FROM c", params)
    row = cur.fetchone()
    rate, n = {}, {}
    for k, (a, b) in enumerate(pairs):
        n[(a, b)] = n[(b, a)] = row[f"n{k}"]
        rate[(a, b)] = rate[(b, a)] = row[f"same{k}"] / row[f"n{k}"] if row[f"n{k}"] else None
    return {"models": models, "rate": rate, "n": n}


def calibration_bins(
    cur, start: datetime, end: datetime, bins: int = 10, cap: int = SAMPLE_ANSWERS
) -> dict[str, dict[str, list]]:
    """Per model, over its newest `cap` champion answers to labelled images in the
    range: per confidence bin k ([k/bins, (k+1)/bins), 1.0 in the last), the
    answers, their summed confidence and how many were right."""
    cur.execute(
        """WITH p AS (SELECT p.model_name, p.confidence, (p.predicted_class = i.ground_truth_label) AS correct
                      FROM predictions p JOIN images i USING (image_id)
                      WHERE p.created_at >= %(start)s AND p.created_at < %(end)s AND p.role = 'champion'
                        AND i.ground_truth_label IS NOT NULL
                      ORDER BY p.created_at DESC LIMIT %(cap)s)
           SELECT model_name, least(width_bucket(confidence, 0, 1, %(bins)s), %(bins)s) - 1 AS bin, count(*) AS n,
                  sum(confidence) AS confidence_sum, sum(correct::int) AS correct_sum
           FROM p GROUP BY 1, 2""",
        {"start": start, "end": end, "bins": bins, "cap": cap},
    )
    result: dict[str, dict[str, list]] = {}
    for r in cur.fetchall():
        model = result.setdefault(
            r["model_name"], {"counts": [0] * bins, "confidence_sums": [0.0] * bins, "correct_sums": [0] * bins}
        )
        model["counts"][r["bin"]] = r["n"]
        model["confidence_sums"][r["bin"]] = r["confidence_sum"]
        model["correct_sums"][r["bin"]] = r["correct_sum"]
    return dict(sorted(result.items()))


def correctness_patterns(
    cur, start: datetime, end: datetime, models: list[str], cap: int = SAMPLE_IMAGES
) -> dict[tuple[bool, ...], int]:
    """Over the labelled images among the newest `cap` compared in the range that
    every one of `models` answered: how many had each right/wrong pattern (one
    flag per model, in order). Paired significance needs nothing else."""
    if not models:
        return {}
    params: dict = {"start": start, "end": end, "cap": cap, "models": list(models)}
    flags = []
    for k, model in enumerate(models):
        params[f"m{k}"] = model
        flags.append(f"coalesce((per_model->%(m{k})s->>'correct')::boolean, FALSE) AS r{k}")
    columns = ", ".join(f"r{k}" for k in range(len(models)))
    cur.execute(
        _NEWEST_COMPARISONS
        + f"""
        SELECT {columns}, count(*) AS n FROM (
            SELECT {", ".join(flags)} FROM c
            WHERE ground_truth_label IS NOT NULL AND per_model ?& %(models)s::text[]) AS labelled
        GROUP BY {columns}""",
        params,
    )
    return {tuple(bool(r[f"r{k}"]) for k in range(len(models))): r["n"] for r in cur.fetchall()}


def confusion_counts(
    cur, start: datetime, end: datetime, cap: int = SAMPLE_IMAGES
) -> dict[str, dict[tuple[str, str], int]]:
    """Per model, {(true label, predicted class): images} over the labelled ones of
    the newest `cap` compared images. Accuracy per class is its diagonal over its row."""
    cur.execute(
        _NEWEST_COMPARISONS
        + """
        SELECT m.key AS model_name, c.ground_truth_label AS truth, m.value->>'class' AS predicted, count(*) AS n
        FROM c CROSS JOIN LATERAL jsonb_each(c.per_model) m
        WHERE c.ground_truth_label IS NOT NULL
        GROUP BY 1, 2, 3""",
        {"start": start, "end": end, "cap": cap},
    )
    result: dict[str, dict[tuple[str, str], int]] = {}
    for r in cur.fetchall():
        result.setdefault(r["model_name"], {})[(r["truth"], r["predicted"])] = r["n"]
    return dict(sorted(result.items()))


def version_comparison(cur, start: datetime, end: datetime, cap: int = SAMPLE_IMAGES) -> list[dict]:
    """Each model version that answered among the newest `cap` compared images:
    volume, p50 and p95 inference time, agreement with the consensus and accuracy; two
    versions of one model side by side are champion and challenger."""
    cur.execute(
        _NEWEST_COMPARISONS
        + """
        SELECT m.key AS model_name, m.value->>'version' AS model_version, count(*) AS compared,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY (m.value->>'inference_ms')::double precision)
                   AS p50_inference_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY (m.value->>'inference_ms')::double precision)
                   AS p95_inference_ms,
               avg(((m.value->>'class') = c.consensus_class)::int)::float8 AS agrees_with_consensus,
               avg((m.value->>'correct')::boolean::int)::float8 AS accuracy,
               count(m.value->>'correct') AS labelled
        FROM c CROSS JOIN LATERAL jsonb_each(c.per_model) m
        GROUP BY 1, 2 ORDER BY 1, 2""",
        {"start": start, "end": end, "cap": cap},
    )
    return [dict(r) for r in cur.fetchall()]


def int8_beside_fp32(cur, start: datetime, end: datetime, cap: int = SAMPLE_IMAGES) -> list[dict]:
    """Per model version, over the newest `cap` int8 twin answers in the range that
    the same version answered in fp32 too: how often the two agree on the top class,
    each one's p50 forward time, and on the labelled images each one's right/wrong
    pattern (both, fp32 only, int8 only), all paired significance needs."""
    cur.execute(
        """WITH q AS (SELECT image_id, model_name, model_version, predicted_class, inference_ms FROM int8_predictions
                      WHERE created_at >= %(start)s AND created_at < %(end)s
                      ORDER BY created_at DESC LIMIT %(cap)s),
                pairs AS (SELECT q.model_name, q.model_version, i.ground_truth_label AS truth,
                                 p.predicted_class AS fp32_class, q.predicted_class AS int8_class,
                                 p.inference_ms AS fp32_ms, q.inference_ms AS int8_ms
                          FROM q JOIN predictions p USING (image_id, model_name, model_version)
                          JOIN images i USING (image_id))
           SELECT model_name, model_version, count(*) AS answered,
                  avg((fp32_class = int8_class)::int)::float8 AS agreement,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY fp32_ms) AS fp32_p50_ms,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY int8_ms) AS int8_p50_ms,
                  count(truth) AS labelled,
                  count(*) FILTER (WHERE fp32_class = truth AND int8_class = truth) AS both_right,
                  count(*) FILTER (WHERE fp32_class = truth AND int8_class <> truth) AS fp32_only,
                  count(*) FILTER (WHERE int8_class = truth AND fp32_class <> truth) AS int8_only
           FROM pairs GROUP BY 1, 2 ORDER BY 1, 2""",
        {"start": start, "end": end, "cap": cap},
    )
    return [dict(r) for r in cur.fetchall()]


# --- history --------------------------------------------------------------------

AGREEMENT_LEVELS = ("all", "majority", "none")


@dataclass
class HistoryFilter:
    """What the History page (and the API's list endpoints) filter images by.
    `model` narrows `predicted_class` and `correct` to that model's answer; without
    it they apply to the consensus."""

    start: datetime
    end: datetime
    model: str | None = None
    predicted_class: str | None = None
    agreement: str | None = None  # all | majority | none | pending | quarantined
    correct: bool | None = None
    source: str | None = None
    search: str | None = None  # part of the filename, or the start of an image id
    params: dict = field(default_factory=dict, init=False, repr=False)

    def where(self) -> str:
        p = self.params = {"start": self.start, "end": self.end}
        clauses = ["i.uploaded_at >= %(start)s", "i.uploaded_at < %(end)s"]
        if self.source:
            clauses.append("i.source = %(source)s")
            p["source"] = self.source
        if self.search:
            escaped = self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            p["search"] = f"%{escaped}%"  # served by the trigram index on filename
            id_range = uuid_prefix_range(self.search)
            if id_range:  # the start of an image id: a range of the primary key
                p["id_low"], p["id_high"] = id_range
                clauses.append("(i.filename ILIKE %(search)s OR i.image_id BETWEEN %(id_low)s AND %(id_high)s)")
            else:
                clauses.append("i.filename ILIKE %(search)s")
        if self.agreement in AGREEMENT_LEVELS:
            clauses.append("c.agreement_level = %(agreement)s")
            p["agreement"] = self.agreement
        elif self.agreement == "pending":
            clauses.append("c.agreement_level IS NULL AND i.status <> 'quarantined'")
        elif self.agreement == "quarantined":
            clauses.append("i.status = 'quarantined'")
        elif self.agreement:
            raise ValueError(f"unknown agreement filter {self.agreement!r}")
        if self.model:
            p["model"] = self.model
        if self.predicted_class:
            p["cls"] = self.predicted_class
            clauses.append(
                "c.per_model->%(model)s->>'class' = %(cls)s" if self.model else "c.consensus_class = %(cls)s"
            )
        if self.correct is not None:
            p["correct"] = self.correct
            clauses.append(
                "(c.per_model->%(model)s->>'correct')::boolean = %(correct)s"
                if self.model
                else "c.consensus_correct = %(correct)s"
            )
        elif self.model and not self.predicted_class:
            clauses.append("c.per_model ? %(model)s")
        return " AND ".join(clauses)


def uuid_prefix_range(text: str) -> tuple[str, str] | None:
    """The ids that start with `text` as (lowest, highest), when `text` can begin an
    image id (4 or more hex digits, dashes where a UUID has them); else None."""
    digits = text.strip().lower().replace("-", "")
    if not 4 <= len(digits) <= 32 or any(ch not in "0123456789abcdef" for ch in digits):
        return None
    return (str(uuid.UUID(digits.ljust(32, "0"))), str(uuid.UUID(digits.ljust(32, "f"))))


_HISTORY_FROM = f"FROM images i {_LATEST_COMPARISON}"


# A position in a newest-first list: (timestamp, id) of the last row a page showed.
# The next page starts strictly after it, so rows arriving meanwhile never shift pages.
Keyset = tuple[datetime, str]


def history_rows(cur, f: HistoryFilter, offset: int = 0, limit: int = 50, after: Keyset | None = None) -> list[dict]:
    """One page of images (newest first) with their latest comparison: by offset
    (the dashboard's pages) or after a keyset (the API's cursors)."""
    where = f.where()
    if after is not None:
        where += " AND (i.uploaded_at, i.image_id) < (%(after_at)s, %(after_id)s)"
    cur.execute(
        f"""SELECT i.image_id, i.uploaded_at, i.filename, i.source, i.status, i.ground_truth_label,
                   i.quarantine_reason, c.consensus_class, c.consensus_confidence, c.agreement_level,
                   c.consensus_correct, c.per_model
            {_HISTORY_FROM} WHERE {where}
            ORDER BY i.uploaded_at DESC, i.image_id DESC OFFSET %(offset)s LIMIT %(limit)s""",
        {**f.params, "offset": offset, "limit": limit, "after_at": after and after[0], "after_id": after and after[1]},
    )
    return [dict(r) for r in cur.fetchall()]


def history_count(cur, f: HistoryFilter, cap: int = 10_000, budget_ms: int = 150) -> tuple[int | None, bool]:
    """How many images match, counted up to `cap`; the flag says the count stopped
    at the cap. A rare filter over a long range must look at every image in it, so
    the count gets `budget_ms` and answers None when it needs longer (the page then
    pages on without a total)."""
    import psycopg2.errors

    where = f.where()
    cur.execute("SAVEPOINT history_count")
    cur.execute("SET LOCAL statement_timeout = %s", (budget_ms,))
    try:
        cur.execute(
            f"SELECT count(*) AS n FROM (SELECT 1 {_HISTORY_FROM} WHERE {where} LIMIT %(cap)s) s",
            {**f.params, "cap": cap + 1},
        )
        n = cur.fetchone()["n"]
    except psycopg2.errors.QueryCanceled:
        n = None
    finally:
        # Whatever happened, the caller's transaction gets its own timeout back.
        cur.execute("ROLLBACK TO SAVEPOINT history_count")
    return (None, False) if n is None else (min(n, cap), n > cap)


# --- the review queue ------------------------------------------------------------


def review_queue(cur, limit: int = 50, after: Keyset | None = None) -> tuple[list[dict], int]:
    """Images the models disagree on (newest first), and how many wait in all."""
    cur.execute(
        f"""SELECT i.image_id, i.uploaded_at, i.filename, i.source, i.ground_truth_label, c.consensus_class,
                   c.agreement_level, c.per_model
            FROM images i {_LATEST_COMPARISON}
            WHERE i.needs_review AND (%(at)s::timestamptz IS NULL OR (i.uploaded_at, i.image_id) < (%(at)s, %(id)s::uuid))
            ORDER BY i.uploaded_at DESC, i.image_id DESC LIMIT %(limit)s""",
        {"limit": limit, "at": after and after[0], "id": after and after[1]},
    )
    rows = [dict(r) for r in cur.fetchall()]
    cur.execute("SELECT count(*) AS n FROM images WHERE needs_review")
    return rows, cur.fetchone()["n"]


def quarantined(cur, limit: int = 50, after: Keyset | None = None) -> tuple[list[dict], int]:
    """Objects ingest refused, with their reason (newest first), and how many in all."""
    cur.execute(
        """SELECT image_id, uploaded_at, filename, source, size_bytes, quarantine_reason, object_key
           FROM images WHERE status = 'quarantined'
             AND (%(at)s::timestamptz IS NULL OR (uploaded_at, image_id) < (%(at)s, %(id)s::uuid))
           ORDER BY uploaded_at DESC, image_id DESC LIMIT %(limit)s""",
        {"limit": limit, "at": after and after[0], "id": after and after[1]},
    )
    rows = [dict(r) for r in cur.fetchall()]
    cur.execute("SELECT count(*) AS n FROM images WHERE status = 'quarantined'")
    return rows, cur.fetchone()["n"]


def recent_classes(cur, sample: int = 5000) -> set[str]:
    """Classes the models answered lately: the label choices when the registry is away."""
    cur.execute(
        "SELECT DISTINCT predicted_class FROM (SELECT predicted_class FROM predictions "
        "ORDER BY created_at DESC LIMIT %s) s",
        (sample,),
    )
    return {r["predicted_class"] for r in cur.fetchall()}


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
