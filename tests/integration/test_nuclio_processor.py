"""Triptych handlers, unchanged, under the real Nuclio processor (built from
Nuclio's Go module), run by the supervisor with `functions_runtime = "nuclio"`
and fed by Nuclio's own Kafka and cron triggers from our declaration: the
delivery wrapper retries, dead-letters once and lets the neighbours through."""

from __future__ import annotations

import json

from triptych.bus import producer as make_producer
from triptych.db.events import events_by_dedup_prefix
from triptych.runtime.declare import cron_trigger, kafka_trigger
from triptych.runtime.deploy import nuclio_function_config
from triptych.runtime.dlq import read_dead_letters
from triptych.runtime.nuclio_processor import install_processor
from triptych.sdk import Delivery

from .runtime_helpers import (
    FUNCTIONS_DIR,
    create_sink_table,
    create_topic,
    query,
    send_json,
    start_supervisor,
    wait_for,
    write_project,
)


def test_retries_dead_letters_and_cron_under_the_nuclio_processor(stack, tmp_path):
    install_processor(stack)  # built once, cached: not part of the replica's start-up below
    topic = create_topic(stack, partitions=1)
    table = create_sink_table(stack)
    poison_file = tmp_path / "poison-on"
    poison_file.touch()
    project = write_project(
        tmp_path,
        {
            "sink": dict(
                source=FUNCTIONS_DIR / "sink.py",
                triggers={
                    "in": kafka_trigger(
                        topic, f"nuclio-{topic}", stack.kafka_url, Delivery(max_attempts=3, retry_backoff_ms=50)
                    ),
                    "tick": cron_trigger(interval="1s", body=json.dumps({"id": "tick"})),
                },
            )
        },
    )
    config = nuclio_function_config(project, "sink")
    assert config["spec"]["handler"] == "sink:handler"
    assert config["spec"]["triggers"]["in"]["explicitAckMode"] == "disable"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    sup = start_supervisor(
        project,
        data_dir,
        {"SINK_TABLE": table, "SINK_POISON_FILE": str(poison_file), "TRIPTYCH_FUNCTIONS_RUNTIME": "nuclio"},
    )
    try:
        (replica,) = sup.wait_running("sink", 1, timeout=180)
        assert sup.status() and json.loads((data_dir / "functions" / "status.json").read_text())["runtime"] == "nuclio"
        producer = make_producer(stack)
        messages = [
            {"id": "n0"},
            {"id": "n1"},
            {"id": "poison", "poison": True},
            {"id": "flaky", "fail_attempts": 2},
            {"id": "n4"},
        ]
        send_json(producer, topic, messages, partition=0)
        producer.close()

        rows = wait_for(
            lambda: (
                (
                    r := query(
                        stack,
                        f"SELECT id, worker, off, attempt, deliveries FROM {table} WHERE id <> 'tick' ORDER BY off",
                    )
                )
                and len(r) == 4
                and r
            ),
            90,
            message=f"4 events through Nuclio (log: {replica['log']})",
        )
        assert [(r[0], r[2]) for r in rows] == [("n0", 0), ("n1", 1), ("flaky", 3), ("n4", 4)]
        assert {r[1] for r in rows} == {"sink-0"}
        assert [r[3] for r in rows] == [1, 1, 3, 1], "flaky succeeded on its third attempt: retried in the handler"
        assert all(r[4] == 1 for r in rows)

        letters = wait_for(
            lambda: [d for d in read_dead_letters(stack, "sink") if d.letter.origin.topic == topic],
            30,
            message="the dead letter",
        )
        assert len(letters) == 1
        letter = letters[0].letter
        assert (letter.origin.partition, letter.origin.offset, letter.attempts) == (0, 2, 3)
        assert letter.consumer_group == f"nuclio-{topic}" and json.loads(letter.value())["id"] == "poison"
        assert letter.dedup_key in events_by_dedup_prefix(letter.dedup_key, stack)

        ticks = wait_for(
            lambda: (r := query(stack, f"SELECT deliveries FROM {table} WHERE id = 'tick'")) and r[0][0] >= 2 and r,
            30,
            message="two cron ticks",
        )
        assert ticks[0][0] >= 2
    finally:
        sup.stop()
    assert sup.process.returncode == 0
