"""The local runner's Kafka trigger against real Kafka and Postgres: exactly-once
effects through kill -9 and SIGTERM, dead letters and replay, batching, scaling."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest

from triptych.bus import producer as make_producer
from triptych.db.events import events_by_dedup_prefix
from triptych.runtime.dlq import read_dead_letters
from triptych.sdk import Delivery

from .runtime_helpers import (
    query,
    send_json,
    start_sink,
    wait_for,
    wait_group_stable,
)


@pytest.fixture()
def sink(stack, tmp_path):
    """A sink function project factory; yields a starter and stops what it started."""
    started = []

    def start(replicas=1, **options):
        sup, topic, table = start_sink(stack, tmp_path, replicas, **options)
        started.append(sup)
        sup.wait_running("sink", replicas)
        return sup, topic, table

    yield start
    for sup in started:
        sup.stop()


def _count(stack, table):
    return query(stack, f"SELECT count(*) FROM {table}")[0][0]


def test_kill9_of_a_replica_loses_and_duplicates_nothing(stack, sink):
    sup, topic, table = sink(replicas=2)
    producer = make_producer(stack)
    messages = [{"id": f"m{i:04d}", "sent_at": 0} for i in range(500)]
    send_json(producer, topic, messages[:150])
    wait_for(lambda: _count(stack, table) >= 50, 30, message="processing to start")

    victim = sup.replicas("sink")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    send_json(producer, topic, messages[150:])
    producer.close()

    wait_for(lambda: _count(stack, table) == 500, 90, message="all 500 effects")
    rows = query(stack, f"SELECT id, deliveries FROM {table}")
    assert sorted(r[0] for r in rows) == [m["id"] for m in messages]
    restarted = wait_for(
        lambda: sup.replicas("sink")[0]["restarts"] >= 1 and sup.replicas("sink")[0],
        30,
        message="the killed replica to be restarted",
    )
    assert restarted["last_exit_code"] == -signal.SIGKILL
    print(
        f"\n[kill -9] all 500 effects {time.monotonic() - killed_at:.1f}s after the kill; "
        f"{sum(d - 1 for _, d in rows)} redelivered message(s) absorbed by the idempotent sink"
    )


def test_poison_message_is_dead_lettered_and_replayed_after_the_fix(stack, sink, tmp_path):
    poison_file = tmp_path / "poison-on"
    poison_file.touch()
    sup, topic, table = sink(
        partitions=1, delivery=Delivery(max_attempts=3, retry_backoff_ms=50), env={"SINK_POISON_FILE": str(poison_file)}
    )
    producer = make_producer(stack)
    messages = [{"id": f"p{i}", "poison": i == 1} for i in range(6)]
    send_json(producer, topic, messages, partition=0)
    producer.close()

    wait_for(lambda: _count(stack, table) == 5, 30, message="the five good messages")
    assert sorted(r[0] for r in query(stack, f"SELECT id FROM {table}")) == ["p0", "p2", "p3", "p4", "p5"]
    letters = wait_for(
        lambda: [d for d in read_dead_letters(stack, "sink") if d.letter.origin.topic == topic],
        30,
        message="the dead letter",
    )
    assert len(letters) == 1
    letter = letters[0].letter
    assert (letter.origin.partition, letter.origin.offset, letter.attempts) == (0, 1, 3)
    assert "poison message p1 refused" in letter.error and letter.error_type == "ValueError"
    assert json.loads(letter.value())["id"] == "p1"
    assert letter.dedup_key in events_by_dedup_prefix(letter.dedup_key, stack)

    poison_file.unlink()  # the fix
    replay = sup.cli("dlq", "replay", letters[0].ref)
    assert replay.returncode == 0, replay.stderr
    wait_for(lambda: query(stack, f"SELECT 1 FROM {table} WHERE id = 'p1'"), 30, message="the replayed message")
    listed = json.loads(sup.cli("dlq", "list", "--function", "sink", "--json").stdout)
    assert [d["replayed"] for d in listed if d["ref"] == letters[0].ref] == [True]


def test_batches_of_up_to_16_and_bounded_latency_on_a_trickle(stack, sink):
    sup, topic, table = sink(handler="batch", delivery=Delivery(batch_size=16, batch_wait_ms=50))
    producer = make_producer(stack)
    send_json(producer, topic, [{"id": f"b{i:03d}"} for i in range(200)])
    wait_for(lambda: _count(stack, table) == 200, 60, message="the burst")
    sizes = [r[0] for r in query(stack, f"SELECT batch_size FROM {table}")]
    assert max(sizes) == 16 and all(1 <= s <= 16 for s in sizes)
    assert sum(1 for s in sizes if s > 1) > 100, "a burst should mostly travel in batches"

    trickle = [{"id": f"t{i}", "sent_at": None} for i in range(5)]
    for message in trickle:
        message["sent_at"] = time.time()
        send_json(producer, topic, [message])
        time.sleep(0.3)
    producer.close()
    wait_for(lambda: _count(stack, table) == 205, 30, message="the trickle")
    latencies = [r[0] for r in query(stack, f"SELECT processed_at - sent_at FROM {table} WHERE id LIKE 't%%'")]
    assert max(latencies) < 1.0, latencies
    print(f"\n[batching] trickle latency max {max(latencies) * 1000:.0f} ms")


def test_sigterm_drains_commits_and_restart_duplicates_nothing(stack, sink):
    sup, topic, table = sink(env={"SINK_DELAY_MS": "10"})
    producer = make_producer(stack)
    send_json(producer, topic, [{"id": f"s{i:03d}"} for i in range(300)])
    producer.close()
    wait_for(lambda: _count(stack, table) >= 40, 30, message="processing to start")
    os.kill(sup.replicas("sink")[0]["pid"], signal.SIGTERM)
    replica = wait_for(
        lambda: sup.replicas("sink")[0]["restarts"] >= 1 and sup.replicas("sink")[0],
        60,
        message="the drained replica to exit",
    )
    assert replica["last_exit_code"] == 0
    wait_for(lambda: _count(stack, table) == 300, 60, message="all 300 effects after the restart")
    assert query(stack, f"SELECT count(*) FROM {table} WHERE deliveries > 1")[0][0] == 0


def test_scaling_to_three_replicas_spreads_partitions(stack, sink):
    sup, topic, table = sink(replicas=1)
    project_file = sup.process.args[sup.process.args.index("--project") + 1]
    scaled = sup.cli("functions", "scale", "sink", "3", "--project", project_file)
    assert scaled.returncode == 0, scaled.stderr
    sup.wait_running("sink", 3)
    wait_group_stable(stack, f"sink-{topic}", 3)
    producer = make_producer(stack)
    for partition in range(3):
        send_json(producer, topic, [{"id": f"x{partition}-{i}"} for i in range(30)], partition=partition)
    producer.close()
    wait_for(lambda: _count(stack, table) == 90, 60, message="90 effects")
    per_worker = query(stack, f"SELECT worker, array_agg(DISTINCT part) FROM {table} GROUP BY worker")
    assert len(per_worker) == 3, per_worker
    partitions = sorted(p for _, parts in per_worker for p in parts)
    assert partitions == [0, 1, 2], "each partition is owned by exactly one replica"


def test_replicas_die_with_a_supervisor_killed_with_9(stack, sink):
    sup, topic, table = sink(replicas=2)
    pids = [r["pid"] for r in sup.replicas("sink")]
    assert len(pids) == 2 and all(psutil.pid_exists(pid) for pid in pids)
    sup.process.kill()  # no chance to drain: only the kernel's parent-death signal is left
    sup.process.wait(timeout=10)

    def gone():
        return all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in pids)

    wait_for(gone, 60, message=f"replicas {pids} to exit after their supervisor")


def test_a_failing_batch_is_split_and_only_its_poison_is_dead_lettered(stack, sink, tmp_path):
    poison_file = tmp_path / "poison-on"
    poison_file.touch()
    # All eight wait on the topic before the function starts, so its first batch holds them all.
    sup, topic, table = sink(
        handler="batch",
        partitions=1,
        env={"SINK_POISON_FILE": str(poison_file)},
        delivery=Delivery(batch_size=16, batch_wait_ms=200, max_attempts=2, retry_backoff_ms=10),
        waiting=[{"id": f"q{i}", "poison": i == 3} for i in range(8)],
    )
    wait_for(lambda: _count(stack, table) == 7, 30, message="the seven good messages")
    rows = query(stack, f"SELECT id, batch_size FROM {table} ORDER BY id")
    assert [r[0] for r in rows] == [f"q{i}" for i in range(8) if i != 3]
    assert all(r[1] == 1 for r in rows), "after the batch failed, its events were retried one at a time"
    letters = wait_for(
        lambda: [d for d in read_dead_letters(stack, "sink") if d.letter.origin.topic == topic],
        30,
        message="the dead letter",
    )
    assert [(d.letter.origin.offset, d.letter.attempts) for d in letters] == [(3, 2)]
