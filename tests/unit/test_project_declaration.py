"""The committed project.yaml is what projects/triptych_project.py declares, and
the local runner and the Nuclio config read the same triggers from it."""

import os
import subprocess
import sys

import pytest

from projects.triptych_project import ROOT
from triptych.runtime.deploy import DeployError, deploy_project, nuclio_function_config
from triptych.runtime.spec import HttpTriggerSpec, KafkaTriggerSpec, load_functions

PROJECT = ROOT / "project.yaml"
EXPECTED = {
    "upload",
    "ingest",
    "infer-resnet50",
    "infer-mobilenet-v2",
    "infer-efficientnet-b0",
    "aggregate",
    "retrain",
    "infer-shadow",
    "infer-int8",
    "jobs",
}
JOBS = {"gather", "train", "data-quality", "metrics", "shadow-gate", "drift"}


def test_project_yaml_is_up_to_date_with_the_declaration():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "projects" / "triptych_project.py"), "--check"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")},
    )
    assert proc.returncode == 0, f"project.yaml is stale; run `python projects/triptych_project.py`\n{proc.stdout}"


def test_runner_reads_every_function_with_its_triggers():
    functions = load_functions(PROJECT)
    assert set(functions) == EXPECTED
    infer = [functions[f"infer-{m}"] for m in ("resnet50", "mobilenet-v2", "efficientnet-b0")]
    assert {f.source for f in infer} == {ROOT / "functions" / "infer" / "handler.py"}
    groups = {f.kafka_triggers[0].consumer_group for f in infer}
    assert len(groups) == 3, "each inference function has its own consumer group"
    assert all(f.kafka_triggers[0].topics == ("images-input-stream",) for f in infer)
    assert {f.env["TRIPTYCH_MODEL_NAME"] for f in infer} == {"resnet50", "mobilenet_v2", "efficientnet_b0"}
    assert functions["aggregate"].kafka_triggers[0].delivery.batch_size > 1
    assert isinstance(functions["upload"].triggers[0], HttpTriggerSpec)
    assert {type(t).__name__ for t in functions["retrain"].triggers} == {"HttpTriggerSpec", "CronTriggerSpec"}
    assert isinstance(functions["ingest"].triggers[0], KafkaTriggerSpec)
    shadow = functions["infer-shadow"]
    assert shadow.env["TRIPTYCH_MODEL_ROLE"] == "shadow" and shadow.source == infer[0].source
    # Its own group, from the newest offset: a shadow phase judges what arrives from now on.
    assert (
        shadow.kafka_triggers[0].consumer_group == "infer-shadow"
        and shadow.kafka_triggers[0].initial_offset == "latest"
    )
    int8 = functions["infer-int8"]
    assert int8.env["TRIPTYCH_MODEL_ROLE"] == "int8" and int8.source == infer[0].source
    assert int8.wake_when == "int8" and int8.kafka_triggers[0].consumer_group == "infer-int8"
    assert {t.name for t in functions["jobs"].triggers} == {"shadow-gate", "drift", "metrics", "data-quality"}


def test_the_project_declares_the_retrain_workflow_and_its_jobs():
    import yaml

    raw = yaml.safe_load(PROJECT.read_text())["spec"]
    jobs = {f["name"]: f["spec"] for f in raw["functions"] if f["spec"]["kind"] == "job"}
    assert set(jobs) == JOBS
    for spec in jobs.values():
        assert (ROOT / spec["spec"]["build"]["origin_filename"]).exists()
    workflow = next(w for w in raw["workflows"] if w["name"] == "retrain")
    source = (ROOT / workflow["path"]).read_text()
    assert "def kfpipeline(" in source and "import kfp" not in source  # runs with the local and the kfp engine


def test_nuclio_config_carries_triggers_handler_env_replicas_and_resources():
    config = nuclio_function_config(PROJECT, "infer-resnet50")
    spec = config["spec"]
    assert config["metadata"]["name"] == "infer-resnet50"
    assert spec["handler"] == "handler:handler"
    trigger = spec["triggers"]["images"]
    assert trigger["kind"] == "kafka-cluster"
    assert trigger["attributes"]["topics"] == ["images-input-stream"]
    assert trigger["attributes"]["consumerGroup"] == "infer-resnet50"
    assert trigger["attributes"]["version"] == "3.9.0"
    assert {"name": "TRIPTYCH_MODEL_NAME", "value": "resnet50"} in spec["env"]
    # The heaviest model: two replicas keep pace; up to one per partition of its topic.
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
    assert spec["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert spec["build"]["functionSourceCode"]


def test_deploy_refuses_without_an_mlrun_api(monkeypatch):
    monkeypatch.delenv("MLRUN_DBPATH", raising=False)
    with pytest.raises(DeployError, match="MLRUN_DBPATH"):
        list(deploy_project(PROJECT, "http://nuclio:8070", "registry.test/triptych:1"))


def test_no_kafka_triggered_function_may_scale_past_the_partitions_of_its_topics():
    from triptych.contracts import TOPICS
    from triptych.runtime.spec import load_functions

    partitions = dict(TOPICS)
    for spec in load_functions(PROJECT).values():
        for trigger in spec.kafka_triggers:
            most = min(partitions[t] for t in trigger.topics)
            assert (spec.max_replicas or spec.replicas) <= most, f"{spec.name} may run more replicas than {most}"
