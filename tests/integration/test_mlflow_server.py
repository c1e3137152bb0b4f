"""The MLflow tracking server keeps runs in Postgres and artifacts in MinIO."""

from __future__ import annotations

import uuid

import mlflow
import psycopg2
from mlflow.tracking import MlflowClient

from triptych.storage import minio_client


def test_run_in_postgres_and_artifact_in_minio(stack, tmp_path):
    mlflow.set_tracking_uri(stack.mlflow_url)
    mlflow.set_experiment(f"triptych-tests-{uuid.uuid4().hex[:8]}")
    artifact = tmp_path / "note.txt"
    marker = uuid.uuid4().hex
    artifact.write_text(marker)
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.93)
        mlflow.log_artifact(str(artifact))
    run_id = run.info.run_id

    with psycopg2.connect(stack.mlflow_backend_store_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_uuid = %s", (run_id,))
        assert cur.fetchone() == ("FINISHED",)
        cur.execute("SELECT value FROM metrics WHERE run_uuid = %s AND key = 'accuracy'", (run_id,))
        assert cur.fetchone()[0] == 0.93
    conn.close()

    s3 = minio_client(stack)
    keys = [o.object_name for o in s3.list_objects(stack.mlflow_bucket, recursive=True) if run_id in o.object_name]
    assert any(k.endswith("note.txt") for k in keys), keys
    obj = next(k for k in keys if k.endswith("note.txt"))
    assert s3.get_object(stack.mlflow_bucket, obj).read().decode() == marker
    # And the client reads it back through the server.
    local = MlflowClient(stack.mlflow_url).download_artifacts(run_id, "note.txt", str(tmp_path / "dl"))
    assert open(local).read() == marker
