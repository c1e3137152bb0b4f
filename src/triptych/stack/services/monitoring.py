"""Prometheus and Alertmanager, from Debian's packages (`prometheus` 2.42,
`prometheus-alertmanager` 0.25).

Debian's packages over building `cmd/prometheus` from its Go module: the module
alone builds a server without its web UI (the React assets are not in it), the
packages bring `promtool` (the rule tests) and Alertmanager with them, and they
install in seconds like PostgreSQL does here. Their systemd units are never used:
each server runs from this stack's own config in its data dir.

What Prometheus scrapes (every `prometheus_scrape_interval`, kept
`prometheus_retention`): every function replica, through the file-SD targets each
replica writes (`runtime.targets`, re-read every 5 s as replicas come and go), the
supervisor itself (desired, alive and ready replicas), the supervisors and replicas
of other hosts named in `prometheus_remote_supervisors` (by HTTP discovery), the API, the dashboard, MinIO's cluster metrics and itself.
Kafka and PostgreSQL are not scraped: the consumer lag comes from the functions,
and neither exporter paid for its memory on two cores. The alert rules are
`infra/prometheus/rules/*.yml`; Alertmanager sends every alert to the API's
receiver (which writes `system_events`, so the dashboard shows them) and, when
`alert_webhook_url` is set, to that webhook too.
"""

from __future__ import annotations

import functools
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from ...config import REPO_ROOT
from ...control import supervisor_target_path, targets_dir
from ...db.alerts import REPEAT_MINUTES
from ...durations import parse_duration
from ...security.keys import key_file
from ..prebuild import Report, quiet
from ..process import spawn_detached
from .base import OwnServer, apt_install

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
PACKAGES = ["prometheus", "prometheus-alertmanager"]


RULES_DIR = REPO_ROOT / "infra" / "prometheus" / "rules"


def install_monitoring() -> None:
    if not (PROMETHEUS.exists() and PROMTOOL.exists() and ALERTMANAGER.exists()):
        apt_install(PACKAGES, "Prometheus and Alertmanager", "set TRIPTYCH_MONITORING_AUTOSTART=false")


def _binary_version(binary: Path) -> str:
    if not binary.exists():
        return "not installed"
    return _installed_version(binary)


@functools.cache
def _installed_version(binary: Path) -> str:
    """Asked by every `status` (the dashboard's health every few seconds): run once."""
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    first = (out.stdout or out.stderr).splitlines()[:1]
    return first[0].split("version", 1)[-1].split()[0] if first else "unknown"


def _ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
        return resp.status == 200


class MonitoringServer(OwnServer):
    """What Prometheus and Alertmanager share: Debian's binary, on when
    `monitoring_autostart`, ready when `/-/ready` answers, configured at each start."""

    binary: Path
    autostart_setting = "monitoring_autostart"

    def version(self) -> str:
        return _binary_version(self.binary)

    def install(self, report: Report = quiet) -> None:
        install_monitoring()

    def healthy(self) -> bool:
        return _ready(self.url)

    def write_config(self) -> Path:
        self.data_path.mkdir(parents=True, exist_ok=True)
        path = self.data_path / f"{self.name}.yml"
        path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        return path

    def config(self) -> dict:
        """The server's YAML config, as a dict."""
        raise NotImplementedError


class Prometheus(MonitoringServer):
    name, binary, purpose = "prometheus", PROMETHEUS, "Prometheus UI and API"

    def config(self) -> dict:
        s = self.settings
        host = s.bind_host
        static = [
            ("api", [f"{host}:{s.api_port}"], "/metrics"),
            ("dashboard", [f"{host}:{s.dashboard_port}"], "/metrics"),
            ("prometheus", [f"{host}:{s.prometheus_port}"], "/metrics"),
        ]
        jobs: list[dict[str, Any]] = [
            {"job_name": name, "metrics_path": path, "static_configs": [{"targets": targets}]}
            for name, targets, path in static
        ]
        if s.is_managed("minio"):
            # MinIO serves these without a token: MINIO_PROMETHEUS_AUTH_TYPE=public (see minio.py).
            jobs.append(
                {
                    "job_name": "minio",
                    "metrics_path": "/minio/v2/metrics/cluster",
                    "static_configs": [{"targets": [f"{host}:{s.minio_port}"]}],
                }
            )
        jobs += [
            {
                "job_name": "functions",
                "file_sd_configs": [{"files": [str(targets_dir(s) / "*.json")], "refresh_interval": "5s"}],
            },
            {
                "job_name": "supervisor",
                "file_sd_configs": [{"files": [str(supervisor_target_path(s))], "refresh_interval": "5s"}],
            },
        ]
        if s.prometheus_remote_supervisors:
            # Workers on other hosts: each supervisor lists itself and its replicas at
            # /targets; its own target carries component="supervisor", its replicas' do not.
            remote = [
                {"url": f"http://{address}/targets", "refresh_interval": "5s"}
                for address in s.prometheus_remote_supervisors
            ]
            keep = {"functions": "drop", "supervisor": "keep"}
            for job in jobs[-2:]:
                job["http_sd_configs"] = remote
                job["relabel_configs"] = [
                    {"source_labels": ["component"], "regex": "supervisor", "action": keep[job["job_name"]]}
                ]
        return {
            "global": {
                "scrape_interval": s.prometheus_scrape_interval,
                # At most the interval (Prometheus refuses a longer one), at most 10 s.
                "scrape_timeout": s.prometheus_scrape_interval
                if parse_duration(s.prometheus_scrape_interval) <= 10
                else "10s",
                "evaluation_interval": s.prometheus_scrape_interval,
            },
            "rule_files": [str(RULES_DIR / "triptych.yml")],  # not *.yml: the rule tests live there too
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{host}:{s.alertmanager_port}"]}]}]},
            "scrape_configs": jobs,
        }

    def _launch(self) -> int:
        targets_dir(self.settings).mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        return spawn_detached(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data_path / 'tsdb'}",
                f"--storage.tsdb.retention.time={self.settings.prometheus_retention}",
                f"--web.listen-address={self.host}:{self.settings.prometheus_port}",
                "--web.enable-lifecycle",  # POST /-/reload re-reads the rules
            ],
            self.log_path,
        )


class Alertmanager(MonitoringServer):
    name, binary, purpose = "alertmanager", ALERTMANAGER, "Alertmanager UI and API"

    def config(self) -> dict:
        s = self.settings
        # The API's receiver writes system_events; it takes the local key (scope admin).
        triptych = {
            "url": f"{s.api_url}/alerts/alertmanager",
            "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(key_file(s, "local"))}},
        }
        receivers = [{"name": "triptych", "webhook_configs": [triptych]}]
        routes = []
        if s.alert_webhook_url:
            receivers.append(
                {"name": "webhook", "webhook_configs": [{"url": s.alert_webhook_url, "send_resolved": True}]}
            )
            routes = [{"receiver": "webhook", "continue": True}]
        return {
            "route": {
                "receiver": "triptych",
                "group_by": ["alertname", "function", "model"],
                "group_wait": "5s",
                "group_interval": "30s",
                # Re-sent while it fires: what keeps an alert "active" in system_events.
                "repeat_interval": f"{REPEAT_MINUTES}m",
                "routes": [*routes, {"receiver": "triptych"}] if routes else [],
            },
            "receivers": receivers,
        }

    def _launch(self) -> int:
        config = self.write_config()
        return spawn_detached(
            [
                str(ALERTMANAGER),
                f"--config.file={config}",
                f"--storage.path={self.data_path}",
                f"--web.listen-address={self.host}:{self.settings.alertmanager_port}",
                "--cluster.listen-address=",  # one instance: no gossip port
            ],
            self.log_path,
        )
