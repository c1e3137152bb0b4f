"""Kafka's logins and ACL table without a broker: who may read and write what, the
chart's list of users, and which login a process takes (the refusals on a real
broker are tests/integration/test_kafka_acls.py)."""

from __future__ import annotations

import json
import re

import pytest

from triptych.bus import login_config, login_kwargs
from triptych.config import COMPONENTS, Settings, component_password_path, kafka_user
from triptych.contracts import (
    TOPIC_IMAGES_INPUT,
    TOPIC_MINIO_EVENTS,
    TOPIC_MINIO_EVENTS_DURABLE,
    TOPIC_MODEL_UPDATES,
    TOPIC_PREDICTIONS,
)
from triptych.kube.chart import CHART_DIR
from triptych.security.db_roles import ensure_password_files
from triptych.security.kafka_acls import ADMIN_USER, KAFKA_USERS, RIGHTS, acls_for, all_acls
from triptych.stack.services.kafka import sasl_properties


def writers(topic: str) -> set[str]:
    return {name for name, rights in RIGHTS.items() if topic in rights.write}


def test_every_component_minio_and_keda_have_a_user_and_the_chart_lists_the_same():
    assert set(KAFKA_USERS) == set(RIGHTS) == {*COMPONENTS, "minio", "keda"}
    helpers = (CHART_DIR / "templates" / "_helpers.tpl").read_text()
    listed = re.search(r'define "triptych.kafkaUsers" -}}\n(\[.*\])', helpers)
    assert listed and tuple(json.loads(listed.group(1))) == KAFKA_USERS


def test_each_stream_has_the_one_writer_its_stage_needs():
    assert writers(TOPIC_MINIO_EVENTS) == writers(TOPIC_MINIO_EVENTS_DURABLE) == {"minio"}
    assert writers(TOPIC_IMAGES_INPUT) == {"ingest"}
    assert writers(TOPIC_PREDICTIONS) == {"infer"}
    assert writers(TOPIC_MODEL_UPDATES) == {"jobs", "retrain"}
    # The parts that only serve people or read lag write nothing at all.
    for name in ("upload", "api", "dashboard", "keda", "supervisor"):
        assert not [a for a in acls_for(name) if a.operation == "WRITE"], name


def test_rules_are_kafkas_own_words():
    infer = acls_for("infer")
    assert any(a.resource == "GROUP" and a.name == "infer-" and a.pattern == "PREFIXED" for a in infer)
    keda = acls_for("keda")
    assert {a.operation for a in keda} == {"DESCRIBE"} and any(a.name == "*" and a.pattern == "LITERAL" for a in keda)
    assert all(a.principal.startswith("User:triptych-") for a in all_acls())
    assert not any(a.principal == f"User:{ADMIN_USER}" for a in all_acls()), "the admin is a super user, no rules"


def test_unknown_parts_are_refused_before_they_become_a_user_or_a_path(tmp_path):
    assert kafka_user("minio") == "triptych-minio"
    with pytest.raises(ValueError, match="no Kafka user"):
        kafka_user("ingest; rm")
    with pytest.raises(ValueError):
        component_password_path(tmp_path, "../admin", "kafka")


def test_the_login_a_process_takes(tmp_path):
    assert Settings(credentials_dir=tmp_path).kafka_login is None, "no SASL unless asked"
    passwords = ensure_password_files(tmp_path, "kafka", ("ingest", "admin"))
    local = {"credentials_dir": tmp_path, "kafka_sasl": True}
    assert Settings(**local, component="ingest").kafka_login == ("triptych-ingest", passwords["ingest"])
    assert Settings(**local).kafka_login == (ADMIN_USER, passwords["admin"])
    given = Settings(**local, kafka_username="triptych-infer", kafka_password="pw", component="ingest")
    assert given.kafka_login == ("triptych-infer", "pw"), "a given login (the chart's) wins"
    assert login_config(given)["sasl.username"] == "triptych-infer"
    assert login_kwargs(given)["sasl_mechanism"] == "SCRAM-SHA-512"
    assert login_config(Settings(credentials_dir=tmp_path)) == {}
    # A broker you bring is not this stack's: `kafka_sasl` alone reads no file for it.
    assert Settings(**local, kafka_bootstrap="kafka:9092").kafka_login is None


def test_the_local_broker_takes_scram_and_its_controller_only_the_admin():
    props = sasl_properties("127.0.0.1", 9092, 9093, "s3cret")
    assert props["listener.security.protocol.map"] == "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == f"User:{ADMIN_USER}"
    assert f'user_{ADMIN_USER}="s3cret"' in props["listener.name.controller.plain.sasl.jaas.config"]
