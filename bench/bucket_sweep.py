"""What ingest's rolling sweep costs a tick, and what a pass over a bucket of
1,000,000 objects would take, on the running stack (`triptych up`).

A scratch bucket (no notifications, so nothing is ingested) gets N small objects
under keys of a client's choosing. Then, side by side in one run:
- a sweep tick (`ingress.sweep.sweep`): the cursor claimed in Postgres, one listing
  page of MinIO, the cursor moved; every object is too young to be a candidate,
  so this is the listing's cost alone;
- the lookup a tick adds when its page is old enough to look at
  (`Ingestor.unregistered` on the page: one indexed query over `images`);
- a bare `list_objects` of the same page, without Triptych.
Reported per tick (ms, and CPU ms of this process), and extrapolated to a pass
over 1,000,000 objects at one tick a minute.

    .venv/bin/python bench/bucket_sweep.py --objects 20000 --page-size 2000
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

from triptych.config import get_settings
from triptych.ingress.ingest import Ingestor, ObjectRef
from triptych.ingress.sweep import sweep
from triptych.storage import minio_client


def fill(s3, bucket: str, count: int) -> float:
    body = b"\x89PNG not really: the sweep never reads a body it does not ingest"
    started = time.perf_counter()

    def put(i: int) -> None:
        s3.put_object(bucket, f"client-{i % 7}/{uuid.uuid4().hex[:6]}/{i:07d}.png", io.BytesIO(body), len(body))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))
    return count / (time.perf_counter() - started)


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=2000)
    args = parser.parse_args()

    settings = get_settings()
    bucket = f"bench-sweep-{uuid.uuid4().hex[:8]}"
    s3 = minio_client(settings)
    s3.make_bucket(bucket)
    try:
        rate = fill(s3, bucket, args.objects)
        print(f"{args.objects} objects put at {rate:.0f}/s into {bucket}")
        ingestor = Ingestor.from_settings(settings.model_copy(update={"images_bucket": bucket}))
        ticks, lookups, bare = [], [], []
        passes = 0
        while passes < 2:  # two whole passes: every page listed twice
            ms, cpu, result = timed(lambda: sweep(ingestor, page_size=args.page_size, settle_s=10**9))
            ticks.append((ms, cpu))
            passes += result["pass_complete"]
        # The lookup an old-enough page adds, and a bare listing of each page, on the same bucket.
        after = ""
        while True:
            ms, _, page = timed(lambda: list(islice(s3.list_objects(bucket, recursive=True, start_after=after or None),
                                                    args.page_size)))
            bare.append(ms)
            refs = [ObjectRef(bucket, o.object_name, "", o.size, o.etag, {}) for o in page]
            lookups.append(timed(lambda: ingestor.unregistered(refs))[:2])
            if len(page) < args.page_size:
                break
            after = page[-1].object_name
        tick_ms = statistics.median(t[0] for t in ticks)
        tick_cpu = statistics.median(t[1] for t in ticks)
        lookup_ms = statistics.median(t[0] for t in lookups)
        lookup_cpu = statistics.median(t[1] for t in lookups)
        bare_ms = statistics.median(bare)
        per_million = 1_000_000 / args.page_size
        print(f"\npage of {args.page_size} keys, medians over {len(ticks)} ticks and {len(lookups)} lookups:")
        print(f"  sweep tick (claim, list, move):  {tick_ms:7.1f} ms wall  {tick_cpu:6.1f} ms CPU here")
        print(f"  bare list_objects of a page:     {bare_ms:7.1f} ms wall  (tick / bare = {tick_ms / bare_ms:.2f})")
        print(f"  lookup of a page in `images`:    {lookup_ms:7.1f} ms wall  {lookup_cpu:6.1f} ms CPU here")
        print(f"\n1,000,000 objects: {per_million:.0f} ticks a pass, {per_million / 60:.1f} h at one tick a minute; "
              f"each {(tick_ms + lookup_ms) / 1000:.2f} s, {(tick_ms + lookup_ms) / 600:.2f} % of its minute")
    finally:
        from minio.deleteobjects import DeleteObject

        doomed = (DeleteObject(o.object_name) for o in s3.list_objects(bucket, recursive=True))
        errors = list(s3.remove_objects(bucket, doomed))
        if not errors:
            s3.remove_bucket(bucket)


if __name__ == "__main__":
    main()
