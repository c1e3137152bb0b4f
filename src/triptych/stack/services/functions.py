"""The supervisor of the project's functions (the local runner or Nuclio's processor)."""

from __future__ import annotations

import sys
from pathlib import Path

from ... import __version__
from ...control import read_status, status_path
from ...security.db_roles import COMPONENT_ENV
from ..process import spawn_detached
from .base import Service


class Functions(Service):
    """The supervisor of the project's functions (the local Nuclio-compatible runner)."""

    name = "functions"
    start_timeout = 30.0
    stop_timeout = 90.0  # the supervisor drains every replica (each up to 60 s, in parallel)

    @property
    def managed(self) -> bool:
        return True  # always ours: there is no external supervisor to point at

    @property
    def enabled(self) -> bool:
        return self.settings.functions_autostart

    @property
    def url(self) -> str:
        return str(self.settings.project_file)

    @property
    def data_path(self) -> Path:
        return self.settings.data_dir / "functions"

    def ports(self) -> dict[int, str]:
        return {}  # replicas bind ephemeral metrics ports; HTTP triggers are checked by the replicas

    def version(self) -> str:
        return __version__

    def _launch(self) -> int:
        status_path(self.settings).unlink(missing_ok=True)
        return spawn_detached(
            [sys.executable, "-m", "triptych.runtime.supervisor", "--project", str(self.settings.project_file)],
            self.log_path,
            # Its own PostgreSQL role; each replica takes its declaration's instead.
            env={COMPONENT_ENV: "supervisor"},
        )

    def healthy(self) -> bool:
        status = read_status(self.settings)
        record = self.pidfile.read()
        return (
            bool(status)
            and record is not None
            and self.pidfile.live_process() is not None
            and status.get("pid") == record.pid
        )
