"""Our own web servers: the API and the dashboard."""

from __future__ import annotations

import importlib.metadata
import sys
import urllib.request

from ..process import spawn_detached
from .base import Service


class WebApp(Service):
    """One of our own web servers, run as `triptych <name>` (the API, the dashboard):
    always managed here, switched off by its `<name>_autostart` setting, healthy when
    `probe_path` answers 200."""

    package: str  # whose version `status` shows
    purpose: str  # what its port is for
    probe_path: str = "/health"
    start_timeout = 60.0

    @property
    def managed(self) -> bool:
        return True  # always ours

    @property
    def enabled(self) -> bool:
        return getattr(self.settings, f"{self.name}_autostart")

    @property
    def url(self) -> str:
        return getattr(self.settings, f"{self.name}_url")

    def ports(self) -> dict[int, str]:
        return {getattr(self.settings, f"{self.name}_port"): self.purpose}

    def version(self) -> str:
        return importlib.metadata.version(self.package)

    def _launch(self) -> int:
        return spawn_detached([sys.executable, "-m", "triptych.cli", self.name], self.log_path)

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
