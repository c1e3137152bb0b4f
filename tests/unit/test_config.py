from pathlib import Path

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
