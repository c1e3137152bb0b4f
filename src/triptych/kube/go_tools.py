"""kube-apiserver, etcd and Helm, built from the Go module proxy once and cached.

None of them can be `go install`ed directly: `k8s.io/kubernetes` replaces its 31
staging modules with local paths, etcd's server module replaces its siblings the
same way, and the proxy refuses the version list `go install` asks for. So each is
built from a small wrapper module of our own (a go.mod that requires the module,
with the replaces pointed at the published versions, and a tools.go that imports
the main package), the way controller-runtime's envtest binaries are made.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import InstallError, ToolMissingError

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v4.3.2"
COREDNS_VERSION = "v1.12.4"
PROMETHEUS_MODULE = ("github.com/prometheus/prometheus", "v0.308.0")  # Prometheus 3.8
KEDA_MODULE = ("github.com/kedacore/keda/v2", "v2.18.1")

# The staging modules k8s.io/kubernetes replaces with ./staging/src/...; each is
# published as v0.<minor>.<patch> of the same release.
_K8S_STAGING = [
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
]
_ETCD_SIBLINGS = ["api/v3", "client/pkg/v3", "client/v3", "pkg/v3"]


@dataclass(frozen=True)
class GoTool:
    name: str
    module: str
    version: str
    package: str  # the main package to build
    go: str  # the go directive of the module it wraps
    replaces: dict[str, str] = field(default_factory=dict)
    ldflags: tuple[str, ...] = ()

    def go_mod(self) -> str:
        lines = [f"module triptych.local/{self.name}", "", f"go {self.go}", "", f"require {self.module} {self.version}"]
        if self.replaces:
            lines += ["", "replace ("] + [f"\t{old} => {new}" for old, new in self.replaces.items()] + [")"]
        return "\n".join(lines) + "\n"

    def tools_go(self) -> str:
        return f'//go:build tools\n\npackage tools\n\nimport _ "{self.package}"\n'


def _k8s_minor(version: str) -> str:
    return "v0." + version.removeprefix("v1.")


def _kubernetes_command(name: str) -> GoTool:
    """One of k8s.io/kubernetes' commands. Without the version flags it reports
    `v0.0.0-master+$Format:%H$`, which kubectl's and Helm's kubeVersion checks refuse."""
    return GoTool(
        name,
        "k8s.io/kubernetes",
        KUBERNETES_VERSION,
        f"k8s.io/kubernetes/cmd/{name}",
        "1.24.0",
        replaces={f"k8s.io/{m}": f"k8s.io/{m} {_k8s_minor(KUBERNETES_VERSION)}" for m in _K8S_STAGING},
        ldflags=(
            f"-X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}",
            "-X k8s.io/component-base/version.gitMajor=1",
            f"-X k8s.io/component-base/version.gitMinor={KUBERNETES_VERSION.split('.')[1]}",
        ),
    )


KUBE_APISERVER = _kubernetes_command("kube-apiserver")
# The rest of a node (`triptych kube up`): they share the API server's module graph,
# so after the first the Go build cache makes each a link plus its own packages.
KUBE_CONTROLLER_MANAGER = _kubernetes_command("kube-controller-manager")
KUBE_SCHEDULER = _kubernetes_command("kube-scheduler")
KUBELET = _kubernetes_command("kubelet")
KUBE_PROXY = _kubernetes_command("kube-proxy")
COREDNS = GoTool("coredns", "github.com/coredns/coredns", COREDNS_VERSION, "github.com/coredns/coredns", "1.24.0")
ETCD = GoTool(
    "etcd",
    "go.etcd.io/etcd/server/v3",
    ETCD_VERSION,
    "go.etcd.io/etcd/server/v3",
    "1.26.0",
    replaces={f"go.etcd.io/etcd/{m}": f"go.etcd.io/etcd/{m} {ETCD_VERSION}" for m in _ETCD_SIBLINGS},
)
HELM = GoTool(
    "helm",
    "helm.sh/helm/v4",
    HELM_VERSION,
    "helm.sh/helm/v4/cmd/helm",
    "1.26.0",
    ldflags=(f"-X helm.sh/helm/v4/internal/version.version={HELM_VERSION}",),
)


def tool_path(settings: Settings, tool: GoTool) -> Path:
    return settings.cache_dir / "kube-tools" / f"{tool.name}-{tool.version}" / tool.name


def install(settings: Settings, tool: GoTool) -> Path:
    """The tool's binary, built on first use (minutes: kube-apiserver is the longest)."""
    binary = tool_path(settings, tool)
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with open(binary.parent / "build.lock", "w") as lock:  # parallel test workers build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            _build(tool, binary)
    return binary


def helm(settings: Settings) -> Path:
    """The pinned Helm (built once, cached): the chart is written and tested for it,
    whatever Helm the user may have on PATH (which `helm` itself runs, of course)."""
    return install(settings, HELM)


def _build(tool: GoTool, binary: Path) -> None:
    go = shutil.which("go")
    if not go:
        raise ToolMissingError(f"`go` was not found on PATH; it is needed to build {tool.name} {tool.version}")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    with tempfile.TemporaryDirectory(prefix=f"triptych-{tool.name}-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text(tool.go_mod())
        (work / "tools.go").write_text(tool.tools_go())
        steps = [
            [go, "mod", "tidy"],
            [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                " ".join(("-s", "-w", *tool.ldflags)),
                "-o",
                str(binary.with_suffix(".part")),
                tool.package,
            ],
        ]
        for argv in steps:
            proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise InstallError(
                    f"building {tool.name} {tool.version} failed at `{' '.join(argv[:3])}`:\n{proc.stderr[-3000:]}"
                )
    binary.with_suffix(".part").rename(binary)


# Prometheus' service discoveries are compiled in by plugins/plugins.go (its
# `plugins.yml`); the chart's Prometheus needs Kubernetes' alone, and Debian's
# package is built without it. A build of our own with only that one is also
# minutes shorter than one with every cloud's SDK.
PROMETHEUS_PLUGINS = """package plugins

import (
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // the pods of the release's namespace
)
"""


def prometheus(settings: Settings) -> Path:
    """cmd/prometheus built in a copy of its module with only Kubernetes discovery (cached)."""
    module, version = PROMETHEUS_MODULE
    binary = settings.cache_dir / "kube-tools" / f"prometheus-{version}" / "prometheus"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with open(binary.parent / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            build_in_module_copy(
                module, version, "./cmd/prometheus", binary, {"plugins/plugins.go": PROMETHEUS_PLUGINS}
            )
    return binary


def build_in_module_copy(module: str, version: str, package: str, binary: Path, patches: dict[str, str]) -> None:
    """`go build package` inside a writable copy of the module's source, with `patches`
    (relative path -> new text) applied: for a main package whose build is configured
    by editing a file, as Prometheus' plugins are."""
    go = shutil.which("go")
    if not go:
        raise ToolMissingError(f"`go` was not found on PATH; it is needed to build {module}")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise InstallError(f"go mod download {module}@{version} failed:\n{proc.stderr[-2000:]}")
    source = Path(json.loads(proc.stdout)["Dir"])
    with tempfile.TemporaryDirectory(prefix="triptych-gosrc-") as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(source, work)
        for folder in [work, *(p for p in work.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)  # the module cache is read-only
        for relative, text in patches.items():
            (work / relative).chmod(0o644)
            (work / relative).write_text(text)
        build = subprocess.run(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(binary.with_suffix(".part")), package],
            cwd=work,
            capture_output=True,
            text=True,
            env=env,
        )
        if build.returncode != 0:
            raise InstallError(f"building {module} {package} failed:\n{build.stderr[-3000:]}")
    binary.with_suffix(".part").rename(binary)


def keda(settings: Settings, command: str) -> Path:
    """KEDA's cmd/<command> (`operator`, `adapter`: the metrics API server), built in a
    copy of its module (its go.mod replaces modules, so it cannot be a dependency of
    a wrapper as the Kubernetes binaries are); minutes the first time (every scaler's
    SDK), cached after."""
    module, version = KEDA_MODULE
    binary = settings.cache_dir / "kube-tools" / f"keda-{version}" / command
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with open(binary.parent / f"{command}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            build_in_module_copy(module, version, f"./cmd/{command}", binary, {})
    return binary
