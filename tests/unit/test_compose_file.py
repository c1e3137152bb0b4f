"""The compose file must offer the same stack as `triptych up`, on the same ports."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from triptych.config import MINIO_KAFKA_TARGET_ID, Settings
from triptych.contracts import TOPIC_MINIO_EVENTS

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose" / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def _host_ports(service: dict) -> set[int]:
    return {int(p.split(":")[-2]) for p in service.get("ports", [])}


def test_same_services_and_ports_as_the_native_stack(compose):
    s = Settings(_env_file=None)
    services = compose["services"]
    assert set(services) == {"kafka", "minio", "postgres", "mlflow"}
    assert _host_ports(services["kafka"]) == {s.kafka_port}
    assert _host_ports(services["minio"]) == {s.minio_port, s.minio_console_port}
    assert _host_ports(services["postgres"]) == {s.postgres_port}
    assert _host_ports(services["mlflow"]) == {s.mlflow_port}
    assert services["kafka"]["image"] == f"apache/kafka:{s.kafka_version}"
    assert services["postgres"]["image"] == "postgres:15"


def test_minio_publishes_bucket_events_to_the_same_topic(compose):
    env = compose["services"]["minio"]["environment"]
    t = MINIO_KAFKA_TARGET_ID
    assert env[f"MINIO_NOTIFY_KAFKA_ENABLE_{t}"] == "on"
    assert env[f"MINIO_NOTIFY_KAFKA_TOPIC_{t}"] == TOPIC_MINIO_EVENTS


def test_docker_compose_accepts_the_file():
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed here, so `docker compose config` cannot run")
    proc = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
