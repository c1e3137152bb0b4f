"""The Helm chart (infra/helm/triptych) driven by the Helm binary: rendered,
installed, upgraded. `triptych deploy` and the chart's test both come through here."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import REPO_ROOT, Settings
from ..errors import StackError
from . import go_tools

CHART_DIR = REPO_ROOT / "infra" / "helm" / "triptych"


class HelmError(StackError):
    pass


@dataclass
class Release:
    """One release of the chart: its name, namespace, values and cluster."""

    name: str = "triptych"
    namespace: str = "triptych"
    values_files: Sequence[Path] = ()
    sets: Sequence[str] = ()  # --set key=value
    kubeconfig: Path | None = None
    chart: Path = CHART_DIR
    extra: list[str] = field(default_factory=list)

    def _value_args(self) -> list[str]:
        args = [arg for path in self.values_files for arg in ("--values", str(path))]
        return args + [arg for item in self.sets for arg in ("--set", item)]

    def _cluster_args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []


def helm(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(go_tools.helm(settings)), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise HelmError(f"helm {' '.join(args[:2])} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def _require_chart(release: Release) -> None:
    if not (release.chart / "Chart.yaml").exists():
        raise HelmError(f"The chart is not at {release.chart}: run this from a Triptych checkout, or pass --chart.")


def lint(settings: Settings, release: Release) -> str:
    _require_chart(release)
    return helm(settings, "lint", "--strict", str(release.chart), *release._value_args()).stdout


def template(settings: Settings, release: Release) -> str:
    """Every object the release would apply, as YAML documents."""
    _require_chart(release)
    return helm(
        settings,
        "template",
        release.name,
        str(release.chart),
        "--namespace",
        release.namespace,
        *release._value_args(),
        *release.extra,
    ).stdout


def documents(rendered: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def upgrade_install(settings: Settings, release: Release) -> str:
    """Install the release, or upgrade it to these values (what `triptych deploy` runs)."""
    _require_chart(release)
    # --force-conflicts: each NuclioFunction's status.state is the chart's request that
    # Nuclio's controller (re)deploy it, a field the controller owns once it answered;
    # an upgrade must take it back, or server-side apply refuses the upgrade.
    return helm(
        settings,
        "upgrade",
        "--install",
        release.name,
        str(release.chart),
        "--namespace",
        release.namespace,
        "--create-namespace",
        "--force-conflicts",
        *release._value_args(),
        *release._cluster_args(),
        *release.extra,
    ).stdout


def uninstall(settings: Settings, release: Release) -> str:
    return helm(
        settings, "uninstall", release.name, "--namespace", release.namespace, "--wait", *release._cluster_args()
    ).stdout


def manifest(settings: Settings, release: Release) -> list[dict]:
    """The objects Helm recorded for the installed release."""
    return documents(
        helm(
            settings, "get", "manifest", release.name, "--namespace", release.namespace, *release._cluster_args()
        ).stdout
    )
