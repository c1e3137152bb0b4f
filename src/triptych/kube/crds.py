"""The CustomResourceDefinitions the chart's objects need, from the operators' own
Go modules (served by the Go module proxy, like the binaries): KEDA's
ScaledObject, CloudNativePG's Cluster, and Nuclio's NuclioFunction (Helm templates
in Nuclio's chart, rendered here). Strimzi publishes its CRDs in no module or jar
the registries here serve, so the chart runs Kafka as a plain StatefulSet."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from ..config import Settings
from ..errors import InstallError, ToolMissingError
from ..runtime.nuclio_processor import NUCLIO_MODULE, NUCLIO_VERSION
from . import go_tools

KEDA = (*go_tools.KEDA_MODULE, "config/crd/bases")
CLOUDNATIVE_PG = ("github.com/cloudnative-pg/cloudnative-pg", "v1.27.1", "config/crd/bases")
NUCLIO_CHART = "hack/k8s/helm/nuclio"


def module_dir(module: str, version: str) -> Path:
    """The module's source in Go's module cache (downloaded once)."""
    go = shutil.which("go")
    if not go:
        raise ToolMissingError(f"`go` was not found on PATH; it fetches {module} for its CRDs")
    proc = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(f"go mod download {module}@{version} failed:\n{proc.stderr[-2000:]}")
    return Path(json.loads(proc.stdout)["Dir"])


def _yaml_files(folder: Path) -> list[dict]:
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def nuclio_crds(settings: Settings) -> list[dict]:
    chart = module_dir(NUCLIO_MODULE, NUCLIO_VERSION) / NUCLIO_CHART
    proc = subprocess.run(
        [
            str(go_tools.helm(settings)),
            "template",
            "nuclio",
            str(chart),
            "--set",
            "crd.create=true",
            *[
                arg
                for path in sorted((chart / "templates" / "crd").glob("*.yaml"))
                for arg in ("--show-only", f"templates/crd/{path.name}")
            ],
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise InstallError(f"rendering Nuclio's CRDs from its chart failed:\n{proc.stderr[-2000:]}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def operator_crds(settings: Settings) -> list[dict]:
    """Every CRD of KEDA, CloudNativePG and Nuclio at the versions the chart is written for."""
    crds = []
    for module, version, folder in (KEDA, CLOUDNATIVE_PG):
        crds += _yaml_files(module_dir(module, version) / folder)
    return crds + nuclio_crds(settings)
