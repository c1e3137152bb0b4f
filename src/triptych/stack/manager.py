"""`up`, `down` and `status` for the whole stack.

`up` checks every port first (so a clash is reported before anything starts),
installs what is missing, then starts the servers in dependency order and
provisions them. If any step fails, the servers this call started are stopped
again: a half-started stack is never left behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import StackError
from .prebuild import Report
from .provision import (
    provision_bucket_users,
    provision_buckets,
    provision_kafka_logins,
    provision_local_keys,
    provision_postgres,
    provision_schema,
    provision_topics,
)
from .services import Postgres, Service, ServiceStatus, all_services

# What each role of `triptych up --role` runs; "all" runs every server on one host.
ROLE_SERVICES: dict[str, tuple[str, ...]] = {
    "kafka": ("kafka",),
    "minio": ("minio",),
    "postgres": ("postgres",),
    "mlflow": ("mlflow",),
    "web": ("api", "dashboard"),
    "monitoring": ("prometheus", "alertmanager"),
    "worker": ("functions",),
}


@dataclass
class UpResult:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    migrations_applied: list[str] = field(default_factory=list)
    topics_created: list[str] = field(default_factory=list)
    key_files: dict[str, Path] = field(default_factory=dict)


def _probe(svc: Service) -> bool:
    try:
        return svc.healthy()
    except Exception:  # noqa: BLE001 - any failure to connect means "not reachable"
        return False


class Stack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.services: list[Service] = all_services(settings)
        roles = settings.roles
        # The servers of this host's roles, in start order; the others run elsewhere.
        self.own = (
            self.services
            if "all" in roles
            else [svc for svc in self.services if any(svc.name in ROLE_SERVICES[role] for role in roles)]
        )

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    # -----------------------------------------------------------------------
    def up(self, report: Report = lambda _msg: None) -> UpResult:
        if self.settings.bench_null_models:
            raise StackError(
                "TRIPTYCH_BENCH_NULL_MODELS is set: it replaces every model with a fixed answer and is for "
                "`triptych bench --null-models` alone; unset it to start the stack"
            )
        result = UpResult()
        to_start = []
        active = [svc for svc in self.own if svc.enabled]
        for svc in active:
            if not svc.managed:
                result.external.append(svc.name)
            elif svc.running():
                result.already_running.append(svc.name)
            else:
                to_start.append(svc)
        for svc in to_start:  # every clash reported before anything starts
            svc.check_ports()
        for svc in to_start:
            report(f"installing {svc.name}")
            svc.install(report)

        # Each provisioning step runs right after the servers it needs are up.
        def after_postgres() -> None:
            postgres = self.service("postgres")
            assert isinstance(postgres, Postgres)
            provision_postgres(self.settings, postgres)
            result.migrations_applied.extend(provision_schema(self.settings))
            result.key_files.update(provision_local_keys(self.settings))

        def after_kafka() -> None:
            result.topics_created.extend(provision_topics(self.settings))
            provision_kafka_logins(self.settings)

        def after_minio() -> None:
            provision_buckets(self.settings)
            provision_bucket_users(self.settings)

        after_start: dict[str, Callable[[], None]] = {
            "postgres": after_postgres,
            "kafka": after_kafka,
            "minio": after_minio,
        }
        try:
            for svc in active:
                if svc in to_start:
                    report(f"starting {svc.name}")
                    svc.start()
                    result.started.append(svc.name)
                elif not _probe(svc):
                    raise StackError(f"{svc.name} at {svc.url} is not reachable.")
                if svc.name in after_start:
                    report(f"provisioning {svc.name}")
                    after_start[svc.name]()
        except BaseException:
            for name in reversed(result.started):
                self.service(name).stop()
            raise
        return result

    def down(self, purge: bool = False, report: Report = lambda _msg: None) -> list[str]:
        stopped = []
        for svc in reversed(self.own):  # dependents first
            if svc.managed and svc.pidfile.live_process() is not None:
                report(f"stopping {svc.name}")
                svc.stop()
                stopped.append(svc.name)
        if purge and self.settings.data_dir.exists():
            report(f"deleting {self.settings.data_dir}")
            shutil.rmtree(self.settings.data_dir)
        return stopped

    def status(self) -> list[ServiceStatus]:
        return [svc.status() for svc in self.own]
