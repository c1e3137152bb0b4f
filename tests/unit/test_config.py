from pathlib import Path

import pytest

from triptych.config import Settings


def test_defaults_are_local_and_managed():
    s = Settings(_env_file=None)
    assert s.kafka_url == "127.0.0.1:9092"
    assert s.s3_url == "http://127.0.0.1:9000"
    assert s.postgres_url == "postgresql://triptych:triptych@127.0.0.1:5432/triptych"
    assert s.mlflow_backend_store_url.endswith("@127.0.0.1:5432/mlflow")
    assert s.mlflow_url == "http://127.0.0.1:5000"
    assert all(s.is_managed(name) for name in ("kafka", "minio", "postgres", "mlflow"))


def test_given_urls_are_used_and_not_managed(monkeypatch):
    monkeypatch.setenv("TRIPTYCH_KAFKA_BOOTSTRAP", "broker:29092")
    monkeypatch.setenv("TRIPTYCH_DATABASE_URL", "postgresql://u:p@db:5432/app")
    s = Settings(_env_file=None)
    assert s.kafka_url == "broker:29092"
    assert not s.is_managed("kafka") and not s.is_managed("postgres")
    assert s.is_managed("minio") and s.is_managed("mlflow")
    assert s.mlflow_backend_store_url == "postgresql://u:p@db:5432/mlflow"


def test_ports_come_from_prefixed_env(monkeypatch):
    monkeypatch.setenv("TRIPTYCH_POSTGRES_PORT", "15432")
    assert Settings(_env_file=None).postgres_url.endswith("@127.0.0.1:15432/triptych")


def test_root_keeps_data_where_the_postgres_user_can_reach_it(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert Settings(_env_file=None).data_dir == Path("/var/lib/triptych")


def test_a_kubernetes_service_link_in_a_port_variable_is_read_as_its_port(monkeypatch):
    """A pod in the release's namespace gets TRIPTYCH_API_PORT=tcp://<ClusterIP>:8000
    from the Service triptych-api; it must not stop every Triptych process there."""
    monkeypatch.setenv("TRIPTYCH_API_PORT", "tcp://10.96.243.84:8001")
    monkeypatch.setenv("TRIPTYCH_MLFLOW_PORT", "tcp://10.96.232.250:5000")
    settings = Settings()
    assert (settings.api_port, settings.mlflow_port) == (8001, 5000)
    monkeypatch.setenv("TRIPTYCH_API_PORT", "http://example:80/not-a-link")
    with pytest.raises(ValueError):
        Settings()
