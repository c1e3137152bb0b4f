"""`triptych provision`, the step the Helm chart's init container runs against
servers started elsewhere: idempotent, it registers the dashboard's key from its
Secret, and it refuses clearly where there is nothing to provision."""

from __future__ import annotations

import secrets

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource

from triptych.contracts import TOPICS
from triptych.db.connection import Database
from triptych.security.keys import ensure_local_key
from triptych.stack.provision import topic_retention

from .conftest import triptych
from .runtime_helpers import query


def test_provision_sets_up_given_servers_and_adopts_the_dashboard_key(stack):
    key = f"tpk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    given = {
        "TRIPTYCH_KAFKA_BOOTSTRAP": stack.kafka_url,
        "TRIPTYCH_S3_ENDPOINT": stack.s3_url,
        "TRIPTYCH_DATABASE_URL": stack.postgres_url,
        "TRIPTYCH_MLFLOW_TRACKING_URI": stack.mlflow_url,
        "TRIPTYCH_DASHBOARD_API_KEY": key,
    }
    try:
        for _ in range(2):  # every rollout runs it again: nothing changes the second time
            proc = triptych("provision", "--timeout", "60", env=given)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        said = " ".join(proc.stderr.split())  # rich wraps its lines
        assert "topics created: none (all there)" in said and "up to date" in said
        # Every topic is bounded in time and size (Kafka's own default keeps 7 days, unbounded).
        admin = KafkaAdminClient(bootstrap_servers=stack.kafka_url)
        try:
            described = admin.describe_configs([ConfigResource("TOPIC", name) for name, _ in TOPICS])
        finally:
            admin.close()
        for name, _ in TOPICS:
            config = {key: entry["value"] for key, entry in described["topic"][name].items()}
            assert config["retention.ms"] == topic_retention(name, stack)["retention.ms"], name
            assert int(config["retention.bytes"]) == stack.kafka_retention_mb_per_partition * 2**20
            assert config["min.insync.replicas"] == str(stack.kafka_min_insync_replicas)  # kept, not reset
        rows = query(stack, "SELECT key_id, scopes FROM api_keys WHERE name = 'dashboard' AND revoked_at IS NULL")
        assert rows == [(key.split("_")[1], ["upload", "label"])]

        refused = triptych("provision", "--timeout", "5", env={**given, "TRIPTYCH_DASHBOARD_API_KEY": "not-a-key"})
        assert refused.returncode == 1 and "not a Triptych key" in " ".join(refused.stderr.split())
    finally:
        # Adopting revoked the test stack's own dashboard key: its dashboard (which reads the key
        # file on each upload) gets a new one, as `triptych up` would make it.
        db = Database(stack)
        try:
            db.transaction(
                lambda cur: (
                    cur.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (key.split("_")[1],)),
                    ensure_local_key(cur, stack, "dashboard"),
                )
            )
        finally:
            db.close()


def test_provision_refuses_servers_it_would_have_to_start():
    proc = triptych(
        "provision", env={"TRIPTYCH_KAFKA_BOOTSTRAP": "", "TRIPTYCH_S3_ENDPOINT": "", "TRIPTYCH_DATABASE_URL": ""}
    )
    said = " ".join(proc.stderr.split())  # rich wraps its lines
    assert proc.returncode == 1
    assert "no address is set for kafka, minio, postgres" in said and "`triptych up` starts" in said
