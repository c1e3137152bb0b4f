"""Kafka's logins and ACLs against a real broker: one the project's own Kafka service
starts with `kafka_sasl` (SCRAM on its client listener, the StandardAuthorizer), on
ports of its own beside the test stack's. Each part may do its work and nothing
else; a refused write leaves every topic as it was (issue 36)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka import TopicPartition
from kafka.errors import KafkaError

from triptych.bus import GroupLag, PublishError, admin_client, consumer, group_consumer, login_config, producer
from triptych.config import REPO_ROOT, Settings
from triptych.contracts import (
    TOPIC_DEAD_LETTERS,
    TOPIC_IMAGES_INPUT,
    TOPIC_MINIO_EVENTS,
    TOPIC_MODEL_UPDATES,
    TOPIC_PREDICTIONS,
    TOPICS,
)
from triptych.kube import chart
from triptych.security.db_roles import ensure_password_files
from triptych.security.kafka_acls import ADMIN_USER
from triptych.stack.provision import provision_kafka_logins, provision_topics
from triptych.stack.services.kafka import Kafka

from .pipeline_helpers import free_port

pytestmark = pytest.mark.timeout(300)
SERVERS_DIR = REPO_ROOT / "infra" / "image" / "servers"


@pytest.fixture(scope="module", params=["local stack", "chart's image"])
def broker(request, tmp_path_factory):
    """A SASL/SCRAM broker with the pipeline's topics and every part's user and ACLs:
    the local stack's (`kafka_sasl`), and the chart's (its image's start script with
    the environment the chart's StatefulSet gives it, on this machine's jars)."""
    data = tmp_path_factory.mktemp("kafka-sasl")
    base = {
        "data_dir": data,
        "credentials_dir": data / "credentials",
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "kafka_sasl": True,
        "kafka_request_timeout_ms": 7000,
    }
    admin = Settings(**base)
    kafka = Kafka(admin)
    kafka.install()
    if request.param == "local stack":
        kafka.start()
        stop = kafka.stop
    else:
        proc = start_the_charts_broker(admin, kafka, data)
        stop = proc.terminate
    try:
        provision_topics(admin, timeout_s=90)
        provision_kafka_logins(admin)
        yield base
    finally:
        stop()


def start_the_charts_broker(settings: Settings, kafka: Kafka, data) -> subprocess.Popen:
    """infra/image/servers/kafka-run.py as the pod runs it: the StatefulSet's variables
    from `helm template --set kafka.sasl.enabled=true`, its addresses made this
    machine's, the admin's password as the chart's Secret would give it."""
    docs = chart.documents(chart.template(settings, chart.Release(sets=["kafka.sasl.enabled=true"])))
    statefulset = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "triptych-kafka")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert {e["name"] for e in container["env"] if "valueFrom" in e} == {
        "TRIPTYCH_KAFKA_ADMIN_USER",
        "TRIPTYCH_KAFKA_ADMIN_PASSWORD",
    }
    broker, controller = f"127.0.0.1:{settings.kafka_port}", f"127.0.0.1:{settings.kafka_controller_port}"
    home = data / "kafka-home"
    (home / "config").mkdir(parents=True)
    (home / "libs").symlink_to(kafka.libs_dir)
    shutil.copy(SERVERS_DIR / "log4j.properties", home / "config" / "log4j.properties")
    env.update(
        KAFKA_NODE_ID="0",  # the pod's ordinal
        KAFKA_LISTENERS=f"PLAINTEXT://{broker},CONTROLLER://{controller}",
        KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://{broker}",
        KAFKA_CONTROLLER_QUORUM_VOTERS=f"0@{controller}",
        KAFKA_LOG_DIRS=str(data / "kafka-logs"),
        KAFKA_HOME=str(home),
        TRIPTYCH_KAFKA_CONFIG=str(data / "server.properties"),
        TRIPTYCH_KAFKA_ADMIN_USER=ADMIN_USER,
        TRIPTYCH_KAFKA_ADMIN_PASSWORD=ensure_password_files(settings.credentials_path, "kafka", ["admin"])["admin"],
        KAFKA_HEAP_OPTS="-Xmx384m",
    )
    path = {"PATH": os.environ["PATH"]}
    log = open(data / "kafka.log", "w")
    return subprocess.Popen(
        [sys.executable, str(SERVERS_DIR / "kafka-run.py")], env={**path, **env}, stdout=log, stderr=log
    )


def as_part(base: dict, part: str) -> Settings:
    """A component's settings (its password read from its file, as `triptych up`
    gives it); MinIO and KEDA, which are no components, log in by name."""
    if part in ("minio", "keda"):
        password = (base["credentials_dir"] / "kafka" / part).read_text().strip()
        return Settings(**base, kafka_username=f"triptych-{part}", kafka_password=password)
    return Settings(**base, component=part)


def ends(settings: Settings) -> dict[str, int]:
    """Every pipeline topic's total end offset, read as the admin."""
    reader = consumer(settings)
    try:
        out = {}
        for topic, _ in TOPICS:
            parts = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
            out[topic] = sum(reader.end_offsets(parts).values())
        return out
    finally:
        reader.close()


def send(settings: Settings, topic: str, **options) -> None:
    client = producer(settings, **{"message.timeout.ms": 10_000})
    try:
        client.send(topic, value=b"{}", key=uuid.uuid4().hex.encode(), **options).get(20)
    finally:
        client.close(1)


def join(settings: Settings, group: str, topic: str) -> None:
    """Join `group` on `topic` and commit an offset: what a trigger does."""
    member = group_consumer(settings, group, f"acl-test-{uuid.uuid4().hex[:6]}", "earliest")
    try:
        member.subscribe([topic])
        msg = member.poll(15)
        if msg is not None and msg.error():
            raise KafkaError(str(msg.error()))
        assignment = member.assignment()
        assert assignment, f"{group} was given no partition of {topic}"
        member.commit(offsets=[type(assignment[0])(topic, assignment[0].partition, 0)], asynchronous=False)
    finally:
        member.close()


def test_each_part_does_its_own_work(broker):
    admin = Settings(**broker)
    before = ends(admin)
    send(as_part(broker, "minio"), TOPIC_MINIO_EVENTS)
    send(as_part(broker, "ingest"), TOPIC_IMAGES_INPUT)
    send(as_part(broker, "infer"), TOPIC_PREDICTIONS)
    # A dead letter as the SDK writes one: headers, and a partition of its choosing.
    send(as_part(broker, "aggregate"), TOPIC_DEAD_LETTERS, headers=[("x-reason", b"test")], partition=1)
    send(as_part(broker, "retrain"), TOPIC_MODEL_UPDATES)
    after = ends(admin)
    for topic in (TOPIC_MINIO_EVENTS, TOPIC_IMAGES_INPUT, TOPIC_PREDICTIONS, TOPIC_DEAD_LETTERS, TOPIC_MODEL_UPDATES):
        assert after[topic] == before[topic] + 1, topic
    join(as_part(broker, "ingest"), "ingest", TOPIC_MINIO_EVENTS)
    join(as_part(broker, "infer"), "infer-resnet50", TOPIC_IMAGES_INPUT)
    join(as_part(broker, "aggregate"), "aggregate", TOPIC_PREDICTIONS)
    # KEDA and the supervisor read any group's lag (the group committed 0: all of it waits).
    for reader in ("keda", "supervisor"):
        assert GroupLag(as_part(broker, reader), "aggregate", TOPIC_PREDICTIONS)() == after[TOPIC_PREDICTIONS]


@pytest.mark.parametrize(
    ("part", "topic"),
    [
        ("ingest", TOPIC_PREDICTIONS),  # a forged prediction
        ("infer", TOPIC_MODEL_UPDATES),  # a forged champion
        ("aggregate", TOPIC_IMAGES_INPUT),
        ("minio", TOPIC_IMAGES_INPUT),
        ("keda", TOPIC_DEAD_LETTERS),
        ("api", TOPIC_MINIO_EVENTS),
        ("dashboard", TOPIC_MODEL_UPDATES),
        ("upload", TOPIC_IMAGES_INPUT),
    ],
)
def test_a_write_outside_a_parts_rights_is_refused_and_writes_nothing(broker, part, topic):
    admin = Settings(**broker)
    before = ends(admin)
    with pytest.raises(PublishError, match="(?i)authoriz"):
        send(as_part(broker, part), topic)
    assert ends(admin) == before


@pytest.mark.parametrize(
    ("part", "group", "topic"),
    [
        ("aggregate", "aggregate", TOPIC_IMAGES_INPUT),  # its group, a topic not its own
        ("infer", "aggregate", TOPIC_PREDICTIONS),  # another's group
        ("ingest", "infer-resnet50", TOPIC_MINIO_EVENTS),
    ],
)
def test_reading_another_parts_topic_or_group_is_refused(broker, part, group, topic):
    with pytest.raises(Exception, match="(?i)authoriz"):
        join(as_part(broker, part), group, topic)


def test_a_wrong_password_or_no_login_is_refused(broker):
    wrong = Settings(**broker, kafka_username="triptych-ingest", kafka_password="not-its-password")
    with pytest.raises(KafkaError):
        admin_client(wrong, request_timeout_ms=5000).close()
    nobody = Settings(**{**broker, "kafka_sasl": False})  # no SASL at all: the broker hangs up
    with pytest.raises(KafkaError):
        admin_client(nobody, request_timeout_ms=5000, api_version_auto_timeout_ms=5000).close()


def test_provisioning_takes_back_a_right_the_table_does_not_give(broker):
    admin_settings = Settings(**broker)
    admin = AdminClient({"bootstrap.servers": admin_settings.kafka_url, **login_config(admin_settings)})
    extra = AclBinding(
        ResourceType.TOPIC,
        TOPIC_PREDICTIONS,
        ResourcePatternType.LITERAL,
        "User:triptych-ingest",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    for future in admin.create_acls([extra]).values():
        future.result(20)
    send(as_part(broker, "ingest"), TOPIC_PREDICTIONS)  # the stray rule works...
    provision_kafka_logins(admin_settings)
    with pytest.raises(PublishError, match="(?i)authoriz"):  # ...until provisioning runs again
        send(as_part(broker, "ingest"), TOPIC_PREDICTIONS)
    assert admin_settings.kafka_login[0] == ADMIN_USER


def test_minio_publishes_the_buckets_events_as_its_own_kafka_user(broker, tmp_path):
    """MinIO started by the project's own service with `kafka_sasl`: both its targets
    log in as `triptych-minio` (stack.services.minio.minio_kafka_sasl_env, which the
    chart's MinIO takes too) and an object put into the images bucket reaches
    `minio-events` as the event ingest reads."""
    import io

    from triptych.stack.provision import provision_buckets
    from triptych.stack.services.minio import MinIO
    from triptych.storage import minio_client

    settings = Settings(**{**broker, "data_dir": tmp_path}, minio_port=free_port(), minio_console_port=free_port())
    minio = MinIO(settings)
    minio.install()
    watcher = consumer(as_part(broker, "ingest"))
    partitions = [TopicPartition(TOPIC_MINIO_EVENTS, p) for p in watcher.partitions_for_topic(TOPIC_MINIO_EVENTS)]
    watcher.assign(partitions)
    watcher.seek_to_end()
    for tp in partitions:  # the end resolved now, not at the first poll (after the put)
        watcher.position(tp)
    minio.start()
    try:
        provision_buckets(settings)  # the bucket's notification to both targets
        key = f"acl-test/{uuid.uuid4().hex}.jpg"
        minio_client(settings).put_object(settings.images_bucket, key, io.BytesIO(b"x" * 10), 10)
        seen: list[bytes] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(key.encode() in v for v in seen):
            for records in watcher.poll(timeout_ms=1000).values():
                seen += [r.value for r in records]
        assert any(key.encode() in v for v in seen), "MinIO's event never reached Kafka"
    finally:
        watcher.close()
        minio.stop()
