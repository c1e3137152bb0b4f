"""How fast each dashboard page's data callbacks answer on a realistic volume.

Creates a scratch database `triptych_bench` beside the stack's own (on the running
local stack's PostgreSQL), applies the migrations, seeds N images (default
100,000) spread over the last 24 hours with three models' predictions, their
comparisons (computed by the aggregate function's own `compare`), per-minute
model metrics, a review queue, quarantined objects and dead letters. Then it calls
each page's real callbacks (the same functions Dash calls, figures included) and
prints the median and worst time per callback over several runs. The scratch
database is dropped at the end (--keep leaves it).

    .venv/bin/triptych up      # the stack must be running
    .venv/bin/python bench/dashboard_queries.py [--images 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg2

from triptych.aggregation.compare import Answer, compare
from triptych.config import Settings
from triptych.stack.provision import drop_database, fresh_database

BENCH_DB = "triptych_bench"
CLASSES = ["circle", "square", "triangle", "star", "cross", "ring", "diamond", "heart", "arrow", "moon"]
MODELS = {  # name -> (accuracy, typical inference ms)
    "resnet50": (0.98, 24.0), "mobilenet_v2": (0.97, 6.0), "efficientnet_b0": (0.99, 12.0),
}


def _copy(cur, table: str, columns: list[str], rows) -> None:
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v).replace("\\", "\\\\").replace("\t", " ") for v in row))
        buf.write("\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)


def seed(url: str, images: int, seed_value: int = 7) -> None:
    rng = np.random.default_rng(seed_value)
    now = datetime.now(timezone.utc)
    span = timedelta(hours=24).total_seconds()
    offsets = np.sort(rng.uniform(0, span, images))[::-1]
    image_rows, prediction_rows, comparison_rows = [], [], []
    for k in range(images):
        image_id = str(uuid.UUID(int=rng.integers(0, 2**63) << 64 | k))
        at = now - timedelta(seconds=float(offsets[k]))
        truth = CLASSES[k % len(CLASSES)]
        quarantined = rng.random() < 0.005
        answers = []
        if not quarantined:
            for model, (accuracy, ms) in MODELS.items():
                cls = truth if rng.random() < accuracy else CLASSES[int(rng.integers(len(CLASSES)))]
                confidence = float(np.clip(rng.beta(8, 1.2) if cls == truth else rng.beta(2, 2), 0.05, 1.0))
                inference = float(ms * rng.lognormal(0, 0.35))
                answers.append(Answer(model, "1", cls, confidence, inference))
                top_k = json.dumps([{"label": cls, "confidence": confidence}])
                prediction_rows.append((image_id, model, "1", cls, confidence, top_k, 2.0, 1.5, 0.8, inference,
                                        inference + 4.3, "torch", 8, f"{model}-0", at, at))
        c = compare(answers, truth) if answers else None
        image_rows.append((image_id, "images", f"bench/{k}.png", f"{k:064x}", f"bench-{k:06d}.png", 3000,
                           "synthetic", truth, "quarantined" if quarantined else "classified",
                           "not a decodable image" if quarantined else None, bool(c and c.needs_review), at, at))
        if c:
            comparison_rows.append((image_id, c.model_set, json.dumps(c.model_versions), c.consensus_class,
                                    c.consensus_confidence, c.agreement_level, c.agreement_ratio, c.fastest_model,
                                    c.fastest_inference_ms, c.ground_truth_label, json.dumps(c.per_model),
                                    c.consensus_correct, c.needs_review, at, at))
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        _copy(cur, "images", ["image_id", "bucket", "object_key", "sha256", "filename", "size_bytes", "source",
                              "ground_truth_label", "status", "quarantine_reason", "needs_review", "uploaded_at",
                              "registered_at"], image_rows)
        _copy(cur, "predictions", ["image_id", "model_name", "model_version", "predicted_class", "confidence", "top_k",
                                   "fetch_ms", "decode_ms", "preprocess_ms", "inference_ms", "total_ms", "backend",
                                   "batch_size", "worker_id", "predicted_at", "created_at"], prediction_rows)
        _copy(cur, "model_comparisons", ["image_id", "model_set", "model_versions", "consensus_class",
                                         "consensus_confidence", "agreement_level", "agreement_ratio", "fastest_model",
                                         "fastest_inference_ms", "ground_truth_label", "per_model", "consensus_correct",
                                         "needs_review", "created_at", "updated_at"], comparison_rows)
        # The aggregate function's per-minute rows, computed the way it computes them.
        cur.execute("""
            INSERT INTO model_metrics (model_name, model_version, window_start, window_seconds, prediction_count,
                                       mean_inference_ms, p50_inference_ms, p95_inference_ms, p99_inference_ms,
                                       mean_confidence)
            SELECT model_name, model_version, date_trunc('minute', predicted_at), 60, count(*), avg(inference_ms),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY inference_ms),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY inference_ms),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY inference_ms), avg(confidence)
            FROM predictions GROUP BY 1, 2, 3""")
        cur.execute("""INSERT INTO system_events (event_type, severity, component, message, created_at)
                       SELECT 'dead_letter', 'error', 'ingest', 'bench', now() - g * interval '1 minute'
                       FROM generate_series(1, 500) g""")
    conn = psycopg2.connect(url)
    conn.autocommit = True  # VACUUM cannot run in a transaction
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.close()


@contextmanager
def seeded_database(settings: Settings, name: str, images: int, keep: bool = False) -> Iterator[str]:
    """A scratch database beside the stack's own, seeded with `images` images; its
    URL; dropped afterwards unless `keep`."""
    started = time.monotonic()
    url = fresh_database(settings, name)
    try:
        seed(url, images)
        print(f"seeded {images:,} images in {time.monotonic() - started:.0f}s into {name}", file=sys.stderr)
        yield url
    finally:
        if not keep:
            drop_database(settings, name)


def callbacks() -> dict[str, callable]:
    """Each page's data callbacks, called as Dash calls them."""
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    from dash_app.pages import compare as compare_page
    from dash_app.pages import history, image, live, review
    from dash_app.pages import models as models_page

    def history_first_page(**filters):
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": "history-range.value", "value": "24h"}]))
        args = {"range_key": "24h", "model": None, "cls": None, "agreement": None, "correct": None, "source": None,
                "search": None, **filters}
        return history.page(*args.values(), None, None, 0)

    def review_queue():
        return review.load(1)

    newest = {}

    def newest_prefix():
        return image_page_id()[:8]

    def image_page_id():
        if "id" not in newest:
            newest["id"] = str(image.data.read(image._newest_id))
        return newest["id"]

    def image_page():
        return image.render(image_page_id())

    return {
        "Live: counters, stream, models (every 2 s)": lambda: live.refresh(1),
        "Image: one image, top-5, timings, prev/next": image_page,
        "Compare 1h: latency + confidence": lambda: compare_page.speed_and_confidence("1h"),
        "Compare 1h: throughput": lambda: compare_page.throughput("1h"),
        "Compare 1h: agreement, accuracy per class, confusion": lambda: compare_page.agreement_and_accuracy("1h"),
        "Compare 1h: model versions": lambda: compare_page.versions("1h"),
        "Compare 24h: latency + confidence": lambda: compare_page.speed_and_confidence("24h"),
        "Compare 24h: throughput": lambda: compare_page.throughput("24h"),
        "Compare 24h: agreement, accuracy per class, confusion": lambda: compare_page.agreement_and_accuracy("24h"),
        "Compare 24h: model versions": lambda: compare_page.versions("24h"),
        "History 24h: first page, no filter": history_first_page,
        "History 24h: model+class+wrong filter": lambda: history_first_page(model="resnet50", cls="star",
                                                                             correct="no"),
        "History 24h: search by file name": lambda: history_first_page(search="bench-04217"),
        "Review: queue + quarantine": review_queue,
        "History 24h: search by image id prefix": lambda: history_first_page(search=newest_prefix()),
        "Models: registry (the stack's MLflow) + events": lambda: models_page.refresh(1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the scratch database")
    args = parser.parse_args()
    with seeded_database(Settings(), BENCH_DB, args.images, args.keep) as url:
        os.environ["TRIPTYCH_DATABASE_URL"] = url  # the dashboard reads the scratch database
        print(f"| callback ({args.images:,} images over 24 h) | median ms | worst ms |")
        print("|---|---:|---:|")
        for name, call in callbacks().items():
            call()  # warm: connection, imports, caches
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                call()
                times.append((time.perf_counter() - t0) * 1000)
            print(f"| {name} | {statistics.median(times):.0f} | {max(times):.0f} |", flush=True)


if __name__ == "__main__":
    main()
