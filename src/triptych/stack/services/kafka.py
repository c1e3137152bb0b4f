"""Kafka 3.9 in KRaft mode, its jars fetched from Maven Central."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ...bus import admin_client
from ...config import KAFKA_ADMIN
from ...errors import InstallError
from ...security.db_roles import ensure_password_files
from ...security.kafka_acls import ADMIN_USER, SCRAM_MECHANISM
from ..prebuild import Report, quiet
from ..process import spawn_detached
from .base import Service, _require_tool, _run_install

KAFKA_POM = Path(__file__).resolve().parents[1] / "assets" / "kafka-pom.xml"


def sasl_properties(host: str, port: int, controller_port: int, admin_password: str) -> dict[str, str]:
    """A broker that takes only SCRAM logins on its client listener and enforces ACLs.
    Its controller listener takes PLAIN logins from the admin alone: SCRAM's
    credentials live in the metadata the controller serves, so it cannot check them
    itself. The admin is the super user; everyone else has only their ACLs."""
    scram = f'required username="{ADMIN_USER}" password="{admin_password}";'
    return {
        "listeners": f"SASL_PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256",
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        # One login entry per mechanism the listener offers (the broker's own, inter-broker, is 512's).
        **{
            f"listener.name.sasl_plaintext.{mechanism}.sasl.jaas.config": (
                f"org.apache.kafka.common.security.scram.ScramLoginModule {scram}"
            )
            for mechanism in ("scram-sha-512", "scram-sha-256")
        },
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule {scram[:-1]} "
            f'user_{ADMIN_USER}="{admin_password}";'
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER}",
        "allow.everyone.if.no.acl.found": "false",
    }


class Kafka(Service):
    """Apache Kafka in KRaft mode (broker and controller in one process), run from
    jars fetched from Maven Central: one node by default, or one of several that
    share `kafka_controller_quorum` and `kafka_cluster_id`."""

    name = "kafka"
    start_timeout = 90.0

    @property
    def url(self) -> str:
        return self.settings.kafka_url

    def ports(self) -> dict[int, str]:
        return {self.settings.kafka_port: "broker", self.settings.kafka_controller_port: "controller"}

    @property
    def libs_dir(self) -> Path:
        return self.settings.cache_dir / f"kafka-{self.settings.kafka_version}" / "libs"

    def version(self) -> str:
        return self.settings.kafka_version

    def install(self, report: Report = quiet) -> None:
        marker = self.libs_dir / ".complete"
        if marker.exists():
            return
        _require_tool("java", "to run Apache Kafka (Java 17 or newer)")
        mvn = _require_tool("mvn", "to fetch Apache Kafka's jars from Maven Central")
        self.libs_dir.mkdir(parents=True, exist_ok=True)
        _run_install(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(KAFKA_POM),
                f"-Dkafka.version={self.settings.kafka_version}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.libs_dir}",
                "-DincludeScope=runtime",
            ],
            f"Fetching Kafka {self.settings.kafka_version} jars with Maven",
        )
        marker.touch()

    def _java(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        java = _require_tool("java", "to run Apache Kafka (Java 17 or newer)")
        log4j = self.data_path / "log4j.properties"
        return [
            java,
            *([f"-Xmx{heap}", f"-Xms{heap}"] if heap else ["-Xmx256m"]),
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp",
            f"{self.libs_dir}/*",
            main,
            *args,
        ]

    def _write_config(self) -> Path:
        self.data_path.mkdir(parents=True, exist_ok=True)
        s = self.settings
        replicas, min_isr = str(s.kafka_replication_factor), str(s.kafka_min_insync_replicas)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(s.kafka_node_id),
            "controller.quorum.voters": s.kafka_controller_quorum or f"1@{self.host}:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{s.kafka_port},CONTROLLER://{self.host}:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_path / "data"),
            # Internal topics as replicated as the pipeline's (1 on one broker).
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "num.partitions": "3",
            # Consumers of a single-node dev broker should not wait 3 s per join.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        if s.kafka_sasl:
            props.update(sasl_properties(self.host, s.kafka_port, s.kafka_controller_port, self._admin_password()))
        if s.kafka_controller_quorum:
            # Several brokers: a cut-off broker is fenced (its partitions led elsewhere) after
            # 6 s without a heartbeat, and a follower that stopped fetching leaves the ISR
            # after 8 s, so acks=all writes go on with the other two (defaults: 9 s, 30 s).
            props["broker.session.timeout.ms"] = "6000"
            props["replica.lag.time.max.ms"] = "8000"
        config = self.data_path / "server.properties"
        config.touch(mode=0o600)  # it may hold the admin's password
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_path / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
        )
        return config

    def _format_storage(self, config: Path) -> None:
        if (self.data_path / "data" / "meta.properties").exists():
            return
        cluster_id = (
            self.settings.kafka_cluster_id
            or subprocess.run(
                self._java("kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True, check=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        # With SASL the admin is the one user the broker knows from its first start.
        scram = ["--add-scram", f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={self._admin_password()}]"]
        proc = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
                *(scram if self.settings.kafka_sasl else []),
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise InstallError(f"Formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")

    def _launch(self) -> int:
        config = self._write_config()
        self._format_storage(config)
        return spawn_detached(self._java("kafka.Kafka", str(config), heap=self.settings.kafka_heap), self.log_path)

    def _admin_password(self) -> str:
        """The admin's SCRAM password, made once (0600) beside the components' own."""
        return ensure_password_files(self.settings.credentials_path, "kafka", [KAFKA_ADMIN])[KAFKA_ADMIN]

    def healthy(self) -> bool:
        admin = admin_client(self.settings, request_timeout_ms=3000, client_id="triptych-probe")
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()


# ---------------------------------------------------------------------------
