"""MinIO, built from its Go module, publishing bucket events to Kafka."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

from ...config import (
    MINIO_KAFKA_DURABLE_TARGET_ID,
    MINIO_KAFKA_TARGET_ID,
    Settings,
    component_password_path,
    kafka_user,
    read_secret,
)
from ...contracts import TOPIC_MINIO_EVENTS, TOPIC_MINIO_EVENTS_DURABLE
from ..prebuild import Report, build_minio, minio_binary, quiet
from ..process import spawn_detached
from .base import Service


def minio_kafka_targets_env(brokers: str, queue_dir: str, queue_limit: int) -> dict[str, str]:
    """MinIO's two Kafka notification targets for the images bucket.

    The fast one publishes each event straight to `minio-events`, without a queue:
    MinIO replays an on-disk queue only every 3 s, which added 1.5 s on average to
    every image. An event it cannot deliver (Kafka away) is dropped and counted in
    `minio_notify_target_failed_events`. The durable one writes every event to
    `queue_dir` first and publishes it to `minio-events-durable` once Kafka has it,
    across Kafka outages and MinIO restarts; ingest's reconcile trigger ingests the
    objects the fast path never saw and drops the rest (triptych.ingress.reconcile).
    """
    fast, durable = MINIO_KAFKA_TARGET_ID, MINIO_KAFKA_DURABLE_TARGET_ID
    return {
        f"MINIO_NOTIFY_KAFKA_ENABLE_{fast}": "on",
        f"MINIO_NOTIFY_KAFKA_BROKERS_{fast}": brokers,
        f"MINIO_NOTIFY_KAFKA_TOPIC_{fast}": TOPIC_MINIO_EVENTS,
        f"MINIO_NOTIFY_KAFKA_ENABLE_{durable}": "on",
        f"MINIO_NOTIFY_KAFKA_BROKERS_{durable}": brokers,
        f"MINIO_NOTIFY_KAFKA_TOPIC_{durable}": TOPIC_MINIO_EVENTS_DURABLE,
        f"MINIO_NOTIFY_KAFKA_QUEUE_DIR_{durable}": queue_dir,
        f"MINIO_NOTIFY_KAFKA_QUEUE_LIMIT_{durable}": str(queue_limit),
    }


def minio_kafka_sasl_env(user: str, password: str, mechanism: str) -> dict[str, str]:
    """Both targets log in to Kafka as MinIO's own user (triptych.security.kafka_acls:
    it may only write the two bucket-event topics)."""
    sasl = {"SCRAM-SHA-512": "sha512", "SCRAM-SHA-256": "sha256"}[mechanism]
    env = {}
    for target in (MINIO_KAFKA_TARGET_ID, MINIO_KAFKA_DURABLE_TARGET_ID):
        env[f"MINIO_NOTIFY_KAFKA_SASL_{target}"] = "on"
        env[f"MINIO_NOTIFY_KAFKA_SASL_USERNAME_{target}"] = user
        env[f"MINIO_NOTIFY_KAFKA_SASL_PASSWORD_{target}"] = password
        env[f"MINIO_NOTIFY_KAFKA_SASL_MECHANISM_{target}"] = sasl
    return env


class MinIO(Service):
    """MinIO built from source with `go install`, publishing bucket events to Kafka."""

    name = "minio"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        # A node of a distributed MinIO is ready only once enough of its peers are up,
        # which start on other hosts at their own pace (after their Kafka, say).
        self.start_timeout = 300.0 if settings.minio_volumes else 60.0

    @property
    def url(self) -> str:
        return self.settings.s3_url

    def ports(self) -> dict[int, str]:
        return {self.settings.minio_port: "S3 API", self.settings.minio_console_port: "console"}

    @property
    def binary(self) -> Path:
        return minio_binary(self.settings.cache_dir, self.settings.minio_version)

    def version(self) -> str:
        if not self.binary.exists():
            return "not installed"
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True).stdout
        match = re.search(r"version (RELEASE\S+)", out)
        # `go install` builds carry no release tag: the pinned module version names the commit.
        return match.group(1) if match else self.settings.minio_version

    def install(self, report: Report = quiet) -> None:
        # Often already under way, started by `make install` beside pip (see prebuild).
        build_minio(self.settings.cache_dir, self.settings.minio_version, report)

    @property
    def event_queue_path(self) -> Path:
        """MinIO's on-disk queue of bucket events for the durable target (outside
        its drive, where a folder would be taken for a bucket)."""
        return self.settings.data_dir / "minio-event-queue"

    def server_env(self) -> dict[str, str]:
        s = self.settings
        return {
            "MINIO_ROOT_USER": s.s3_access_key,
            "MINIO_ROOT_PASSWORD": s.s3_secret_key,
            **minio_kafka_targets_env(
                s.minio_kafka_brokers or s.kafka_url, str(self.event_queue_path), s.minio_event_queue_limit
            ),
            **self._kafka_login_env(),
            "MINIO_UPDATE": "off",
            # Prometheus scrapes /minio/v2/metrics/cluster without a token (loopback only).
            "MINIO_PROMETHEUS_AUTH_TYPE": "public",
            "MINIO_CI_CD": "1",
        }

    def _kafka_login_env(self) -> dict[str, str]:
        """With a local broker that asks for logins (`kafka_sasl`), MinIO's own."""
        s = self.settings
        if not (s.kafka_sasl and s.is_managed("kafka")):
            return {}
        part = "minio"
        password = read_secret(component_password_path(s.credentials_path, part, "kafka"), part)
        return minio_kafka_sasl_env(kafka_user(part), password, s.kafka_sasl_mechanism)

    def _launch(self) -> int:
        self.data_path.mkdir(parents=True, exist_ok=True)
        self.event_queue_path.mkdir(parents=True, exist_ok=True)
        s = self.settings
        return spawn_detached(
            [
                # One drive here, or every node's drives of a distributed MinIO (erasure-coded).
                str(self.binary),
                "server",
                *(s.minio_volumes.split() if s.minio_volumes else [str(self.data_path)]),
                "--address",
                f"{self.host}:{s.minio_port}",
                "--console-address",
                f"{self.host}:{s.minio_console_port}",
                "--quiet",
            ],
            self.log_path,
            env=self.server_env(),
        )

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/minio/health/ready", timeout=2) as resp:
            return resp.status == 200


# ---------------------------------------------------------------------------
