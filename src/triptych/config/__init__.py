"""One settings object for every endpoint and credential.

Every value comes from the environment with a ``TRIPTYCH_`` prefix (or a ``.env``
file), with defaults that work on a laptop. A service whose URL is *given* in the
environment is used as it is; a service whose URL is left unset is started and
managed locally by ``triptych up`` on the configured port. That single rule is what
lets the same code run against the native local stack, the Docker compose file, or
a user's own Kafka/MinIO/Postgres/MLflow.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..installs import default_cache_dir
from .components import (
    COMPONENTS,
    KAFKA_ADMIN,
    KAFKA_PARTS,
    REPO_ROOT,
    HostRole,
    component_password_path,
    component_role,
    component_s3_user,
    kafka_user,
    read_secret,
)
from .sections import (
    AggregateSettings,
    ApiSettings,
    DashboardSettings,
    FunctionSettings,
    HostSettings,
    ImageSettings,
    IngestSettings,
    KafkaSettings,
    LifecycleSettings,
    MlflowSettings,
    ModelSettings,
    MonitoringSettings,
    PostgresSettings,
    ScalingSettings,
    Section,
    StorageSettings,
)

# MinIO's notification target ids: the ARN MinIO derives from one is
# arn:minio:sqs::<id>:kafka. The first publishes each event straight to Kafka (the
# fast path); the second keeps every event on disk (queue_dir) until Kafka has it,
# so that an event the first could not deliver is made good (see ingress.reconcile).
MINIO_KAFKA_TARGET_ID = "TRIPTYCH"
MINIO_KAFKA_DURABLE_TARGET_ID = "DURABLE"


def _default_data_dir() -> Path:
    # Root runs Postgres as the `postgres` user (initdb refuses root), and that
    # user cannot traverse /root, so root's data lives under /var/lib.
    if os.geteuid() == 0:
        return Path("/var/lib/triptych")
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg) / "triptych" if xdg else Path.home() / ".local" / "share" / "triptych"


__all__ = [
    "COMPONENTS",
    "KAFKA_ADMIN",
    "KAFKA_PARTS",
    "MINIO_KAFKA_DURABLE_TARGET_ID",
    "MINIO_KAFKA_TARGET_ID",
    "REPO_ROOT",
    "SECTIONS",
    "HostRole",
    "Settings",
    "component_password_path",
    "component_role",
    "component_s3_user",
    "get_settings",
    "kafka_user",
    "read_secret",
]


# Kubernetes gives every pod a variable per Service of its namespace ("service links"):
# the chart's release `triptych` makes Services named triptych-api, triptych-mlflow ...
# and so TRIPTYCH_API_PORT=tcp://10.96.0.12:8000. Nuclio's function pods cannot turn
# service links off, so such a value of a *_port setting is read as its port.
_SERVICE_LINK = re.compile(r"^(tcp|udp|sctp)://[^\s]+:(\d+)$")


class Settings(
    KafkaSettings,
    StorageSettings,
    PostgresSettings,
    MlflowSettings,
    ImageSettings,
    ApiSettings,
    DashboardSettings,
    ModelSettings,
    IngestSettings,
    AggregateSettings,
    LifecycleSettings,
    MonitoringSettings,
    HostSettings,
    FunctionSettings,
    ScalingSettings,
    BaseSettings,
):
    """Every setting (the sections' fields, in triptych.config.sections), from the
    environment with the `TRIPTYCH_` prefix."""

    model_config = SettingsConfigDict(env_prefix="TRIPTYCH_", env_file=".env", extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _port_from_service_link(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name and info.field_name.endswith("_port") and isinstance(value, str):
            link = _SERVICE_LINK.match(value.strip())
            if link:
                return int(link.group(2))
        return value

    # Where installs are cached (shared by every stack on the machine) and where
    # one stack keeps its data, logs and pid files.
    cache_dir: Path = Field(default_factory=default_cache_dir)
    data_dir: Path = Field(default_factory=_default_data_dir)
    bind_host: str = "127.0.0.1"

    # --- derived endpoints -----------------------------------------------------
    @property
    def kafka_url(self) -> str:
        return self.kafka_bootstrap or f"{self.bind_host}:{self.kafka_port}"

    @property
    def kafka_login(self) -> tuple[str, str] | None:
        """(user, password) this process logs in to Kafka with over SASL/SCRAM, or None
        (no authentication: the local stack's loopback broker by default). Given ones
        win (the chart sets each component's); a local broker with `kafka_sasl` takes
        the component's own (or, with none named, the admin's) from its file."""
        if self.kafka_username:
            return self.kafka_username, self.kafka_password.get_secret_value() if self.kafka_password else ""
        if self.kafka_sasl and self.is_managed("kafka"):
            part = self.component or KAFKA_ADMIN
            path = component_password_path(self.credentials_path, part, "kafka")
            return kafka_user(part), read_secret(path, part)
        return None

    @property
    def s3_url(self) -> str:
        return self.s3_endpoint or f"http://{self.bind_host}:{self.minio_port}"

    @property
    def postgres_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.component:
            password = read_secret(component_password_path(self.credentials_path, self.component), self.component)
            return (
                f"postgresql://{component_role(self.component)}:{password}@{self.bind_host}:{self.postgres_port}"
                f"/{self.postgres_db}"
            )
        return self._local_postgres_url(self.postgres_db)

    @property
    def s3_credentials(self) -> tuple[str, str]:
        """(access key, secret key): on a local stack a component signs as its own MinIO
        user (only its buckets and prefixes); otherwise the keys given (the chart gives
        each component its own) or MinIO's root user (the CLI, MLflow's server)."""
        if self.component and not self.s3_endpoint:
            path = component_password_path(self.credentials_path, self.component, "s3")
            return component_s3_user(self.component), read_secret(path, self.component)
        return self.s3_access_key, self.s3_secret_key

    @property
    def credentials_path(self) -> Path:
        return self.credentials_dir or self.data_dir / "credentials"

    @property
    def mlflow_backend_store_url(self) -> str:
        """MLflow keeps its own database beside Triptych's, in the same server."""
        if self.database_url:
            base, _, _ = self.database_url.rpartition("/")
            return f"{base}/{self.mlflow_db}"
        return self._local_postgres_url(self.mlflow_db)

    @property
    def prometheus_url(self) -> str:
        return self.prometheus_endpoint or f"http://{self.bind_host}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.bind_host}:{self.alertmanager_port}"

    @property
    def upload_url(self) -> str:
        return self.upload_endpoint or f"http://{self.bind_host}:{self.upload_port}"

    @property
    def retrain_url(self) -> str:
        return self.retrain_endpoint or f"http://{self.bind_host}:{self.retrain_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.bind_host}:{self.api_port}"

    @property
    def results_base_url(self) -> str:
        """Where an upload reply's `results_url` points: the API that serves it."""
        return (self.api_public_url or self.api_url).rstrip("/")

    def margin_for(self, model_name: str) -> float:
        return self.promotion_margins.get(model_name, self.promotion_margin)

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.bind_host}:{self.dashboard_port}"

    @property
    def mlflow_url(self) -> str:
        return self.mlflow_tracking_uri or f"http://{self.bind_host}:{self.mlflow_port}"

    def _local_postgres_url(self, db: str) -> str:
        return f"postgresql://{self.postgres_user}:{self.postgres_password}@{self.bind_host}:{self.postgres_port}/{db}"

    def is_managed(self, service: str) -> bool:
        """True when `triptych up` starts this service itself (its URL was not given)."""
        given = {
            "kafka": self.kafka_bootstrap,
            "minio": self.s3_endpoint,
            "postgres": self.database_url,
            "mlflow": self.mlflow_tracking_uri,
        }[service]
        return not given

    def s3_client_env(self) -> dict[str, str]:
        """Environment that boto3-based tools (MLflow's artifact store) read."""
        access_key, secret_key = self.s3_credentials  # a component's are read from a file
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


# The sections, as Settings inherits them: its list of bases is the one list of them.
SECTIONS: tuple[type[Section], ...] = tuple(base for base in Settings.__bases__ if issubclass(base, Section))


@lru_cache
def get_settings() -> Settings:
    return Settings()
