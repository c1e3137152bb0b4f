"""Reading Prometheus for the pages: rates and percentiles over time come from its
histograms and gauges (what the functions export), not from Postgres rows.
Every query has a short timeout and answers None when Prometheus cannot be
reached, so a page shows its Postgres-based view or a hint instead of hanging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from triptych.observe.prometheus import PrometheusUnavailable, instant, range_query

from . import data

# p95 forward-pass time per image, by model, over the last minute at each step.
INFERENCE_P95 = "histogram_quantile(0.95, sum by (model, le) (rate(triptych_inference_seconds_bucket[1m])))"
# Messages each function's consumer group is behind, summed over partitions.
CONSUMER_LAG = "sum by (function) (triptych_function_consumer_lag)"
# Answers per second by model, over a window of `{window}` (the chart's step).
ANSWERS_PER_S = "sum by (model) (rate(triptych_predictions_total[{window}s]))"


def query_range(promql: str, start: datetime, end: datetime, step_s: int = 15) -> dict[str, tuple[list, list]] | None:
    """{series label: (times, values)} from `start` to `end`, or None when Prometheus
    is away. A series is named by its one varying label (model, function ...)."""
    try:
        results = range_query(data.settings(), promql, start.timestamp(), end.timestamp(), step_s)
    except PrometheusUnavailable:
        return None
    series = {}
    for result in results:
        name = next(iter(result["metric"].values()), "all")
        points = [
            (datetime.fromtimestamp(float(t), UTC), float(v))
            for t, v in result["values"]
            if v not in ("NaN", "+Inf", "-Inf")
        ]
        if points:
            series[name] = ([t for t, _ in points], [v for _, v in points])
    return series


def last_minutes(promql: str, minutes: int, step_s: int = 15) -> dict[str, tuple[list, list]] | None:
    end = datetime.now(UTC)
    return query_range(promql, end - timedelta(minutes=minutes), end, step_s)


# CPU seconds each function's replicas spent, and images each inference function
# answered, over `{window}` seconds: their ratio is the CPU one image costs there,
# forward pass and all the function's own work (decode, batching, Kafka) included.
FUNCTION_CPU = 'sum by (function) (increase(process_cpu_seconds_total{{job="functions"}}[{window}s]))'
FUNCTION_ANSWERS = 'sum by (function) (increase(triptych_inference_seconds_count{{job="functions"}}[{window}s]))'


def cpu_ms_per_image(end: datetime, window_s: float, function_of: dict[str, str]) -> dict[str, float] | None:
    """Per model (`function_of`: model -> its inference function), milliseconds of CPU
    per image (= CPU seconds per 1,000 images) over the `window_s` seconds before
    `end`; None when Prometheus is away."""
    window_s = max(60, int(window_s))
    try:
        cpu = {m["function"]: v for m, v in instant_at(FUNCTION_CPU.format(window=window_s), end) if "function" in m}
        answers = {
            m["function"]: v for m, v in instant_at(FUNCTION_ANSWERS.format(window=window_s), end) if "function" in m
        }
    except PrometheusUnavailable:
        return None
    return {
        model: 1000 * cpu[function] / answers[function]
        for model, function in function_of.items()
        if cpu.get(function) and answers.get(function)
    }


def instant_at(promql: str, at: datetime) -> list[tuple[dict[str, str], float]]:
    return instant(data.settings(), promql, at.timestamp())
