"""The four servers of the local stack, each knowing how to install, start,
probe and stop itself.

A service is *managed* when its URL is not given in the environment (see
`triptych.config`); an unmanaged service is only probed, never started or stopped.
"""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..config import MINIO_KAFKA_TARGET_ID, TOPIC_MINIO_EVENTS, Settings
from ..errors import InstallError, ToolMissingError, UnhealthyError
from .process import (
    PidFile,
    ProcessRecord,
    ensure_port_free,
    spawn_detached,
    stop_process,
    tail,
    wait_until,
)

KAFKA_POM = Path(__file__).resolve().parent / "assets" / "kafka-pom.xml"


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
    def install(self) -> None:
        """Fetch or build what the service needs, once; later calls are no-ops."""

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


# ---------------------------------------------------------------------------
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

    def install(self) -> None:
        if (self.bin_dir / "postgres").exists():
            return
        if os.geteuid() != 0:
            raise ToolMissingError(
                "PostgreSQL 15 is not installed. Run `sudo apt-get install -y postgresql-15`, "
                "or set TRIPTYCH_DATABASE_URL to an existing server."
            )
        _require_tool("apt-get", "to install PostgreSQL 15 from Debian's packages")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        _run_install(["apt-get", "update", "-q"], "apt-get update", env)
        _run_install(["apt-get", "install", "-y", "-q", "postgresql-15"], "Installing PostgreSQL 15", env)

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
                    "-D", str(self.data_path),
                    "--username=postgres",
                    "--auth-local=trust",  # the unix socket is private to the data dir's owner
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                stdout=out, stderr=subprocess.STDOUT, user=self.run_as,
            )
        if proc.returncode != 0:
            raise InstallError(f"initdb failed. Last lines of {log}:\n{tail(log)}")

    def _launch(self) -> int:
        self._prepare_dirs()
        self._initdb()
        self.log_path.touch()
        self._chown(self.log_path)
        return spawn_detached(
            [
                str(self.bin_dir / "postgres"),
                "-D", str(self.data_path),
                "-p", str(self.settings.postgres_port),
                "-c", f"listen_addresses={self.host}",
                "-c", f"unix_socket_directories={self.socket_dir}",
                "-c", "max_connections=200",
            ],
            self.log_path,
            user=self.run_as,
        )

    def healthy(self) -> bool:
        import psycopg2

        if self.managed:
            # Before the role exists only the superuser can log in, over the socket.
            conn = psycopg2.connect(
                host=str(self.socket_dir), port=self.settings.postgres_port, user="postgres", dbname="postgres",
                connect_timeout=2,
            )
        else:
            conn = psycopg2.connect(self.url, connect_timeout=2)
        conn.close()
        return True

    def superuser_dsn(self) -> dict:
        return {"host": str(self.socket_dir), "port": self.settings.postgres_port, "user": "postgres"}


# ---------------------------------------------------------------------------
class Kafka(Service):
    """Apache Kafka in single-node KRaft mode, run from jars fetched from Maven Central."""

    name = "kafka"
    start_timeout = 90.0

    @property
    def url(self) -> str:
        return self.settings.kafka_url

    def ports(self) -> dict[int, str]:
        return {self.settings.kafka_port: "broker", self.settings.kafka_controller_port: "controller"}

    @property
    def libs_dir(self) -> Path:
        return self.settings.cache_dir / f"kafka-{self.settings.kafka_version}" / "libs"

    def version(self) -> str:
        return self.settings.kafka_version

    def install(self) -> None:
        marker = self.libs_dir / ".complete"
        if marker.exists():
            return
        _require_tool("java", "to run Apache Kafka (Java 17 or newer)")
        mvn = _require_tool("mvn", "to fetch Apache Kafka's jars from Maven Central")
        self.libs_dir.mkdir(parents=True, exist_ok=True)
        _run_install(
            [
                mvn, "-q", "-B", "-f", str(KAFKA_POM),
                f"-Dkafka.version={self.settings.kafka_version}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.libs_dir}",
                "-DincludeScope=runtime",
            ],
            f"Fetching Kafka {self.settings.kafka_version} jars with Maven",
        )
        marker.touch()

    def _java(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        java = _require_tool("java", "to run Apache Kafka (Java 17 or newer)")
        log4j = self.data_path / "log4j.properties"
        return [
            java,
            *( [f"-Xmx{heap}", f"-Xms{heap}"] if heap else ["-Xmx256m"] ),
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp", f"{self.libs_dir}/*",
            main, *args,
        ]

    def _write_config(self) -> Path:
        self.data_path.mkdir(parents=True, exist_ok=True)
        s = self.settings
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{s.kafka_port},CONTROLLER://{self.host}:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_path / "data"),
            # One broker: internal topics cannot be replicated.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "num.partitions": "3",
            # Consumers of a single-node dev broker should not wait 3 s per join.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        config = self.data_path / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_path / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
        )
        return config

    def _format_storage(self, config: Path) -> None:
        if (self.data_path / "data" / "meta.properties").exists():
            return
        cluster_id = subprocess.run(
            self._java("kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True, check=True
        ).stdout.strip().splitlines()[-1]
        proc = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)),
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise InstallError(f"Formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")

    def _launch(self) -> int:
        config = self._write_config()
        self._format_storage(config)
        return spawn_detached(self._java("kafka.Kafka", str(config), heap=self.settings.kafka_heap), self.log_path)


    def healthy(self) -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.url, request_timeout_ms=3000, client_id="triptych-probe")
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()


# ---------------------------------------------------------------------------
class MinIO(Service):
    """MinIO built from source with `go install`, publishing bucket events to Kafka."""

    name = "minio"

    @property
    def url(self) -> str:
        return self.settings.s3_url

    def ports(self) -> dict[int, str]:
        return {self.settings.minio_port: "S3 API", self.settings.minio_console_port: "console"}

    @property
    def binary(self) -> Path:
        return self.settings.cache_dir / f"minio-{self.settings.minio_version}" / "minio"

    def version(self) -> str:
        if not self.binary.exists():
            return "not installed"
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True).stdout
        match = re.search(r"version (RELEASE\S+)", out)
        # `go install` builds carry no release tag: the pinned module version names the commit.
        return match.group(1) if match else self.settings.minio_version

    def install(self) -> None:
        if self.binary.exists():
            return
        go = _require_tool("go", "to build MinIO with `go install` (Go 1.24 or newer)")
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        _run_install(
            [go, "install", f"github.com/minio/minio@{self.settings.minio_version}"],
            f"Building MinIO {self.settings.minio_version} with go install (a few minutes, once)",
            env={"GOBIN": str(self.binary.parent), "CGO_ENABLED": "0"},
        )

    def server_env(self) -> dict[str, str]:
        s = self.settings
        t = MINIO_KAFKA_TARGET_ID
        return {
            "MINIO_ROOT_USER": s.s3_access_key,
            "MINIO_ROOT_PASSWORD": s.s3_secret_key,
            # MinIO's own bucket notifications, published straight to Kafka.
            f"MINIO_NOTIFY_KAFKA_ENABLE_{t}": "on",
            f"MINIO_NOTIFY_KAFKA_BROKERS_{t}": s.kafka_url,
            f"MINIO_NOTIFY_KAFKA_TOPIC_{t}": TOPIC_MINIO_EVENTS,
            # No on-disk queue (MINIO_NOTIFY_KAFKA_QUEUE_DIR): MinIO replays its queue only
            # every 3 s, which added 1.5 s on average to every image. An event MinIO cannot
            # deliver while Kafka is away is recovered by ingest's sweep (Ingestor.sweep).
            "MINIO_UPDATE": "off",
            "MINIO_CI_CD": "1",
        }

    def _launch(self) -> int:
        self.data_path.mkdir(parents=True, exist_ok=True)
        s = self.settings
        return spawn_detached(
            [
                str(self.binary), "server", str(self.data_path),
                "--address", f"{self.host}:{s.minio_port}",
                "--console-address", f"{self.host}:{s.minio_console_port}",
                "--quiet",
            ],
            self.log_path,
            env=self.server_env(),
        )


    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/minio/health/ready", timeout=2) as resp:
            return resp.status == 200


# ---------------------------------------------------------------------------
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
                sys.executable, "-m", "mlflow", "server",
                # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; we ship psycopg2.
                "--backend-store-uri", s.mlflow_backend_store_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                "--artifacts-destination", f"s3://{s.mlflow_bucket}",
                "--host", self.host,
                "--port", str(s.mlflow_port),
                "--workers", "1",
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
        from .. import __version__

        return __version__

    def _launch(self) -> int:
        from ..runtime.supervisor import status_path

        status_path(self.settings).unlink(missing_ok=True)
        return spawn_detached(
            [sys.executable, "-m", "triptych.runtime.supervisor", "--project", str(self.settings.project_file)],
            self.log_path,
        )

    def healthy(self) -> bool:
        from ..runtime.supervisor import read_status

        status = read_status(self.settings)
        return bool(status) and self.pidfile.live_process() is not None and status.get("pid") == self.pidfile.read().pid


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


def all_services(settings: Settings) -> list[Service]:
    """In start order: MinIO publishes to Kafka, MLflow needs Postgres and MinIO,
    the API and the dashboard need Postgres and MinIO (they start before the
    functions so that their URLs are there first), and the functions need all of them."""
    return [Postgres(settings), Kafka(settings), MinIO(settings), MLflow(settings), Api(settings),
            Dashboard(settings), Functions(settings)]

