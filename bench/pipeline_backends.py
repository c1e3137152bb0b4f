"""The inference functions' per-image time in the running pipeline, per backend.

Needs the local stack with a champion per model (`make demo` once, or
`triptych up` and `triptych models bootstrap --train`). For each backend it
restarts the `functions` service with TRIPTYCH_INFER_BACKEND set, streams a
warm-up and then `--images` labelled images at `--rate`, waits for their
comparisons, and reads the functions' own timings from the prediction rows.
The functions are restarted with the backend they had at the end.

    .venv/bin/python bench/pipeline_backends.py --images 200 --rate 8
"""

from __future__ import annotations

import argparse
import os
import time

from triptych.config import Settings
from triptych.db.connection import Database
from triptych.ingress.producers import BucketWriter, run_stream, synthetic_items
from triptych.stack.manager import Stack

TIMINGS = """
SELECT p.model_name AS model, p.backend, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.total_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY p.total_ms) AS p95,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.inference_ms) AS forward_p50,
       avg(p.batch_size) AS batch
FROM predictions p JOIN images i USING (image_id)
WHERE i.object_key = ANY(%s)
GROUP BY 1, 2 ORDER BY 1, 2
"""
END_TO_END = """
SELECT count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.created_at - i.uploaded_at)) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM c.created_at - i.uploaded_at)) AS p95
FROM model_comparisons c JOIN images i USING (image_id)
WHERE i.object_key = ANY(%s)
"""


def restart_functions(backend: str) -> None:
    os.environ["TRIPTYCH_INFER_BACKEND"] = backend  # the supervisor and its replicas inherit it
    functions = Stack(Settings()).service("functions")
    functions.stop()
    functions.start()


def query(db: Database, sql: str, keys: list[str]) -> list[dict]:
    def run(cur):
        cur.execute(sql, (keys,))
        return cur.fetchall()

    return db.transaction(run)


def stream_and_wait(settings: Settings, db: Database, count: int, rate: float, start: int, timeout: float) -> list[str]:
    writer = BucketWriter(settings, "synthetic")
    keys = run_stream(synthetic_items("test", start=start), writer, rate=rate, count=count, keep_keys=True).keys
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = query(db, END_TO_END, keys)[0]["n"]
        if done >= len(keys):
            return keys
        time.sleep(1)
    raise SystemExit(f"only {done} of {len(keys)} images were compared within {timeout:.0f}s; "
                     "are the champions registered and the functions running (`triptych functions status`)?")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rate", type=float, default=8.0, help="images per second")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--backends", default="torch,onnx")
    args = parser.parse_args()
    original = os.environ.get("TRIPTYCH_INFER_BACKEND", "torch")
    settings = Settings()
    db = Database(settings)
    start = int(time.time()) % 100_000  # fresh images: predictions are keyed by image
    results: dict[tuple[str, str], dict] = {}
    end_to_end: dict[str, dict] = {}
    try:
        for backend in args.backends.split(","):
            restart_functions(backend)
            stream_and_wait(settings, db, args.warmup, args.rate, start, timeout=300)  # loads the champions
            start += args.warmup
            keys = stream_and_wait(settings, db, args.images, args.rate, start, timeout=300)
            start += args.images
            results.update({(row["model"], backend): row for row in query(db, TIMINGS, keys)})
            end_to_end[backend] = query(db, END_TO_END, keys)[0]
    finally:
        restart_functions(original)

    print(f"{args.images} images at {args.rate}/s per backend; function time per image (fetch, decode, "
          "preprocess, forward, share of the batch)")
    print(f"{'model':16} {'backend':16} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8} {'forward p50':>12} {'mean batch':>11}")
    for (model, backend), r in sorted(results.items()):
        print(f"{model:16} {r['backend'] or backend:16} {r['n']:>5} {r['p50']:>8.1f} {r['p95']:>8.1f} "
              f"{r['forward_p50']:>12.1f} {float(r['batch']):>11.1f}")
    backends = args.backends.split(",")
    if len(backends) == 2:
        a, b = backends
        for model in sorted({m for m, _ in results}):
            if (model, a) in results and (model, b) in results:
                print(f"{model:16} {b}/{a} p50 time ratio {results[(model, b)]['p50'] / results[(model, a)]['p50']:.2f}")
    for backend, r in end_to_end.items():
        print(f"upload-to-comparison with {backend}: p50 {r['p50']:.2f}s, p95 {r['p95']:.2f}s over {r['n']} images")


if __name__ == "__main__":
    main()
