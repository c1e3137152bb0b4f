"""The bench's arithmetic, kept free of I/O so it can be tested on its own:
rates, percentiles, and one image's latency split into stages from the
timestamps the functions put in their messages."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# In the order an image meets them. "batch" is the time an image spends in an
# inference function beyond its own fetch and decode and the batch's preprocess
# and forward pass: waiting for its batch's slower fetches, building messages.
STAGES = (
    "event_delay",
    "ingest",
    "queueing",
    "fetch",
    "decode",
    "preprocess",
    "inference",
    "batch",
    "publish",
    "aggregation",
)


# Inference functions beside the champions (a challenger in shadow, the int8 twin): not
# part of the three models' work the ceiling measures, and asleep unless woken.
SIDE_REPLICAS = ("infer-shadow", "infer-int8")


def champion_inference(process: str) -> bool:
    """A process (`infer-resnet50[1]`) is one of the champions' inference replicas."""
    base = process.split("[")[0]
    return base.startswith("infer-") and base not in SIDE_REPLICAS


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default
    and PostgreSQL's percentile_cont; NaN for no values."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "n": len(values),
    }


def rate(count: int, started: float, ended: float) -> float:
    """Items per second over [started, ended]; 0 when the span is empty."""
    span = ended - started
    return count / span if span > 0 and count else 0.0


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class PredictionTimes:
    """One model's answer for an image, as its function recorded it (seconds
    since the epoch; durations in ms as in the message's `timings`)."""

    model: str
    received_at: float  # the function took the batch
    fetch_ms: float
    decode_ms: float
    preprocess_ms: float  # the image's share of the batch's preprocessing
    inference_ms: float  # the image's share of the batch's forward pass
    batch_size: int
    predicted_at: float  # the answer was built, before publishing
    seen_at: float  # the bench's consumer saw it on the predictions topic


@dataclass(frozen=True)
class ImageTimes:
    put_done: float  # the object was written (the bench's put returned)
    registered_at: float  # ingest built the image message
    ingest_ms: float
    predictions: tuple[PredictionTimes, ...]
    compared_at: float  # the comparison row's transaction began


def stage_breakdown(image: ImageTimes) -> dict[str, float]:
    """Milliseconds per stage along the image's critical path, which runs through
    the answer that arrived last (the one that completed its comparison). The
    stages add up to `total`."""
    if not image.predictions:
        raise ValueError("an image without predictions has no critical path")
    last = max(image.predictions, key=lambda p: p.seen_at)
    ingest_started = image.registered_at - image.ingest_ms / 1000
    in_function = (last.predicted_at - last.received_at) * 1000
    # The image waits for the whole batch's preprocessing and forward pass.
    preprocess = last.preprocess_ms * last.batch_size
    inference = last.inference_ms * last.batch_size
    stages = {
        "event_delay": (ingest_started - image.put_done) * 1000,
        "ingest": image.ingest_ms,
        "queueing": (last.received_at - image.registered_at) * 1000,
        "fetch": last.fetch_ms,
        "decode": last.decode_ms,
        "preprocess": preprocess,
        "inference": inference,
        "batch": in_function - (last.fetch_ms + last.decode_ms + preprocess + inference),
        "publish": (last.seen_at - last.predicted_at) * 1000,
        "aggregation": (image.compared_at - last.seen_at) * 1000,
    }
    stages["total"] = (image.compared_at - image.put_done) * 1000
    return stages


def latency_report(images: Iterable[ImageTimes]) -> dict:
    """End-to-end percentiles and each stage's percentiles over many images."""
    images = list(images)
    rows = [stage_breakdown(image) for image in images]
    return {
        "total_ms": summary([r["total"] for r in rows]),
        "stages_ms": {stage: summary([r[stage] for r in rows]) for stage in STAGES},
        # How full the inference batches were on the critical path: batching trades latency for throughput.
        "batch_size": summary([max(i.predictions, key=lambda p: p.seen_at).batch_size for i in images]),
    }


def cpu_per_image(cpu_before: dict[str, float], cpu_after: dict[str, float], images: int) -> dict[str, float]:
    """CPU milliseconds per image for each process, from CPU seconds read before
    and after a run; a process seen only after the run counts from zero."""
    if images <= 0:
        return {}
    return {name: (after - cpu_before.get(name, 0.0)) * 1000 / images for name, after in sorted(cpu_after.items())}


def marginal_cpu_per_image(
    cpu: dict[str, float], idle_cores: dict[str, float], wall_s: float, images: int
) -> dict[str, float]:
    """CPU ms per image less what each process spends idle (`idle_cores`, measured
    before the run) over the run's `wall_s`: what one more image costs, which a
    capacity model scales, where the gross figure also carries the idle polling and
    heartbeats a process pays at any rate. Never below 0 (idle noise)."""
    if images <= 0:
        return {}
    return {name: max(0.0, ms - idle_cores.get(name, 0.0) * wall_s * 1000 / images) for name, ms in cpu.items()}
