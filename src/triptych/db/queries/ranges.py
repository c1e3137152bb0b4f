"""Read-side queries: the models side by side over a time range (see the package's docstring)."""

from __future__ import annotations

from datetime import datetime, timedelta

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
