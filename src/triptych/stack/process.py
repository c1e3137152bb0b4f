"""Detached server processes tracked by pid files, and loopback port checks.

A server started by `triptych up` must outlive the command that started it, so it
runs in its own session with its output in a log file, and its pid is written to
``<data>/run/<name>.pid``. The pid file also records the process' start time, so
that a recycled pid belonging to someone else is never signalled. (The start time,
unlike the command line, is already final between fork and exec.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..errors import PortInUseError, StackError


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        return cls(pid=pid, create_time=psutil.Process(pid).create_time())

    def process(self) -> psutil.Process | None:
        try:
            proc = psutil.Process(self.pid)
            if proc.create_time() != self.create_time or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None


class PidFile:
    def __init__(self, path: Path):
        self.path = path

    def read(self) -> ProcessRecord | None:
        try:
            data = json.loads(self.path.read_text())
            return ProcessRecord(pid=int(data["pid"]), create_time=float(data["create_time"]))
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def write(self, record: ProcessRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": record.pid, "create_time": record.create_time}))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def live_process(self) -> psutil.Process | None:
        record = self.read()
        return record.process() if record else None


def spawn_detached(
    argv: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start a server in its own session (so Ctrl-C on the CLI does not reach it)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
            user=user,
        )
    return proc.pid


def stop_process(proc: psutil.Process, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Ask nicely, wait, then kill: servers get the chance to flush and close cleanly.
    A server we started leads its own process group; if it has to be killed, its
    children (Postgres backends, function replicas) go with it."""
    try:
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass


def port_owner(port: int) -> str | None:
    """Describe the process listening on a TCP port, if it can be seen."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "an unknown process"
            try:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({proc.name()}: {' '.join(proc.cmdline())[:120]})"
            except psutil.NoSuchProcess:
                return f"pid {conn.pid}"
    return None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ensure_port_free(host: str, port: int, purpose: str) -> None:
    if port_is_free(host, port):
        return
    owner = port_owner(port)
    who = f" by {owner}" if owner else ""
    raise PortInUseError(
        f"Port {port} on {host} ({purpose}) is already in use{who}. "
        f"Stop that process, or choose another port (see `triptych status` and the "
        f"TRIPTYCH_*_PORT settings), or point Triptych at an existing server with its URL setting."
    )


def wait_until(predicate, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except StackError:
            raise  # a definite failure (the process died), not a "not yet"
        except Exception:  # noqa: BLE001 - a probe failing just means "not yet"
            pass
        time.sleep(interval)
    return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"
