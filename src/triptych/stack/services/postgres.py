"""PostgreSQL 15 from Debian, run as its own cluster in the data dir."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path

import psutil

from ...errors import InstallError
from ..prebuild import Report, quiet
from ..process import spawn_detached, tail
from .base import Service, apt_install


class Postgres(Service):
    """PostgreSQL 15 from Debian's packages. As root, initdb and the server run as
    the `postgres` user, because PostgreSQL refuses to run as root."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back clients, checkpoint, exit
    bin_dir = Path("/usr/lib/postgresql/15/bin")

    @property
    def url(self) -> str:
        return self.settings.postgres_url

    def ports(self) -> dict[int, str]:
        return {self.settings.postgres_port: "server"}

    @property
    def run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    @property
    def socket_dir(self) -> Path:
        return self.settings.data_dir / "run" / "pg-socket"

    def version(self) -> str:
        try:
            out = subprocess.run([str(self.bin_dir / "postgres"), "--version"], capture_output=True, text=True).stdout
            return out.split()[2]  # "postgres (PostgreSQL) 15.18 (Debian ...)"
        except FileNotFoundError:
            return "not installed"

    def install(self, report: Report = quiet) -> None:
        if (self.bin_dir / "postgres").exists():
            return
        apt_install(["postgresql-15"], "PostgreSQL 15", "set TRIPTYCH_DATABASE_URL to an existing server")

    def _chown(self, path: Path) -> None:
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _prepare_dirs(self) -> None:
        for path in (self.data_path, self.socket_dir, self.log_path.parent):
            path.mkdir(parents=True, exist_ok=True)
        self.data_path.chmod(0o700)
        self._chown(self.data_path)
        self._chown(self.socket_dir)
        if self.run_as:
            # The server user must be able to reach its data dir through every parent.
            probe = subprocess.run(["runuser", "-u", self.run_as, "--", "test", "-w", str(self.data_path)])
            if probe.returncode != 0:
                raise InstallError(
                    f"The `{self.run_as}` user cannot write {self.data_path}; a parent directory is not "
                    f"traversable. Choose another TRIPTYCH_DATA_DIR (e.g. under /var/lib or /tmp)."
                )

    def _initdb(self) -> None:
        if (self.data_path / "PG_VERSION").exists():
            return
        log = self.settings.data_dir / "logs" / "postgres-initdb.log"
        with open(log, "wb") as out:
            proc = subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_path),
                    "--username=postgres",
                    "--auth-local=trust",  # the unix socket is private to the data dir's owner
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self.run_as,
            )
        if proc.returncode != 0:
            raise InstallError(f"initdb failed. Last lines of {log}:\n{tail(log)}")

    def _admit_networks(self) -> None:
        """Workers on other hosts log in over TCP with a password (pg_hba admits
        only loopback after initdb); rewritten at each start from the setting."""
        hba = self.data_path / "pg_hba.conf"
        marker = "# triptych: postgres_allowed_networks\n"
        text = hba.read_text()
        text = text.split(marker)[0]
        if self.settings.postgres_allowed_networks:
            text += marker + "".join(
                f"host all all {net} scram-sha-256\n" for net in self.settings.postgres_allowed_networks
            )
        hba.write_text(text)

    def _clear_stale_locks(self) -> None:
        """Remove the locks (`postmaster.pid`, and the socket's) of a server that was
        killed and is now a zombie. PostgreSQL refuses to start while the pid in a
        lock answers kill(pid, 0), and a zombie does until whoever adopted it reaps
        it; an orphaned server's reaper is the host's init, which may take its time."""
        for lock in (
            self.data_path / "postmaster.pid",
            self.socket_dir / f".s.PGSQL.{self.settings.postgres_port}.lock",
        ):
            try:
                pid = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if stale_lock_pid(pid):
                lock.unlink(missing_ok=True)

    def _launch(self) -> int:
        self._prepare_dirs()
        self._initdb()
        self._clear_stale_locks()
        self._admit_networks()
        self.log_path.touch()
        self._chown(self.log_path)
        return spawn_detached(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data_path),
                "-p",
                str(self.settings.postgres_port),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                "-c",
                "max_connections=200",
            ],
            self.log_path,
            user=self.run_as,
        )

    def healthy(self) -> bool:
        import psycopg2

        if self.managed:
            # Before the role exists only the superuser can log in, over the socket.
            conn = psycopg2.connect(
                host=str(self.socket_dir),
                port=self.settings.postgres_port,
                user="postgres",
                dbname="postgres",
                connect_timeout=2,
            )
        else:
            conn = psycopg2.connect(self.url, connect_timeout=2)
        conn.close()
        return True

    def superuser_dsn(self) -> dict:
        return {"host": str(self.socket_dir), "port": self.settings.postgres_port, "user": "postgres"}


def stale_lock_pid(pid: int) -> bool:
    """True when the process a lock file names is gone or a zombie: it can hold
    nothing. A live process of any kind is left to PostgreSQL's own check."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


# ---------------------------------------------------------------------------
