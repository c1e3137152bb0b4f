#!/usr/bin/python3
"""Start Kafka as the apache/kafka image does: every KAFKA_<NAME> variable becomes the
property <name> (`_` -> `.`, `__` -> `_`, `___` -> `-`), the storage is formatted
with CLUSTER_ID once, then the broker runs in the foreground."""
import os
import re
import subprocess
import sys

NOT_PROPERTIES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_HOME"}


def property_name(variable: str) -> str:
    name = variable[len("KAFKA_"):].lower()
    return re.sub(r"_+", lambda m: {1: ".", 2: "_", 3: "-"}.get(len(m.group()), m.group()), name)


def sasl_properties(admin: str, password: str, protocols: dict[str, str], controller: str) -> dict[str, str]:
    """SCRAM logins on every SASL listener but the controller's, which takes PLAIN from
    the admin alone (SCRAM's credentials live in the metadata the controller serves);
    ACLs enforced, the admin the super user. As triptych.stack.services.kafka's
    sasl_properties, for the chart's kafka.sasl.enabled."""
    login = f'required username="{admin}" password="{password}"'
    out = {
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "sasl.mechanism.controller.protocol": "PLAIN",
        f"listener.name.{controller.lower()}.sasl.enabled.mechanisms": "PLAIN",
        f"listener.name.{controller.lower()}.plain.sasl.jaas.config": (
            f'org.apache.kafka.common.security.plain.PlainLoginModule {login} user_{admin}="{password}";'
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{admin}",
        "allow.everyone.if.no.acl.found": "false",
    }
    for listener, protocol in protocols.items():
        if protocol == "SASL_PLAINTEXT" and listener != controller:
            for mechanism in ("scram-sha-512", "scram-sha-256"):
                out[f"listener.name.{listener.lower()}.{mechanism}.sasl.jaas.config"] = (
                    f"org.apache.kafka.common.security.scram.ScramLoginModule {login};"
                )
    return out


def main() -> None:
    props = {property_name(k): v for k, v in os.environ.items() if k.startswith("KAFKA_") and k not in NOT_PROPERTIES}
    # The chart's kafka.sasl.enabled: not KAFKA_* variables, which would become properties.
    admin = os.environ.get("TRIPTYCH_KAFKA_ADMIN_USER")
    admin_password = os.environ.get("TRIPTYCH_KAFKA_ADMIN_PASSWORD")
    add_scram = []
    if admin and admin_password:
        protocols = dict(pair.split(":", 1) for pair in props["listener.security.protocol.map"].split(","))
        props.update(sasl_properties(admin, admin_password, protocols, props["controller.listener.names"]))
        # The admin is the one user the broker knows from its first start; `triptych provision` adds the rest.
        add_scram = ["--add-scram", f"SCRAM-SHA-512=[name={admin},password={admin_password}]"]
    home = os.environ.get("KAFKA_HOME", "/opt/kafka")
    config = os.environ.get("TRIPTYCH_KAFKA_CONFIG", "/tmp/server.properties")
    with open(os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:  # it may hold a password
        f.writelines(f"{k}={v}\n" for k, v in sorted(props.items()))
    heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xmx512m -Xms512m").split()
    java = ["java", *heap, f"-Dlog4j.configuration=file:{home}/config/log4j.properties", "-cp", f"{home}/libs/*"]
    cluster_id = os.environ.get("CLUSTER_ID")
    if not cluster_id:
        sys.exit("CLUSTER_ID is not set (kafka-storage.sh random-uuid makes one)")
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "--ignore-formatted", "-t", cluster_id, "-c", config, *add_scram],
        check=True,
    )
    os.execvp("java", [*java, "kafka.Kafka", config])


if __name__ == "__main__":
    main()
