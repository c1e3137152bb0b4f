"""Test projects for the function runtime: declared with the same helpers as the
real project, run by the real supervisor in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extras
from kafka import KafkaAdminClient

from triptych.config import Settings
from triptych.control import read_status
from triptych.db.connection import connection
from triptych.runtime.declare import nuclio_function

FUNCTIONS_DIR = Path(__file__).parent / "functions"


def write_project(folder: Path, functions: dict[str, dict]) -> Path:
    """functions: name -> keyword arguments of triptych.runtime.declare.nuclio_function."""
    import mlrun

    project = mlrun.get_or_create_project(f"t{uuid.uuid4().hex[:8]}", context=str(folder), save=False)
    for name, kwargs in functions.items():
        project.set_function(nuclio_function(name=name, **kwargs), name=name)
    project.save()
    return folder / "project.yaml"


def create_topic(settings: Settings, partitions: int = 3) -> str:
    name = f"test-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_url)
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}}, wait_for_metadata=True)
    finally:
        admin.close()
    return name


def create_sink_table(settings: Settings) -> str:
    table = f"sink_{uuid.uuid4().hex[:10]}"
    with psycopg2.connect(settings.postgres_url) as conn, conn.cursor() as cur:
        cur.execute(
            f"""CREATE TABLE {table} (
                   id TEXT PRIMARY KEY, topic TEXT, part INT, off BIGINT, worker TEXT, batch_size INT,
                   sent_at DOUBLE PRECISION, deliveries INT NOT NULL DEFAULT 1, attempt INT,
                   processed_at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM clock_timestamp()))"""
        )
    conn.close()
    return table


def query(settings: Settings, sql: str, params: tuple = (), dicts: bool = False) -> list:
    """Rows as tuples, or as dicts with `dicts=True`."""
    factory = psycopg2.extras.RealDictCursor if dicts else None
    with connection(settings) as conn, conn.cursor(cursor_factory=factory) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def wait_for(predicate, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def wait_group_stable(settings: Settings, group: str, members: int, timeout: float = 60) -> None:
    """Until the consumer group has `members` members and no rebalance in progress."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_url)
    try:

        def stable():
            info = admin.describe_groups([group]).get(group) or {}
            return info.get("group_state") == "Stable" and len(info.get("members", [])) == members

        wait_for(stable, timeout, interval=0.5, message=f"group {group} stable with {members} member(s)")
    finally:
        admin.close()


def wait_caught_up(settings: Settings, groups: list[str], topic: str, timeout: float = 120) -> None:
    """Until every group has committed the end of every partition of `topic`:
    all that was sent is handled, so nothing more can arrive from it."""
    from kafka import KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_url)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_url)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]

        def caught_up():
            ends = consumer.end_offsets(partitions)
            for group in groups:
                committed = admin.list_group_offsets(group).get(group, {})
                if any((committed.get(tp).offset if committed.get(tp) else 0) < ends[tp] for tp in partitions):
                    return False
            return True

        wait_for(caught_up, timeout, interval=0.5, message=f"{groups} caught up on {topic}")
    finally:
        consumer.close()
        admin.close()


@dataclass
class RunningSupervisor:
    process: subprocess.Popen
    settings: Settings
    env: dict[str, str]

    def status(self) -> dict:
        return read_status(self.settings).get("functions", {})

    def replicas(self, function: str) -> list[dict]:
        return self.status().get(function, {}).get("replicas", [])

    def wait_running(self, function: str, count: int, timeout: float = 60) -> list[dict]:
        def ready():
            replicas = self.replicas(function)
            running = [r for r in replicas if r["state"] == "running"]
            return running if len(replicas) == count and len(running) == count else None

        return wait_for(ready, timeout, message=f"{count} running replica(s) of {function}")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "triptych.cli", *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_supervisor(project_file: Path, data_dir: Path, extra_env: dict[str, str]) -> RunningSupervisor:
    env = {**os.environ, "TRIPTYCH_DATA_DIR": str(data_dir), **extra_env}
    log = open(data_dir / "supervisor.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "triptych.runtime.supervisor", "--project", str(project_file)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    settings = Settings(data_dir=data_dir)
    return RunningSupervisor(process=process, settings=settings, env=env)


def send_json(
    producer,
    topic: str,
    messages: list[dict],
    key_field: str = "id",
    partition: int | None = None,
    pause_s: float = 0.0,
) -> None:
    for message in messages:
        producer.send(
            topic, key=str(message[key_field]).encode(), value=json.dumps(message).encode(), partition=partition
        )
        if pause_s:
            producer.flush()
            time.sleep(pause_s)
    producer.flush()


def start_sink(
    stack: Settings,
    folder: Path,
    replicas: int = 1,
    delivery=None,
    handler: str = "handler",
    partitions: int = 3,
    env: dict[str, str] | None = None,
    waiting=(),
    initial_offset: str = "earliest",
    **declared,
) -> tuple[RunningSupervisor, str, str]:
    """A supervisor running the `sink` test function on a new topic, recording into a
    new table. `waiting`: messages on the topic (partition 0) before it starts;
    `declared`: more `nuclio_function` arguments (max_replicas, wake_when)."""
    from triptych.bus import producer as make_producer
    from triptych.runtime.declare import kafka_trigger
    from triptych.sdk import Delivery

    topic = create_topic(stack, partitions)
    if waiting:
        producer = make_producer(stack)
        send_json(producer, topic, list(waiting), partition=0)
        producer.close()
    table = create_sink_table(stack)
    project = write_project(
        folder,
        {
            "sink": dict(
                source=FUNCTIONS_DIR / "sink.py",
                handler=handler,
                min_replicas=replicas,
                triggers={
                    "in": kafka_trigger(
                        topic,
                        f"sink-{topic}",
                        stack.kafka_url,
                        delivery or Delivery(max_attempts=3, retry_backoff_ms=50),
                        initial_offset=initial_offset,
                    )
                },
                **declared,
            )
        },
    )
    data_dir = folder / "data"
    data_dir.mkdir(exist_ok=True)
    return start_supervisor(project, data_dir, {"SINK_TABLE": table, **(env or {})}), topic, table
