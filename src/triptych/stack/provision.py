"""What `triptych up` sets up inside the servers once they run: the database role,
databases and schema; the Kafka topics; the buckets and MinIO's bucket
notification to Kafka. Every step is idempotent, so `up` can run any number of times."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import psycopg2
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource
from kafka.errors import KafkaError, UnknownBrokerIdError
from minio import Minio
from minio.error import S3Error
from minio.notificationconfig import NotificationConfig, QueueConfig
from psycopg2 import sql

from ..bus import admin_client
from ..config import MINIO_KAFKA_DURABLE_TARGET_ID, MINIO_KAFKA_TARGET_ID, Settings
from ..contracts import TOPIC_DEAD_LETTERS, TOPIC_MODEL_UPDATES, TOPICS
from ..db.migrate import migrate
from ..errors import StackError
from ..security.bucket_policies import S3_COMPONENTS, provision_users
from ..security.db_roles import ensure_password_files, provision_logins, read_password_files
from ..security.kafka_acls import KAFKA_USERS, provision_kafka_users
from ..storage import minio_client
from .services import Postgres


def provision_postgres(settings: Settings, postgres: Postgres) -> None:
    """Create the role and both databases on a managed server (superuser over the socket)."""
    if not postgres.managed:
        _ensure_external_mlflow_db(settings)
        return
    conn = psycopg2.connect(dbname="postgres", **postgres.superuser_dsn())
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.postgres_user,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(settings.postgres_user)),
                    (settings.postgres_password,),
                )
            # Each component's own login, before the migrations grant it its rights.
            provision_logins(cur, ensure_password_files(settings.credentials_path))
            for db in (settings.postgres_db, settings.mlflow_db):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(db), sql.Identifier(settings.postgres_user)
                        )
                    )
    finally:
        conn.close()


def _ensure_external_mlflow_db(settings: Settings) -> None:
    conn = psycopg2.connect(settings.postgres_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.mlflow_db,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.mlflow_db)))
                except psycopg2.Error as exc:
                    raise StackError(
                        f"MLflow needs a database `{settings.mlflow_db}` on {settings.postgres_url.split('@')[-1]}, "
                        f"and it could not be created ({exc.pgerror or exc}). Create it, or grant CREATEDB."
                    ) from exc
    finally:
        conn.close()


def provision_schema(settings: Settings) -> list[str]:
    return [f"{m.version:04d}_{m.name}" for m in migrate(settings.postgres_url)]


def provision_local_keys(settings: Settings) -> dict[str, Path]:
    """The local stack's own API keys (one for the person at the keyboard, one for
    the dashboard), each in a file only its owner reads; made once, kept after."""
    from ..db.connection import Database
    from ..security.keys import LOCAL_KEYS, ensure_local_key

    db = Database(settings)
    try:
        return {name: db.transaction(partial(ensure_local_key, settings=settings, name=name)) for name in LOCAL_KEYS}
    finally:
        db.close()


def _wait_for_brokers(admin: KafkaAdminClient, wanted: int, timeout_s: float = 120) -> None:
    """Brokers of a cluster start together; a topic replicated on `wanted` of them
    can be created only once that many have registered."""
    deadline = time.monotonic() + timeout_s
    while (seen := len(admin.describe_cluster()["brokers"])) < wanted:
        if time.monotonic() > deadline:
            raise StackError(
                f"only {seen} Kafka broker(s) registered after {timeout_s:.0f}s; topics are replicated "
                f"on {wanted} (TRIPTYCH_KAFKA_REPLICATION_FACTOR): start the other brokers"
            )
        time.sleep(1)


def _transient(exc: KafkaError) -> bool:
    """What a cluster whose brokers are still joining answers for a moment: a
    controller not in the metadata yet (UnknownBrokerId), a node not ready..."""
    return exc.retriable or isinstance(exc, UnknownBrokerIdError)


def provision_topics(settings: Settings, timeout_s: float = 60) -> list[str]:
    """Create missing topics; grow any that has fewer partitions than declared.
    Several brokers' `up` run this at once while they join: a transient answer is
    tried again, with a fresh client, until `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return _provision_topics(settings)
        except KafkaError as exc:
            if not _transient(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1)


def _provision_topics(settings: Settings) -> list[str]:
    admin = admin_client(settings, client_id="triptych-provision")
    try:
        _wait_for_brokers(admin, settings.kafka_replication_factor)
        existing = set(admin.list_topics())
        missing = {
            name: {
                "num_partitions": partitions,
                "replication_factor": settings.kafka_replication_factor,
                "configs": {
                    "min.insync.replicas": str(settings.kafka_min_insync_replicas),
                    **topic_retention(name, settings),
                },
            }
            for name, partitions in TOPICS
            if name not in existing
        }
        if missing:
            # raise_errors=False: a topic created meanwhile by a concurrent `up` is fine.
            admin.create_topics(missing, raise_errors=False, wait_for_metadata=True)
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([n for n, _ in TOPICS])}
        # A topic another broker's `up` created a moment ago may show no partitions yet:
        # only a topic seen with fewer than declared is grown, and "already has" is fine.
        grow = {name: partitions for name, partitions in TOPICS if 0 < described.get(name, partitions) < partitions}
        if grow:
            admin.create_partitions(grow, raise_errors=False)
        # Topics made before retention was set (or with other settings) get it now.
        admin.alter_configs(
            [ConfigResource("TOPIC", name, topic_retention(name, settings)) for name, _ in TOPICS if name in existing]
        )
    finally:
        admin.close()
    return sorted(missing)


def topic_retention(topic: str, settings: Settings) -> dict[str, str]:
    """Time and size bounds, so that disk stays flat at a steady rate (issue 27)."""
    hours = 24 * 7 if topic in KEEP_A_WEEK else settings.kafka_retention_hours
    return {
        "retention.ms": str(int(hours * 3_600_000)),
        "retention.bytes": str(settings.kafka_retention_mb_per_partition * 2**20),
        # Kafka deletes whole segments: 1 GB ones (its default) would never roll at a laptop's rate.
        "segment.bytes": str(min(64, settings.kafka_retention_mb_per_partition // 4) * 2**20),
    }


KEEP_A_WEEK = (TOPIC_DEAD_LETTERS, TOPIC_MODEL_UPDATES)  # small, and read long after they were written


def provision_kafka_logins(settings: Settings, make_missing: bool = True) -> None:
    """Each part's Kafka user and ACLs (triptych.security.kafka_acls), when Kafka asks
    for logins: the passwords made where missing under `credentials_dir/kafka` on a
    local stack; on Kubernetes the chart mounts a Secret each."""
    if settings.kafka_login is None:
        return
    passwords = (ensure_password_files if make_missing else read_password_files)(
        settings.credentials_path, "kafka", KAFKA_USERS
    )
    provision_kafka_users(settings, passwords)


def provision_buckets(settings: Settings) -> None:
    client = minio_client(settings)
    for bucket in (settings.images_bucket, settings.mlflow_bucket, settings.datasets_bucket, settings.reports_bucket):
        if not client.bucket_exists(bucket):
            try:
                client.make_bucket(bucket)
            except S3Error as exc:  # another node of a distributed MinIO made it meanwhile
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
    _set_images_notification(client, settings)


def provision_bucket_users(settings: Settings, make_missing: bool = True) -> None:
    """Each component's own MinIO user and policy (triptych.security.bucket_policies),
    with the secret keys under `credentials_dir/s3`: made where missing on a local
    stack; on Kubernetes the chart mounts a Secret each, and none mounted, none made."""
    keys = (ensure_password_files if make_missing else read_password_files)(
        settings.credentials_path, "s3", S3_COMPONENTS
    )
    if keys:
        provision_users(settings, keys)


def _set_images_notification(client: Minio, settings: Settings) -> None:
    # Both targets get every object-created event (see stack.services.minio.minio_kafka_targets_env).
    config = NotificationConfig(
        queue_config_list=[
            QueueConfig(queue=f"arn:minio:sqs::{target}:kafka", events=["s3:ObjectCreated:*"], config_id=config_id)
            for target, config_id in (
                (MINIO_KAFKA_TARGET_ID, "triptych-ingest"),
                (MINIO_KAFKA_DURABLE_TARGET_ID, "triptych-ingest-durable"),
            )
        ]
    )
    try:
        client.set_bucket_notification(settings.images_bucket, config)
    except Exception as exc:  # noqa: BLE001 - re-raised with the fix spelled out
        raise StackError(
            f"MinIO refused the Kafka notifications for bucket `{settings.images_bucket}` ({exc}). "
            f"The MinIO server must be started with both Kafka targets, {MINIO_KAFKA_TARGET_ID} and "
            f"{MINIO_KAFKA_DURABLE_TARGET_ID} (MINIO_NOTIFY_KAFKA_ENABLE_<id>=on, MINIO_NOTIFY_KAFKA_BROKERS_<id> "
            f"pointing at Kafka, a QUEUE_DIR for {MINIO_KAFKA_DURABLE_TARGET_ID}; the compose file does this)."
        ) from exc


def provision_servers(settings: Settings, timeout_s: float = 300) -> dict[str, list[str]]:
    """Set up servers this host did not start (on Kubernetes, the chart's init
    container runs it): MLflow's database, the schema, the topics, the buckets and
    the bucket's notifications. Servers that are still starting are waited for, up
    to `timeout_s`: on a cluster everything comes up at once."""
    if local := [name for name in ("kafka", "minio", "postgres") if settings.is_managed(name)]:
        raise StackError(
            f"`provision` sets up servers that are already running; no address is set for "
            f"{', '.join(local)} (TRIPTYCH_KAFKA_BOOTSTRAP, TRIPTYCH_S3_ENDPOINT, "
            f"TRIPTYCH_DATABASE_URL). On this host, `triptych up` starts and sets them up."
        )
    from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

    until_up = retry(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(2),
        reraise=True,
        retry=retry_if_exception_type((psycopg2.OperationalError, OSError)),
    )
    until_up(_ensure_external_mlflow_db)(settings)
    migrations = until_up(provision_schema)(settings)
    _component_logins(settings)
    topics = provision_topics(settings, timeout_s)
    provision_kafka_logins(settings, make_missing=False)
    until_up(provision_buckets)(settings)
    provision_bucket_users(settings, make_missing=False)
    if settings.dashboard_api_key:
        _adopt_dashboard_key(settings)
    return {"migrations": migrations, "topics": topics}


def _component_logins(settings: Settings) -> None:
    """Each component's role a login with the password mounted for it (the chart mounts
    every component's Secret under TRIPTYCH_CREDENTIALS_DIR), when the owner may manage
    roles. Otherwise nothing is changed: the roles are someone else's to manage
    (CloudNativePG's managed roles, a DBA's; a local stack's are made by `triptych up`
    as the server's superuser)."""
    passwords = read_password_files(settings.credentials_path)
    if not passwords:
        return
    conn = psycopg2.connect(settings.postgres_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
            if cur.fetchone()[0]:
                provision_logins(cur, passwords)
    finally:
        conn.close()


def _adopt_dashboard_key(settings: Settings) -> None:
    key = settings.dashboard_api_key
    assert key is not None  # the caller adopts only a key that is set
    from ..db.connection import Database
    from ..security.keys import adopt_key

    db = Database(settings)
    try:
        db.transaction(lambda cur: adopt_key(cur, "dashboard", key.get_secret_value()))
    finally:
        db.close()


def _superuser(settings: Settings):
    conn = psycopg2.connect(dbname="postgres", **Postgres(settings).superuser_dsn())
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return conn


def fresh_database(settings: Settings, name: str) -> str:
    """A new, empty, migrated database `name` on the managed server (dropped first
    if it exists), owned by Triptych's role; returns its URL. For benchmarks and
    tests that need a database of their own beside the stack's."""
    conn = _superuser(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(settings.postgres_user)
                )
            )
    finally:
        conn.close()
    url = settings.postgres_url.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    return url


def drop_database(settings: Settings, name: str) -> None:
    conn = _superuser(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()
