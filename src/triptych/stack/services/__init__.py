"""The servers of the local stack (one module each), each knowing how to install, start,
probe and stop itself.

A service is *managed* when its URL is not given in the environment (see
`triptych.config`); an unmanaged service is only probed, never started or stopped.
"""

from __future__ import annotations

from ...config import Settings
from .base import Service, ServiceStatus, redact_url, tree_rss
from .functions import Functions
from .kafka import Kafka
from .minio import MinIO
from .mlflow import MLflow
from .monitoring import Alertmanager, Prometheus
from .postgres import Postgres
from .webapps import Api, Dashboard, WebApp

__all__ = [
    "Alertmanager",
    "Api",
    "Dashboard",
    "Functions",
    "Kafka",
    "MLflow",
    "MinIO",
    "Postgres",
    "Prometheus",
    "Service",
    "ServiceStatus",
    "WebApp",
    "all_services",
    "redact_url",
    "tree_rss",
]


def all_services(settings: Settings) -> list[Service]:
    """In start order: MinIO publishes to Kafka, MLflow needs Postgres and MinIO,
    the API and the dashboard need Postgres and MinIO (they start before the
    functions so that their URLs are there first), Prometheus scrapes them all and
    Alertmanager posts to the API, and the functions need all of them."""
    return [
        Postgres(settings),
        Kafka(settings),
        MinIO(settings),
        MLflow(settings),
        Api(settings),
        Dashboard(settings),
        Prometheus(settings),
        Alertmanager(settings),
        Functions(settings),
    ]
