"""The MLflow tracking server and model registry (from PyPI)."""

from __future__ import annotations

import importlib.metadata
import sys
import urllib.request

from ..process import spawn_detached
from .base import Service


class MLflow(Service):
    """The MLflow tracking server: runs and registry in Postgres, artifacts in MinIO."""

    name = "mlflow"
    start_timeout = 180.0  # the first start creates MLflow's schema

    @property
    def url(self) -> str:
        return self.settings.mlflow_url

    def ports(self) -> dict[int, str]:
        return {self.settings.mlflow_port: "tracking server"}

    def version(self) -> str:
        return importlib.metadata.version("mlflow")

    def _launch(self) -> int:
        s = self.settings
        self.data_path.mkdir(parents=True, exist_ok=True)
        return spawn_detached(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; we ship psycopg2.
                "--backend-store-uri",
                s.mlflow_backend_store_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                "--artifacts-destination",
                f"s3://{s.mlflow_bucket}",
                "--host",
                self.host,
                "--port",
                str(s.mlflow_port),
                "--workers",
                "1",
            ],
            self.log_path,
            # MLflow's background job runner (GenAI scorers/optimisers) forks seven worker
            # processes, ~1 GB; Triptych does not use it.
            env={**s.s3_client_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            cwd=self.data_path,
        )

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
            return resp.status == 200
