"""The upload function vs a bare MinIO put of the same 100 KB JPEG, then ingest
throughput, against the running stack (`triptych up`, functions included).

Upload: N requests from C concurrent clients to POST /upload (validation, MinIO
put, Postgres row, JSON answer) and, side by side, N bare puts from C threads.
Ingest: M objects dropped into the bucket; time until all are registered.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx2 as httpx
import numpy as np
import psycopg2

from triptych.config import get_settings
from triptych.security.keys import client_key
from triptych.storage import minio_client


def jpegs_of_about(kb: int, count: int) -> list[bytes]:
    """`count` distinct JPEGs of about `kb` KB (distinct bytes: no duplicate short-cut)."""
    rng = np.random.default_rng(0)
    side = 64
    while True:
        image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        if len(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]) >= kb * 1024:
            break
        side += 16
    out = []
    for i in range(count):
        image[0, 0] = (i % 256, (i // 256) % 256, 7)
        out.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


def timed(calls, concurrency: int) -> tuple[float, list[float]]:
    latencies = []

    def one(call):
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, calls))
    return len(calls) / (time.perf_counter() - started), sorted(latencies)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--drops", type=int, default=500)
    args = parser.parse_args()
    settings = get_settings()
    payloads = jpegs_of_about(100, args.requests)
    data = payloads[0]
    # The local stack's own key (made by `triptych up`): the upload function refuses requests without one.
    client = httpx.Client(timeout=60, headers={"X-API-Key": client_key(settings) or ""})
    url = f"{settings.upload_url}/upload"

    def upload(p):
        return lambda: client.post(url, files={"file": ("bench.jpg", p)}).raise_for_status()

    s3 = minio_client(settings)
    prefix = f"bench/{uuid.uuid4().hex[:8]}"

    def put(i, p):
        return lambda: s3.put_object(settings.images_bucket, f"quarantine/{prefix}/{i}.jpg", io.BytesIO(p), len(p))

    up_rate, up_lat = timed([upload(p) for p in payloads], args.concurrency)
    put_rate, put_lat = timed([put(i, p) for i, p in enumerate(payloads)], args.concurrency)
    print(f"{args.requests} x {len(data) // 1024} KB JPEG, {args.concurrency} concurrent clients")
    print(f"  upload function: {up_rate:7.1f} req/s  p50 {pct(up_lat, .5):6.1f} ms  p99 {pct(up_lat, .99):6.1f} ms")
    print(f"  bare MinIO put:  {put_rate:7.1f} req/s  p50 {pct(put_lat, .5):6.1f} ms  p99 {pct(put_lat, .99):6.1f} ms")
    print(f"  upload / bare put throughput: {up_rate / put_rate:.2f}x")

    small = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
    drops = f"bench-drops/{uuid.uuid4().hex[:8]}/"
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put_object(settings.images_bucket, f"{drops}{i}.png", io.BytesIO(small),
                                              len(small)), range(args.drops)))
    put_done = time.perf_counter()
    conn = psycopg2.connect(settings.postgres_url)
    conn.autocommit = True
    while True:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM images WHERE object_key LIKE %s", (drops + "%",))
            if cur.fetchone()[0] >= args.drops:
                break
        time.sleep(0.1)
    done = time.perf_counter()
    print(f"ingest: {args.drops} drops registered {done - started:.1f}s after the first put "
          f"({args.drops / (done - started):.0f} events/s end to end; puts alone took {put_done - started:.1f}s)")
    print(f"  median upload latency / median bare put: {statistics.median(up_lat) / statistics.median(put_lat):.1f}x")


if __name__ == "__main__":
    main()
