"""The components that log in on their own, their names in PostgreSQL and MinIO and
where their secrets are kept; what a host runs; where the checkout is."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

# What a host of a cluster runs (`triptych up --role`).
HostRole = Literal["all", "kafka", "minio", "postgres", "mlflow", "web", "monitoring", "worker"]

# Every process that reads or writes PostgreSQL on its own: each logs in as its own
# role with only its rights (triptych.security.db_roles; migration 0011's grants).
COMPONENTS = ("upload", "ingest", "infer", "aggregate", "jobs", "retrain", "api", "dashboard", "supervisor")


def component_role(component: str) -> str:
    """The PostgreSQL role a component logs in as."""
    if component not in COMPONENTS:
        raise ValueError(f"no such component {component!r}; known: {', '.join(COMPONENTS)}")
    return f"triptych_{component}"


def component_s3_user(component: str) -> str:
    """The MinIO user a component signs its requests as (triptych.security.bucket_policies)."""
    component_role(component)  # an unknown name is refused
    return f"triptych-{component}"


def component_password_path(
    credentials_dir: Path, component: str, service: Literal["postgres", "s3", "kafka"] = "postgres"
) -> Path:
    """Where a component's PostgreSQL password (or MinIO secret key, or Kafka password)
    is kept: a file of its own."""
    if service == "kafka":
        kafka_user(component)  # Kafka also knows MinIO, KEDA and its admin
    else:
        component_role(component)  # an unknown name never becomes a path
    return credentials_dir / service / component


# Who logs in to Kafka when it asks for SASL/SCRAM (issue 36): the components, MinIO
# (its bucket events), KEDA (lag) and the admin (provisioning, the CLI); their ACLs
# are triptych.security.kafka_acls.
KAFKA_ADMIN = "admin"
KAFKA_PARTS = (*COMPONENTS, "minio", "keda", KAFKA_ADMIN)


def kafka_user(part: str) -> str:
    """The SASL user a part logs in to Kafka as."""
    if part not in KAFKA_PARTS:
        raise ValueError(f"no Kafka user for {part!r}; known: {', '.join(KAFKA_PARTS)}")
    return f"triptych-{part}"


def read_secret(path: Path, component: str) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no credentials for component {component!r} at {path}: `triptych up` makes them"
        ) from None


# The repository root when Triptych runs from a checkout (editable install).
REPO_ROOT = Path(__file__).resolve().parents[3]


def default_project_file() -> Path:
    in_checkout = REPO_ROOT / "project.yaml"
    return in_checkout if in_checkout.exists() else Path.cwd() / "project.yaml"
