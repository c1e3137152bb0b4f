"""Migrations are idempotent and every unique key makes replays harmless."""

from __future__ import annotations

import subprocess
import uuid

import psycopg2
import pytest
from psycopg2 import errors

from triptych.db.migrate import available_migrations, migrate


def _schema_dump(stack) -> str:
    out = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", stack.postgres_url], capture_output=True, text=True, check=True
    ).stdout
    # Comments and pg_dump's per-run random \restrict key are not schema.
    return "\n".join(line for line in out.splitlines() if not line.startswith(("--", "\\restrict", "\\unrestrict")))


def test_migrations_twice_change_nothing(stack):
    before = _schema_dump(stack)
    assert migrate(stack.postgres_url) == []
    assert migrate(stack.postgres_url) == []
    assert _schema_dump(stack) == before
    with psycopg2.connect(stack.postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [v for (v,) in cur.fetchall()] == [m.version for m in available_migrations()]
    conn.close()


def test_schema_objects_exist(stack):
    with psycopg2.connect(stack.postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public'")
        kinds = dict(cur.fetchall())
        cur.execute("SELECT proname FROM pg_proc WHERE proname = 'log_system_event'")
        functions = cur.fetchall()
    conn.close()
    for table in ("images", "predictions", "model_comparisons", "model_metrics", "system_events"):
        assert kinds.get(table) == "BASE TABLE", table
    for view in ("model_stats", "recent_predictions", "model_performance_comparison"):
        assert kinds.get(view) == "VIEW", view
    assert functions == [("log_system_event",)]


def _insert_image(cur, key: str, sha: str = "a" * 64, version: str = "") -> uuid.UUID:
    image_id = uuid.uuid4()
    cur.execute(
        """INSERT INTO images (image_id, bucket, object_key, object_version, sha256, filename, size_bytes, source,
                               ground_truth_label)
           VALUES (%s, 'images', %s, %s, %s, 'x.png', 10, 'upload', 'cat')""",
        (str(image_id), key, version, sha),
    )
    return image_id


@pytest.fixture()
def cur(stack):
    conn = psycopg2.connect(stack.postgres_url)
    conn.autocommit = False
    cursor = conn.cursor()
    yield cursor
    conn.rollback()  # nothing a test writes here stays
    conn.close()


def _expect_unique_violation(cur, statement: str, params: tuple) -> None:
    cur.execute("SAVEPOINT dup")
    with pytest.raises(errors.UniqueViolation):
        cur.execute(statement, params)
    cur.execute("ROLLBACK TO SAVEPOINT dup")


def test_image_unique_by_object_version_and_sha(cur):
    key = f"k-{uuid.uuid4()}"
    _insert_image(cur, key)
    _expect_unique_violation(
        cur,
        """INSERT INTO images (image_id, bucket, object_key, object_version, sha256, filename, size_bytes)
           VALUES (%s, 'images', %s, '', %s, 'x.png', 10)""",
        (str(uuid.uuid4()), key, "a" * 64),
    )
    # Same key, new bytes (an overwrite) or a new version: a new image.
    _insert_image(cur, key, sha="b" * 64)
    _insert_image(cur, key, version="v2")


def test_prediction_unique_by_image_model_version(cur):
    image_id = _insert_image(cur, f"k-{uuid.uuid4()}")
    insert = """INSERT INTO predictions (image_id, model_name, model_version, predicted_class, confidence, inference_ms)
                VALUES (%s, %s, %s, 'cat', 0.9, 12.5)"""
    cur.execute(insert, (str(image_id), "resnet50", "1"))
    _expect_unique_violation(cur, insert, (str(image_id), "resnet50", "1"))
    cur.execute(insert, (str(image_id), "resnet50", "2"))  # a new model version answers beside the old


def test_comparison_unique_by_image_and_model_set(cur):
    image_id = _insert_image(cur, f"k-{uuid.uuid4()}")
    insert = """INSERT INTO model_comparisons (image_id, model_set, model_versions, agreement_level, agreement_ratio,
                                               per_model)
                VALUES (%s, %s, '{}', 'all', 1.0, '{}')"""
    cur.execute(insert, (str(image_id), "a@1,b@1,c@1"))
    _expect_unique_violation(cur, insert, (str(image_id), "a@1,b@1,c@1"))


def test_model_metrics_unique_by_window(cur):
    insert = """INSERT INTO model_metrics (model_name, model_version, window_start, window_seconds, prediction_count)
                VALUES ('resnet50', '1', '2026-01-01T00:00:00Z', 60, 3)"""
    cur.execute(insert, ())
    _expect_unique_violation(cur, insert, ())


def test_system_event_dedup_key(cur):
    key = f"dlq:test:0:{uuid.uuid4()}"
    cur.execute("SELECT log_system_event('dead_letter', 'error', 'tests', 'boom', '{}', NULL, %s)", (key,))
    first = cur.fetchone()[0]
    cur.execute("SELECT log_system_event('dead_letter', 'error', 'tests', 'boom again', '{}', NULL, %s)", (key,))
    assert cur.fetchone()[0] == first
    _expect_unique_violation(
        cur,
        "INSERT INTO system_events (event_type, component, message, dedup_key) VALUES ('x', 'tests', 'm', %s)",
        (key,),
    )


def test_checks_reject_bad_values(cur):
    cur.execute("SAVEPOINT bad")
    with pytest.raises(errors.CheckViolation):
        cur.execute(
            """INSERT INTO images (image_id, bucket, object_key, sha256, filename, size_bytes)
               VALUES (%s, 'images', 'k', 'not-a-sha', 'x', 1)""",
            (str(uuid.uuid4()),),
        )
    cur.execute("ROLLBACK TO SAVEPOINT bad")


def test_a_bad_value_in_a_system_event_fails_at_once_not_after_a_minute_of_retries(stack):
    from triptych.db.events import log_system_event

    with pytest.raises(psycopg2.DataError):
        log_system_event("test", "info", "tests", "a bad image id", image_id="not-a-uuid", settings=stack)
    assert log_system_event.statistics["attempt_number"] == 1, "a data error is not retried"


def test_a_system_event_is_retried_while_postgres_cannot_be_reached(stack):
    from tenacity import stop_after_attempt

    from triptych.db.events import log_system_event

    unreachable = stack.model_copy(update={"postgres_port": 1, "database_url": None})
    retrying = log_system_event.retry_with(stop=stop_after_attempt(3), wait=lambda _state: 0)
    with pytest.raises(psycopg2.OperationalError):
        retrying("test", "info", "tests", "nowhere to go", settings=unreachable)
    assert retrying.statistics["attempt_number"] == 3
