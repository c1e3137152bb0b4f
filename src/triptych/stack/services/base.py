"""What every server of the stack has: a status, install/start/probe/stop, and
the helpers they share."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import psutil

from ...config import Settings
from ...errors import InstallError, ToolMissingError, UnhealthyError
from ..prebuild import Report, quiet
from ..process import (
    PidFile,
    ProcessRecord,
    ensure_port_free,
    stop_process,
    tail,
    wait_until,
)


@dataclass
class ServiceStatus:
    name: str
    managed: bool
    state: str  # "up" | "down"
    url: str
    version: str
    data_dir: str | None
    pid: int | None
    rss_mb: float | None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class Service(ABC):
    name: str
    stop_signal: int = signal.SIGTERM
    start_timeout: float = 60.0
    stop_timeout: float = 30.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self.host = settings.bind_host
        self.pidfile = PidFile(settings.data_dir / "run" / f"{self.name}.pid")
        self.log_path = settings.data_dir / "logs" / f"{self.name}.log"

    # -- description --------------------------------------------------------
    @property
    def managed(self) -> bool:
        return self.settings.is_managed(self.name)

    @property
    def enabled(self) -> bool:
        """False for a part the settings switched off: `up` leaves it alone."""
        return True

    @property
    def data_path(self) -> Path:
        return self.settings.data_dir / self.name

    @property
    @abstractmethod
    def url(self) -> str: ...

    @abstractmethod
    def ports(self) -> dict[int, str]:
        """The loopback ports this service binds, with what each is for."""

    @abstractmethod
    def version(self) -> str: ...

    # -- lifecycle ----------------------------------------------------------
    def install(self, report: Report = quiet) -> None:  # noqa: B027 - a hook: most services have nothing to install
        """Fetch or build what the service needs, once; later calls are no-ops. A long
        install says how far it is through `report`."""

    @abstractmethod
    def _launch(self) -> int:
        """Start the server detached and return its pid."""

    @abstractmethod
    def healthy(self) -> bool: ...

    def running(self) -> bool:
        if not self.managed:
            return self.healthy()
        return self.pidfile.live_process() is not None

    def check_ports(self) -> None:
        for port, purpose in self.ports().items():
            ensure_port_free(self.host, port, f"{self.name} {purpose}")

    def start(self) -> None:
        self.pidfile.write(ProcessRecord.of(self._launch()))
        try:
            if not wait_until(self._healthy_and_alive, self.start_timeout, interval=0.5):
                raise UnhealthyError(
                    f"{self.name} did not become healthy within {self.start_timeout:.0f}s. "
                    f"Last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
        except BaseException:
            self.stop()
            raise

    def _healthy_and_alive(self) -> bool:
        if self.pidfile.live_process() is None:
            raise UnhealthyError(
                f"{self.name} exited during start-up. Last lines of {self.log_path}:\n{tail(self.log_path)}"
            )
        return self.healthy()

    def stop(self) -> None:
        proc = self.pidfile.live_process()
        if proc is not None:
            stop_process(proc, self.stop_signal, self.stop_timeout)
        self.pidfile.remove()

    def status(self) -> ServiceStatus:
        proc = self.pidfile.live_process() if self.managed else None
        try:
            up = self.healthy() if (proc is not None or not self.managed) else False
        except Exception:  # noqa: BLE001 - a failed probe means down
            up = False
        rss = round(tree_rss(proc) / 2**20, 1) if proc is not None else None
        return ServiceStatus(
            name=self.name,
            managed=self.managed,
            state=("up" if up else "down") if self.enabled else "disabled",
            url=redact_url(self.url),
            version=self.version() if self.managed else "external",
            data_dir=str(self.data_path) if self.managed else None,
            pid=proc.pid if proc else None,
            rss_mb=rss,
        )


class OwnServer(Service):
    """A server this stack always runs itself (no external URL to point at), with
    `<name>_url` and `<name>_port` settings, switched off by its `autostart_setting`."""

    purpose: str  # what its port is for, as `status` and port conflicts name it
    autostart_setting: str = ""  # default: `<name>_autostart`

    @property
    def managed(self) -> bool:
        return True  # always ours

    @property
    def enabled(self) -> bool:
        return getattr(self.settings, self.autostart_setting or f"{self.name}_autostart")

    @property
    def url(self) -> str:
        return getattr(self.settings, f"{self.name}_url")

    def ports(self) -> dict[int, str]:
        return {getattr(self.settings, f"{self.name}_port"): self.purpose}


def tree_rss(proc) -> int:
    """Resident memory of a process and its children, in bytes. A child that exits
    while we look (a Postgres backend whose client just left) is skipped, not
    allowed to blank the whole figure."""
    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        members = [proc]
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def redact_url(url: str) -> str:
    """Hide the password in a URL meant for display."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def _require_tool(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise ToolMissingError(f"`{tool}` was not found on PATH; it is needed {why}.")
    return path


def _run_install(argv: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd)
    if proc.returncode != 0:
        out = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise InstallError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n{out}")


def apt_install(packages: list[str], what: str, instead: str) -> None:
    """Install Debian packages (as root: the test and CI machines are); otherwise
    say which command to run, or `instead` what else to do."""
    if os.geteuid() != 0:
        raise ToolMissingError(
            f"{what} is not installed. Run `sudo apt-get install -y --no-install-recommends "
            f"{' '.join(packages)}`, or {instead}."
        )
    _require_tool("apt-get", f"to install {what} from Debian's packages")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run_install(["apt-get", "update", "-q"], "apt-get update", env)
    _run_install(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], f"Installing {what}", env)
