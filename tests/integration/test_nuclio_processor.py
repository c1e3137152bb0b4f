"""A Triptych handler, unchanged, under the real Nuclio processor (built from
Nuclio's Go module), fed by its real Kafka trigger from our declaration."""

from __future__ import annotations

import json
import subprocess
import sys

from triptych.bus import producer as make_producer
from triptych.runtime.declare import kafka_trigger
from triptych.runtime.deploy import nuclio_function_config
from triptych.runtime.nuclio_processor import install_processor, processor_environment, write_processor_configs

from .pipeline_helpers import free_port
from .runtime_helpers import FUNCTIONS_DIR, create_sink_table, create_topic, query, wait_for, write_project


def test_handler_runs_unchanged_under_the_nuclio_processor(stack, tmp_path):
    binary, wrapper = install_processor(stack)  # built once, cached
    topic = create_topic(stack, partitions=1)
    table = create_sink_table(stack)
    project = write_project(tmp_path, {"sink": dict(
        source=FUNCTIONS_DIR / "sink.py", env={"SINK_TABLE": table, "TRIPTYCH_WORKER_ID": "nuclio-processor"},
        triggers={"in": kafka_trigger(topic, f"nuclio-{topic}", stack.kafka_url)},
    )})
    config = nuclio_function_config(project, "sink")
    assert config["spec"]["handler"] == "sink:handler"
    processor_yaml, platform_yaml = write_processor_configs(config, tmp_path / "nuclio", free_port(), free_port())
    env = processor_environment(config, wrapper, sys.executable, FUNCTIONS_DIR)
    log_path = tmp_path / "processor.log"
    with open(log_path, "wb") as log:
        processor = subprocess.Popen([str(binary), "--config", str(processor_yaml), "--platform-config",
                                      str(platform_yaml)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        producer = make_producer(stack)
        for i in range(3):
            producer.send(topic, key=f"n{i}".encode(), value=json.dumps({"id": f"n{i}"}).encode())
        producer.flush()
        producer.close()
        rows = wait_for(lambda: (r := query(stack, f"SELECT id, worker, off FROM {table} ORDER BY id")) and
                        len(r) == 3 and r, 90, message=f"3 events through Nuclio (log: {log_path})")
        assert [r[0] for r in rows] == ["n0", "n1", "n2"]
        assert {r[1] for r in rows} == {"nuclio-processor"} and sorted(r[2] for r in rows) == [0, 1, 2]
        assert processor.poll() is None, "the processor is still serving"
    finally:
        processor.terminate()
        processor.wait(timeout=30)
