"""How fast the query API answers on a realistic volume, over real HTTP.

Seeds a scratch database (`triptych_bench_api`) with N images (default 100,000)
over 24 hours, their three models' predictions, comparisons and metrics (the same
seeding as dashboard_queries.py), starts `triptych api` on it, and times each
endpoint with one client: p50/p95/p99 in ms and the ratio of each endpoint's p50
to `GET /` (the framework's own cost, measured in the same run). The scratch
database is dropped at the end (--keep leaves it).

    .venv/bin/triptych up      # the stack must be running
    .venv/bin/python bench/api_queries.py [--images 100000] [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request

import httpx2 as httpx
import psycopg2
from dashboard_queries import seeded_database  # the script's folder is on sys.path

from triptych.config import Settings

BENCH_DB = "triptych_bench_api"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_api(url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "triptych.cli", "api", "--port", str(port)],
                            env={**os.environ, "TRIPTYCH_DATABASE_URL": url}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the API did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="leave the scratch database")
    args = parser.parse_args()
    with seeded_database(Settings(), BENCH_DB, args.images, args.keep) as url:
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("ANALYZE")
            cur.execute("SELECT image_id FROM model_comparisons ORDER BY random() LIMIT %s", (args.requests,))
            ids = [str(r[0]) for r in cur.fetchall()]
        proc, base = start_api(url)
        try:
            measure(base, ids, args)
        finally:
            proc.terminate()
            proc.wait(20)


def measure(base: str, ids: list[str], args) -> None:
    rng = random.Random(7)
    endpoints = {
        "GET / (framework baseline)": lambda: "/",
        "GET /comparisons/{id}": lambda: f"/comparisons/{rng.choice(ids)}",
        "GET /predictions/{id}": lambda: f"/predictions/{rng.choice(ids)}",
        "GET /predictions/recent/100": lambda: "/predictions/recent/100",
        "GET /predictions/recent/100?model=resnet50": lambda: "/predictions/recent/100?model=resnet50",
        "GET /images?limit=50": lambda: "/images?limit=50",
        "GET /images?model=resnet50&class=star&correct=false": lambda: "/images?model=resnet50&class=star&correct=false",
        "GET /images/{id}": lambda: f"/images/{rng.choice(ids)}",
        "GET /stats/models?window_s=3600": lambda: "/stats/models?window_s=3600",
        "GET /stats/performance (last hour)": lambda: "/stats/performance",
    }
    with httpx.Client(base_url=base, timeout=30) as client:
        print(f"| endpoint ({args.images:,} images over 24 h, {args.requests} requests each) "
              "| p50 ms | p95 ms | p99 ms | p50 / GET / |")
        print("|---|---:|---:|---:|---:|")
        baseline = None
        for name, path in endpoints.items():
            for _ in range(10):  # warm: connections, plans, caches
                client.get(path()).raise_for_status()
            times = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                client.get(path()).raise_for_status()
                times.append((time.perf_counter() - t0) * 1000)
            p50 = percentile(times, 0.5)
            baseline = baseline or p50
            print(f"| {name} | {p50:.1f} | {percentile(times, 0.95):.1f} | {percentile(times, 0.99):.1f} "
                  f"| {p50 / baseline:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
