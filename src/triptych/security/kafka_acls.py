"""Least privilege in Kafka: each part logs in with SASL/SCRAM as its own user,
whose ACLs allow only the topics and consumer groups its work needs.

- ingest: read the bucket-event topics (groups `ingest`, `ingest-reconcile`);
  write the image stream and dead letters;
- infer: read the image stream and the model updates (groups `infer-*`, one per
  function and twin); write predictions and dead letters;
- aggregate: read predictions (group `aggregate`); write dead letters;
- jobs, retrain: announce a new champion on `model-updates` (the shadow gate, a
  workflow's promotion, an int8 twin);
- supervisor: read every pipeline group's lag, and move a new group to the end of
  its topic (its wake-up and scale decisions);
- minio: publish the bucket's events (MinIO's two Kafka notification targets);
- keda: read every pipeline group's lag (KEDA's Kafka scaler, on Kubernetes);
- upload, api, dashboard: a login and no ACL (they reach Kafka only for `/health`).

The admin user (`triptych-admin`) is a super user: provisioning, the CLI and the
dead-letter replay. It is the one user the broker knows from its first start (its
SCRAM credential is written when the storage is formatted); provisioning adds the
others with their ACLs through it (`provision_kafka_users`, which `triptych up`
and `triptych provision` run).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bus import login_config
from ..config import KAFKA_ADMIN, KAFKA_PARTS, Settings, kafka_user
from ..contracts import (
    TOPIC_DEAD_LETTERS,
    TOPIC_IMAGES_INPUT,
    TOPIC_MINIO_EVENTS,
    TOPIC_MINIO_EVENTS_DURABLE,
    TOPIC_MODEL_UPDATES,
    TOPIC_PREDICTIONS,
    TOPICS,
)

ADMIN_USER = kafka_user(KAFKA_ADMIN)
# What the broker's inter-broker login and the admin's credential use.
SCRAM_MECHANISM = "SCRAM-SHA-512"
# What reads lag: every group the pipeline's functions consume with.
_ALL_GROUPS = "*"


@dataclass(frozen=True)
class KafkaRights:
    read: tuple[str, ...] = ()  # topics it consumes (READ, which implies DESCRIBE)
    write: tuple[str, ...] = ()  # topics it produces to (WRITE)
    describe: tuple[str, ...] = ()  # topics whose offsets it only looks at (DESCRIBE)
    groups: tuple[str, ...] = ()  # consumer groups it joins or commits for (READ); `x-*` is a prefix
    groups_described: tuple[str, ...] = ()  # groups whose offsets it only looks at (DESCRIBE)


_PIPELINE_TOPICS = tuple(name for name, _ in TOPICS)

RIGHTS: dict[str, KafkaRights] = {
    "ingest": KafkaRights(
        read=(TOPIC_MINIO_EVENTS, TOPIC_MINIO_EVENTS_DURABLE),
        write=(TOPIC_IMAGES_INPUT, TOPIC_DEAD_LETTERS),
        groups=("ingest", "ingest-reconcile"),
    ),
    "infer": KafkaRights(
        read=(TOPIC_IMAGES_INPUT, TOPIC_MODEL_UPDATES),
        write=(TOPIC_PREDICTIONS, TOPIC_DEAD_LETTERS),
        groups=("infer-*",),
    ),
    "aggregate": KafkaRights(read=(TOPIC_PREDICTIONS,), write=(TOPIC_DEAD_LETTERS,), groups=("aggregate",)),
    "jobs": KafkaRights(write=(TOPIC_MODEL_UPDATES, TOPIC_DEAD_LETTERS)),
    "retrain": KafkaRights(write=(TOPIC_MODEL_UPDATES, TOPIC_DEAD_LETTERS)),
    # skip_to_end commits a group's offsets: READ on the group and its topic.
    "supervisor": KafkaRights(read=_PIPELINE_TOPICS, groups=(_ALL_GROUPS,)),
    "minio": KafkaRights(write=(TOPIC_MINIO_EVENTS, TOPIC_MINIO_EVENTS_DURABLE)),
    "keda": KafkaRights(describe=_PIPELINE_TOPICS, groups_described=(_ALL_GROUPS,)),
    "upload": KafkaRights(),
    "api": KafkaRights(),
    "dashboard": KafkaRights(),
}

# Every user but the admin (tests/unit/test_kafka_acls.py holds this to KAFKA_PARTS).
KAFKA_USERS: tuple[str, ...] = tuple(name for name in KAFKA_PARTS if name != KAFKA_ADMIN)


@dataclass(frozen=True)
class Acl:
    """One ALLOW rule, in Kafka's own words (`kafka-acls.sh --list` prints the same)."""

    principal: str  # User:triptych-ingest
    resource: str  # TOPIC | GROUP
    name: str
    pattern: str  # LITERAL | PREFIXED
    operation: str  # READ | WRITE | DESCRIBE


def _resource(name: str) -> tuple[str, str]:
    """(name, pattern): `infer-*` is every group named infer-...; `*` every group."""
    if name.endswith("*") and name != "*":
        return name[:-1], "PREFIXED"
    return name, "LITERAL"


def acls_for(name: str) -> list[Acl]:
    """The ALLOW rules of one part's user; no rule for what it may not do (the broker
    refuses anything without one: `allow.everyone.if.no.acl.found` is false)."""
    rights, principal = RIGHTS[name], f"User:{kafka_user(name)}"
    rules = []
    for resource, names, operation in (
        ("TOPIC", rights.read, "READ"),
        ("TOPIC", rights.write, "WRITE"),
        ("TOPIC", rights.describe, "DESCRIBE"),
        ("GROUP", rights.groups, "READ"),
        ("GROUP", rights.groups_described, "DESCRIBE"),
    ):
        for each in names:
            resource_name, pattern = _resource(each)
            rules.append(Acl(principal, resource, resource_name, pattern, operation))
    return rules


def all_acls() -> list[Acl]:
    return [acl for name in KAFKA_USERS for acl in acls_for(name)]


def provision_kafka_users(settings: Settings, passwords: dict[str, str], timeout_s: float = 30) -> None:
    """Each part's SCRAM credential (set again: a changed Secret takes effect) and
    its ACLs, as the admin; rules of these users that the table no longer holds are
    deleted, so a right taken away here is taken away on the broker."""
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialAlteration,
        UserScramCredentialUpsertion,
    )

    if not passwords:
        return
    admin = AdminClient({"bootstrap.servers": settings.kafka_url, **login_config(settings)})
    mechanism = ScramMechanism[settings.kafka_sasl_mechanism.replace("-", "_")]
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(kafka_user(name), ScramCredentialInfo(mechanism, 8192), password.encode())
        for name, password in passwords.items()
    ]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(timeout_s)

    def binding(acl: Acl) -> AclBinding:
        return AclBinding(
            ResourceType[acl.resource],
            acl.name,
            ResourcePatternType[acl.pattern],
            acl.principal,
            "*",
            AclOperation[acl.operation],
            AclPermissionType.ALLOW,
        )

    wanted = [binding(acl) for name in passwords for acl in acls_for(name)]
    if wanted:
        for future in admin.create_acls(wanted).values():
            future.result(timeout_s)
    keep = {(b.restype, b.name, b.resource_pattern_type, b.principal, b.operation) for b in wanted}
    stale = []
    for name in passwords:
        # None is "any name" and "any host" (confluent-kafka's docs); its type stubs say str.
        every = AclBindingFilter(
            ResourceType.ANY,
            None,  # type: ignore[arg-type]
            ResourcePatternType.ANY,
            f"User:{kafka_user(name)}",
            None,  # type: ignore[arg-type]
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        held = admin.describe_acls(every).result(timeout_s)
        stale += [
            AclBindingFilter(
                b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
            )
            for b in held
            if (b.restype, b.name, b.resource_pattern_type, b.principal, b.operation) not in keep
        ]
    if stale:
        for future in admin.delete_acls(stale).values():
            future.result(timeout_s)
