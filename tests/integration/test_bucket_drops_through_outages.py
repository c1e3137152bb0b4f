"""Every object a plain S3 client drops into the images bucket, under keys of its
own choosing, is ingested once and compared, through a Kafka outage, a MinIO
restart and a PostgreSQL restart, each server killed with -9 and brought back by
`triptych up` as an operator would.

On 09b0fc2 the Kafka case failed: MinIO dropped the events it could not deliver,
and the sweep listed only the dated keys of Triptych's own clients, so every drop
made while Kafka was down stayed in the bucket, never classified and never
reported. Now MinIO's durable target keeps those events on disk and ingest's
reconcile trigger ingests them when Kafka is back (triptych.ingress.reconcile).
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from urllib.parse import urlparse

import psutil
import pytest
from minio import Minio

from triptych.datasets.sources import synthetic_items
from triptych.models.bootstrap import QUICK, missing_champions, train_as_mlrun_job
from triptych.models.zoo import ARCHITECTURES

from .conftest import stack_status, triptych
from .pipeline_helpers import start_pipeline, unique
from .runtime_helpers import query, wait_for

# After the server comes back, every drop must be compared within this (the bound).
RECOVERY_S = 90
# A MinIO killed with -9 loses the events it held in memory for the puts it had just
# acknowledged (both targets'): ingest's sweep finds those objects once they are
# SWEEP_SETTLE_S old, at its next minute tick. Settled in 15 s here (5 min by default),
# one page for the whole bucket, so the MinIO case is bound by that much more.
SWEEP_SETTLE_S = 15
MINIO_RECOVERY_S = RECOVERY_S + SWEEP_SETTLE_S + 60


@pytest.fixture(scope="module")
def pipeline(stack, tmp_path_factory):
    for name in missing_champions(stack):
        train_as_mlrun_job(name, QUICK, policy="always")
    run = {"ingest": 1, "aggregate": 1, **{a.function: 1 for a in ARCHITECTURES.values()}}
    sup = start_pipeline(
        tmp_path_factory.mktemp("outages"),
        run,
        {"TRIPTYCH_SWEEP_SETTLE_S": str(SWEEP_SETTLE_S), "TRIPTYCH_SWEEP_PAGE_SIZE": "100000"},
    )
    yield sup
    sup.stop()
    assert triptych("up").returncode == 0  # whatever a failed test left down, for the modules after this one


def plain_client(stack) -> Minio:
    """An S3 client as any user has one: the minio SDK, not Triptych's helpers."""
    url = urlparse(stack.s3_url)
    return Minio(url.netloc, access_key=stack.s3_access_key, secret_key=stack.s3_secret_key, secure=False)


class Dropper:
    """Puts PNGs under `<run>/<n>.png`, `rate` a second, in a thread; a put that
    fails (MinIO down) is retried until it succeeds, as `mc` or rclone would (the
    SDK retries a refused connection itself first)."""

    def __init__(self, stack, run: str, rate: float):
        self.client, self.bucket, self.run, self.rate = plain_client(stack), stack.images_bucket, run, rate
        self.items = synthetic_items("test", 5000)
        self.put: list[tuple[str, float]] = []  # (key, when it was acknowledged)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def drop_one(self) -> str:
        key = f"{self.run}/{len(self.put):04d}.png"
        data = next(self.items).data
        deadline = time.monotonic() + 120
        while True:
            try:
                self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type="image/png")
                self.put.append((key, time.monotonic()))
                return key
            except Exception:  # noqa: BLE001 - MinIO restarting: retry, as a user's client would
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.drop_one()
            self._stop.wait(1 / self.rate)

    def __enter__(self) -> Dropper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(180)

    def keys_between(self, start: float, end: float) -> list[str]:
        return [key for key, at in self.put if start <= at <= end]


def kill(service: str) -> int:
    pid = stack_status()[service]["pid"]
    assert pid, f"{service} is not running"
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
        30,
        message=f"{service} (pid {pid}) to die",
    )
    return pid


def bring_back() -> float:
    proc = triptych("up")
    assert proc.returncode == 0, proc.stderr
    return time.monotonic()


def compared_once(stack, run: str, keys: list[str], timeout: float) -> list[dict]:
    """Wait until every key has exactly one image row and one comparison; return the rows."""

    def state():
        rows = query(
            stack,
            """SELECT i.object_key, i.image_id,
                                      (SELECT count(*) FROM model_comparisons c WHERE c.image_id = i.image_id) AS n
                               FROM images i WHERE i.bucket = %s AND i.object_key LIKE %s""",
            (stack.images_bucket, f"{run}/%"),
            dicts=True,
        )
        return rows

    def done():
        rows = state()
        return len(rows) >= len(keys) and all(r["n"] >= 1 for r in rows) and rows

    try:
        rows = wait_for(done, timeout, interval=1, message=f"{len(keys)} drops of {run} compared")
    except AssertionError:
        rows = state()
        have = {r["object_key"] for r in rows}
        raise AssertionError(
            f"{len(set(keys) - have)} of {len(keys)} drops have no image row "
            f"({sorted(set(keys) - have)[:10]}...), "
            f"{sum(1 for r in rows if r['n'] == 0)} have no comparison"
        ) from None
    by_key: dict[str, list[dict]] = {}
    for row in rows:
        by_key.setdefault(row["object_key"], []).append(row)
    assert set(by_key) == set(keys)
    doubled = {k: len(v) for k, v in by_key.items() if len(v) != 1 or v[0]["n"] != 1}
    assert not doubled, f"ingested or compared more than once: {doubled}"
    return rows


def reported_late(stack, run: str, event_type: str) -> int:
    """Drops of `run` that ingest took in late and said so in a `system_events` row of
    `event_type`: `objects_recovered_late` (from MinIO's durable event copy) or
    `objects_swept` (found by listing the bucket). Counted from the rows' tallies;
    their key lists name the first 50 only."""
    tally = "(details->>'recovered')::int" if event_type == "objects_recovered_late" else "(details->>'ingested')::int"
    [(count,)] = query(
        stack,
        f"""SELECT coalesce(sum({tally}), 0) FROM system_events WHERE event_type = %s
                                  AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(details->'keys') k
                                              WHERE k LIKE %s)""",
        (event_type, f"{run}/%"),
    )
    return int(count)


def outage(dropper: Dropper, service: str, down_s: float, before: int, after: int) -> tuple[float, float, int]:
    """While drops flow: `before` acknowledged, `service` killed with -9 and left
    down `down_s`, brought back by `triptych up`, then `after` more acknowledged.
    Returns when it died, when it was back, and the pid it had."""
    wait_for(lambda: len(dropper.put) >= before, 30, message=f"drops before {service} dies")
    killed = kill(service)
    down_at = time.monotonic()
    wait_for(
        lambda: time.monotonic() - down_at >= down_s, down_s + 10, interval=0.5, message=f"{down_s} s without {service}"
    )
    back_at = bring_back()
    wait_for(
        lambda: len(dropper.keys_between(back_at, float("inf"))) >= after, 60, message=f"drops after {service} is back"
    )
    return down_at, back_at, killed


def test_drops_while_kafka_is_down_for_a_minute_are_all_compared_once(stack, pipeline):
    run = unique("kafka-outage")
    with Dropper(stack, run, rate=2) as dropper:
        down_at, kafka_back, _ = outage(dropper, "kafka", 60, before=4, after=4)
    # Kafka is surely down for the minute before `triptych up` starts it again.
    surely_down = dropper.keys_between(down_at, down_at + 60)
    assert len(surely_down) >= 100, "drops made while Kafka was down"
    keys = [key for key, _ in dropper.put]
    compared_once(stack, run, keys, RECOVERY_S - (time.monotonic() - kafka_back))
    print(
        f"\n[kafka outage] {len(keys)} drops, {len(surely_down)} in the minute Kafka was down; all compared once "
        f"{time.monotonic() - kafka_back:.1f} s after `triptych up` returned"
    )
    # The operator sees that drops were delayed: the late ones are reported, with their keys,
    # by the durable copy's reconciler, or by the minute's sweep when it lists them first
    # (they are 15 s settled here; CI saw 28 of 117 go that way).
    recovered, swept = reported_late(stack, run, "objects_recovered_late"), reported_late(stack, run, "objects_swept")
    assert recovered + swept >= len(surely_down), (recovered, swept)


def test_drops_across_a_minio_restart_are_all_compared_once(stack, pipeline):
    run = unique("minio-restart")
    with Dropper(stack, run, rate=5) as dropper:
        _, minio_back, killed = outage(dropper, "minio", 0, before=10, after=10)
    assert stack_status()["minio"]["pid"] not in (None, killed), "a new MinIO serves the drops after the restart"
    compared_once(stack, run, [key for key, _ in dropper.put], MINIO_RECOVERY_S)
    swept = reported_late(stack, run, "objects_swept")
    print(
        f"\n[minio restart] {len(dropper.put)} drops; all compared once "
        f"{time.monotonic() - minio_back:.1f} s after `triptych up` returned; {swept} by the sweep"
    )


def test_drops_across_a_postgres_restart_are_all_compared_once(stack, pipeline):
    run = unique("postgres-restart")
    with Dropper(stack, run, rate=5) as dropper:
        _, postgres_back, _ = outage(dropper, "postgres", 10, before=10, after=10)
    compared_once(stack, run, [key for key, _ in dropper.put], RECOVERY_S)
    print(
        f"\n[postgres restart] {len(dropper.put)} drops; all compared once "
        f"{time.monotonic() - postgres_back:.1f} s after `triptych up` returned"
    )
