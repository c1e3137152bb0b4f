"""The compose file must offer the same stack as `triptych up`, on the same ports."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from triptych.config import MINIO_KAFKA_DURABLE_TARGET_ID, MINIO_KAFKA_TARGET_ID, Settings
from triptych.contracts import TOPIC_MINIO_EVENTS, TOPIC_MINIO_EVENTS_DURABLE
from triptych.stack.services.minio import minio_kafka_targets_env

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose" / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def _host_ports(service: dict) -> set[int]:
    return {int(p.split(":")[-2]) for p in service.get("ports", [])}


def test_same_services_and_ports_as_the_native_stack(compose):
    s = Settings(_env_file=None)
    services = compose["services"]
    assert set(services) == {"kafka", "minio", "postgres", "mlflow", "grafana"}
    assert _host_ports(services["kafka"]) == {s.kafka_port}
    assert _host_ports(services["minio"]) == {s.minio_port, s.minio_console_port}
    assert _host_ports(services["postgres"]) == {s.postgres_port}
    assert _host_ports(services["mlflow"]) == {s.mlflow_port}
    assert services["kafka"]["image"] == f"apache/kafka:{s.kafka_version}"
    assert services["postgres"]["image"] == "postgres:15"


def test_minio_publishes_bucket_events_to_the_same_topics_through_the_same_two_targets(compose):
    env = compose["services"]["minio"]["environment"]
    native = minio_kafka_targets_env("kafka:19092", "/queue", Settings(_env_file=None).minio_event_queue_limit)
    assert {k: v for k, v in env.items() if k.startswith("MINIO_NOTIFY_")} == native
    assert native[f"MINIO_NOTIFY_KAFKA_TOPIC_{MINIO_KAFKA_TARGET_ID}"] == TOPIC_MINIO_EVENTS
    assert native[f"MINIO_NOTIFY_KAFKA_TOPIC_{MINIO_KAFKA_DURABLE_TARGET_ID}"] == TOPIC_MINIO_EVENTS_DURABLE
    # Only the durable target queues on disk: the fast one adds no replay delay.
    assert f"MINIO_NOTIFY_KAFKA_QUEUE_DIR_{MINIO_KAFKA_TARGET_ID}" not in native
    assert "/queue" in {v.split(":")[1] for v in compose["services"]["minio"]["volumes"]}


def test_docker_compose_accepts_the_file():
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed here, so `docker compose config` cannot run")
    proc = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_grafana_is_provisioned_with_the_generated_dashboards_over_the_stacks_prometheus(compose):
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: (COMPOSE.parent / v.split(":")[0]).resolve() for v in grafana["volumes"]}
    dashboards = mounts["/var/lib/grafana/dashboards"]
    assert json.loads((dashboards / "triptych.json").read_text())["uid"] == "triptych"
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == Settings(_env_file=None).prometheus_url and grafana["network_mode"] == "host"
    provider = yaml.safe_load((provisioning / "dashboards" / "triptych.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_grafana_dashboard_is_what_its_generator_writes_and_names_only_triptych_metrics():
    root = COMPOSE.parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "infra" / "grafana" / "dashboards.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, (
        "infra/grafana/dashboards/triptych.json is stale: run infra/grafana/dashboards.py\n"
        + proc.stdout[-3000:]
        + proc.stderr[-2000:]
    )
    board = json.loads((root / "infra" / "grafana" / "dashboards" / "triptych.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15 and all("triptych_" in e for e in exprs)
    assert all(p["datasource"]["uid"] == "${datasource}" for p in board["panels"] if p["type"] != "row")
