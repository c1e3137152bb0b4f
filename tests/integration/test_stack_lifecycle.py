"""`triptych up | status | down` against the real servers."""

from __future__ import annotations

import io
import uuid

import psycopg2
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from triptych.contracts import TOPIC_MODEL_UPDATES, TOPICS
from triptych.storage import minio_client

from .conftest import stack_status, triptych

SERVICES = {"postgres", "kafka", "minio", "mlflow", "api", "dashboard", "prometheus", "alertmanager", "functions"}
SERVERS = SERVICES - {"functions"}  # the test stack runs no function supervisor


def test_status_reports_every_service_up(stack):
    status = stack_status()
    assert set(status) == SERVICES
    assert status["functions"]["state"] == "disabled"
    for name in SERVERS:
        entry = status[name]
        assert entry["state"] == "up", (name, entry)
        assert entry["managed"] is True
        assert entry["pid"] and entry["rss_mb"] > 0
        assert entry["data_dir"].startswith(str(stack.data_dir))
    assert status["kafka"]["url"] == "127.0.0.1:19092"
    assert status["kafka"]["version"] == stack.kafka_version
    assert status["postgres"]["version"].startswith("15.")
    assert status["dashboard"]["url"] == "http://127.0.0.1:18050"
    assert status["api"]["url"] == "http://127.0.0.1:18000"
    assert status["prometheus"]["url"] == "http://127.0.0.1:19090" and status["prometheus"]["version"].startswith("2.")
    assert status["alertmanager"]["url"] == "http://127.0.0.1:19095"
    assert "***" in status["postgres"]["url"], "the password must not be printed"


def test_up_keeps_its_own_keys_in_files_only_their_owner_reads(stack):
    from triptych.db.connection import Database
    from triptych.security.keys import LOCAL_KEYS, find_key, key_file

    for name, scopes in LOCAL_KEYS.items():
        path = key_file(stack, name)
        assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
        key = Database(stack).transaction(lambda cur, path=path: find_key(cur, path.read_text().strip()))
        assert key is not None and key.revoked_at is None and key.scopes == scopes and key.name == name
    before = {name: key_file(stack, name).read_text() for name in LOCAL_KEYS}
    assert triptych("up").returncode == 0
    assert {name: key_file(stack, name).read_text() for name in LOCAL_KEYS} == before  # kept, not remade


def test_second_up_is_a_noop(stack):
    before = {name: entry["pid"] for name, entry in stack_status().items()}
    proc = triptych("up")
    assert proc.returncode == 0, proc.stderr
    assert "already up" in proc.stderr
    after = {name: entry["pid"] for name, entry in stack_status().items()}
    assert before == after


def test_topics_exist_with_declared_partitions(stack):
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_url)
    try:
        for name, partitions in TOPICS:
            assert len(consumer.partitions_for_topic(name) or ()) == partitions, name
    finally:
        consumer.close()


def test_down_then_up_keeps_row_object_and_message(stack):
    marker = f"persist-{uuid.uuid4()}"
    with psycopg2.connect(stack.postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT log_system_event('test', 'info', 'tests', %s)", (marker,))
    conn.close()
    s3 = minio_client(stack)
    s3.put_object(stack.mlflow_bucket, f"tests/{marker}.txt", io.BytesIO(marker.encode()), len(marker))
    producer = KafkaProducer(bootstrap_servers=stack.kafka_url, acks="all")
    sent = producer.send(TOPIC_MODEL_UPDATES, key=marker.encode(), value=marker.encode()).get(timeout=10)
    producer.close()

    down = triptych("down")
    assert down.returncode == 0, down.stderr
    assert all(stack_status()[name]["state"] == "down" for name in SERVERS)
    up = triptych("up")
    assert up.returncode == 0, up.stderr

    with psycopg2.connect(stack.postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM system_events WHERE message = %s", (marker,))
        assert cur.fetchone()[0] == 1
    conn.close()
    assert s3.get_object(stack.mlflow_bucket, f"tests/{marker}.txt").read() == marker.encode()
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_url, enable_auto_commit=False)
    tp = TopicPartition(TOPIC_MODEL_UPDATES, sent.partition)
    consumer.assign([tp])
    consumer.seek(tp, sent.offset)
    records = consumer.poll(timeout_ms=10000, max_records=1)
    consumer.close()
    assert [r.value for r in records.get(tp, [])] == [marker.encode()]
