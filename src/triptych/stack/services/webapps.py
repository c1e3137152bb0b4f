"""Our own web servers: the API and the dashboard."""

from __future__ import annotations

import importlib.metadata
import sys
import urllib.request

from ...security.db_roles import COMPONENT_ENV
from ..process import spawn_detached
from .base import OwnServer


class WebApp(OwnServer):
    """One of our own web servers, run as `triptych <name>` (the API, the dashboard):
    always managed here, switched off by its `<name>_autostart` setting, healthy when
    `probe_path` answers 200."""

    package: str  # whose version `status` shows
    probe_path: str = "/health"
    start_timeout = 60.0

    def version(self) -> str:
        return importlib.metadata.version(self.package)

    def _launch(self) -> int:
        # Each logs in to PostgreSQL as its own role (triptych.security.db_roles).
        return spawn_detached(
            [sys.executable, "-m", "triptych.cli", self.name], self.log_path, env={COMPONENT_ENV: self.name}
        )

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}{self.probe_path}", timeout=2) as resp:
            return resp.status == 200


class Dashboard(WebApp):
    """The Dash app (dash_app/): reads Postgres and MinIO, uploads through the upload function."""

    name, package, purpose = "dashboard", "dash", "web app"


class Api(WebApp):
    """The query API (triptych.api): REST + GraphQL over Postgres and MinIO."""

    name, package, purpose = "api", "fastapi", "REST and GraphQL API"
    probe_path = "/"  # `/` answers whenever the process serves; `/health` is about its dependencies
