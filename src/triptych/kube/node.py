"""`triptych kube up` / `down`: a real single-node Kubernetes on this machine.

What kind gives a developer, without a container engine to run the node in: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, containerd with runc, the
kubelet and kube-proxy, all as processes inside the node's own network and mount
namespaces (`node_namespaces`), then CoreDNS and the storage class as objects on
it (`node_addons`). The binaries are built once from the Go module proxy and
cached (`go_tools`); every file of the node lives under `<data>/kube`.

`up` is idempotent: a process that runs is left alone, one that died is started
again (this is also how the node comes back after containerd and the kubelet are
killed). `down` kills every process of the node, containers included, removes its
namespaces, cgroups and files, and leaves nothing on the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import requests

from ..config import Settings
from ..errors import StackError, UnhealthyError
from ..stack.process import PidFile, ProcessRecord, spawn_detached, stop_process, tail
from ..stack.services.base import apt_install
from . import go_tools, node_addons, node_config, node_namespaces
from .node_config import API_PORT, NODE_IP, NODE_NAME, NodeLayout
from .pki import FRONT_PROXY_CLIENT, Pki

# Debian's packages the node runs on: the runtime, its OCI runtime, the CNI plugins,
# and what kube-proxy and the bridge plugin call.
_PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "nsenter": "util-linux",
    "gcc": "gcc",
}


def layout(settings: Settings) -> NodeLayout:
    return NodeLayout(settings.data_dir / "kube")


@dataclass(frozen=True)
class NodeProcess:
    name: str
    argv: Callable[[NodeLayout, dict[str, str]], list[str]]  # (layout, binaries) -> argv


def _etcd(lay: NodeLayout, bins: dict[str, str]) -> list[str]:
    return [
        bins["etcd"],
        "--name",
        NODE_NAME,
        "--data-dir",
        str(lay.etcd_data),
        "--listen-client-urls",
        "http://127.0.0.1:2379",
        "--advertise-client-urls",
        "http://127.0.0.1:2379",
        "--listen-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-cluster",
        f"{NODE_NAME}=http://127.0.0.1:2380",
        "--log-level",
        "warn",
    ]


def _apiserver(lay: NodeLayout, bins: dict[str, str]) -> list[str]:
    pki = lay.pki
    return [
        bins["kube-apiserver"],
        "--etcd-servers",
        "http://127.0.0.1:2379",
        "--bind-address",
        "0.0.0.0",
        "--advertise-address",
        NODE_IP,
        "--secure-port",
        str(API_PORT),
        "--tls-cert-file",
        str(pki / "apiserver.crt"),
        "--tls-private-key-file",
        str(pki / "apiserver.key"),
        "--client-ca-file",
        str(pki / "ca.crt"),
        "--kubelet-client-certificate",
        str(pki / "apiserver-kubelet-client.crt"),
        "--kubelet-client-key",
        str(pki / "apiserver-kubelet-client.key"),
        "--kubelet-certificate-authority",
        str(pki / "ca.crt"),
        # logs, exec and port-forward dial the node's address, not a name nobody resolves
        "--kubelet-preferred-address-types",
        "InternalIP",
        "--authorization-mode",
        "Node,RBAC",
        "--enable-admission-plugins",
        "NodeRestriction",
        "--service-account-issuer",
        "https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file",
        str(pki / "sa.pub"),
        "--service-account-signing-key-file",
        str(pki / "sa.key"),
        "--service-cluster-ip-range",
        node_config.SERVICE_CIDR,
        "--allow-privileged=true",
        # The aggregation layer (KEDA's external metrics API): requests it proxies carry
        # the user in headers, signed by this client certificate.
        "--requestheader-client-ca-file",
        str(pki / "ca.crt"),
        "--requestheader-allowed-names",
        FRONT_PROXY_CLIENT,
        "--requestheader-username-headers",
        "X-Remote-User",
        "--requestheader-group-headers",
        "X-Remote-Group",
        "--requestheader-extra-headers-prefix",
        "X-Remote-Extra-",
        "--proxy-client-cert-file",
        str(pki / f"{FRONT_PROXY_CLIENT}.crt"),
        "--proxy-client-key-file",
        str(pki / f"{FRONT_PROXY_CLIENT}.key"),
        "--enable-aggregator-routing=true",  # to the extension's endpoints, not its ClusterIP
        "--profiling=false",
    ]


def _controller_manager(lay: NodeLayout, bins: dict[str, str]) -> list[str]:
    kubeconfig = str(lay.kubeconfig("controller-manager"))
    return [
        bins["kube-controller-manager"],
        "--kubeconfig",
        kubeconfig,
        "--authentication-kubeconfig",
        kubeconfig,
        "--authorization-kubeconfig",
        kubeconfig,
        "--bind-address",
        "127.0.0.1",
        "--leader-elect=false",
        "--use-service-account-credentials",
        "--service-account-private-key-file",
        str(lay.pki / "sa.key"),
        "--root-ca-file",
        str(lay.pki / "ca.crt"),
        "--cluster-signing-cert-file",
        str(lay.pki / "ca.crt"),
        "--cluster-signing-key-file",
        str(lay.pki / "ca.key"),
        "--allocate-node-cidrs",
        "--cluster-cidr",
        node_config.POD_CIDR,
        "--service-cluster-ip-range",
        node_config.SERVICE_CIDR,
        "--profiling=false",
    ]


def _scheduler(lay: NodeLayout, bins: dict[str, str]) -> list[str]:
    kubeconfig = str(lay.kubeconfig("scheduler"))
    return [
        bins["kube-scheduler"],
        "--kubeconfig",
        kubeconfig,
        "--authentication-kubeconfig",
        kubeconfig,
        "--authorization-kubeconfig",
        kubeconfig,
        "--bind-address",
        "127.0.0.1",
        "--leader-elect=false",
        "--profiling=false",
    ]


def _containerd(lay: NodeLayout, bins: dict[str, str]) -> list[str]:
    return ["containerd", "--config", str(lay.etc / "containerd.toml"), "--log-level", "warn"]


def _kubelet(lay: NodeLayout, bins: dict[str, str]) -> list[str]:
    return [
        bins["kubelet"],
        "--config",
        str(lay.etc / "kubelet.yaml"),
        "--kubeconfig",
        str(lay.kubeconfig("kubelet")),
        "--hostname-override",
        NODE_NAME,
        "--node-ip",
        NODE_IP,
        "--root-dir",
        str(lay.kubelet_root),
        "--v",
        "1",
    ]


def _kube_proxy(lay: NodeLayout, bins: dict[str, str]) -> list[str]:
    return [bins["kube-proxy"], "--config", str(lay.etc / "kube-proxy.yaml")]


# In start order; `down` and the fault tests stop them in reverse.
CONTROL_PLANE = [
    NodeProcess("etcd", _etcd),
    NodeProcess("kube-apiserver", _apiserver),
    NodeProcess("kube-controller-manager", _controller_manager),
    NodeProcess("kube-scheduler", _scheduler),
]
RUNTIME = [NodeProcess("containerd", _containerd)]
AGENTS = [NodeProcess("kubelet", _kubelet), NodeProcess("kube-proxy", _kube_proxy)]
PROCESSES = CONTROL_PLANE + RUNTIME + AGENTS
_TOOLS = [
    go_tools.ETCD,
    go_tools.KUBE_APISERVER,
    go_tools.KUBE_CONTROLLER_MANAGER,
    go_tools.KUBE_SCHEDULER,
    go_tools.KUBELET,
    go_tools.KUBE_PROXY,
]


def _require_host(report: Callable[[str], None]) -> None:
    if os.geteuid() != 0:
        raise StackError(
            "`triptych kube up` needs root: the node is a network namespace with its own cgroups, as on the CI machines"
        )
    missing = sorted(
        {
            pkg
            for tool, pkg in _PACKAGES.items()
            if not (shutil.which(tool) or (tool.startswith("/") and os.path.exists(tool)))
        }
    )
    if missing:
        report(f"installing {', '.join(missing)} (Debian's packages)")
        apt_install(missing, "the node's runtime", "install them with apt-get")


def binaries(settings: Settings, report: Callable[[str], None]) -> dict[str, str]:
    """Every binary of the node, built once (the first time takes minutes: the kubelet most)."""
    found = {}
    for tool in _TOOLS:
        if not go_tools.tool_path(settings, tool).exists():
            report(f"building {tool.name} {tool.version} from the Go module proxy (once; cached after)")
        found[tool.name] = str(go_tools.install(settings, tool))
    return found


def _write_if_changed(path, text: str) -> None:
    # kube-proxy exits when its configuration file is written, even with the same
    # content: a second `up` must leave unchanged files untouched.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _write_configs(lay: NodeLayout) -> None:
    for folder in (lay.etc, lay.run, lay.logs, lay.cni_conf, lay.cni_state, lay.pod_logs, lay.volumes):
        folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(lay.pki)
    pki.create(NODE_NAME, NODE_IP, node_config.API_SERVICE_IP)
    for component in ("controller-manager", "scheduler", "kubelet", "kube-proxy"):
        pki.kubeconfig(component, lay.api_url, lay.kubeconfig(component))
    pki.kubeconfig("admin", lay.api_url, lay.admin_kubeconfig)
    _write_if_changed(lay.etc / "containerd.toml", node_config.containerd_config(lay))
    _write_if_changed(lay.cni_conf / "10-triptych.conflist", node_config.cni_config(lay))
    _write_if_changed(lay.etc / "kubelet.yaml", node_config.kubelet_config(lay))
    _write_if_changed(lay.etc / "kube-proxy.yaml", node_config.kube_proxy_config(lay))
    _write_if_changed(lay.etc / "resolv.conf", node_config.resolv_conf())


def running(lay: NodeLayout, name: str) -> psutil.Process | None:
    return PidFile(lay.pid_file(name)).live_process()


def start_process(lay: NodeLayout, process: NodeProcess, bins: dict[str, str]) -> bool:
    """Start `process` inside the node unless it runs; True when it was started."""
    if running(lay, process.name):
        return False
    pid = spawn_detached(node_namespaces.in_node(lay, process.argv(lay, bins)), lay.log(process.name))
    PidFile(lay.pid_file(process.name)).write(ProcessRecord.of(pid))
    return True


def stop(lay: NodeLayout, name: str, kill: bool = False) -> None:
    """Stop one process of the node (SIGKILL with `kill`: how the fault tests crash it)."""
    proc = running(lay, name)
    if proc is not None:
        if kill:
            proc.kill()
            proc.wait(timeout=10)
        else:
            stop_process(proc, timeout=20)
    PidFile(lay.pid_file(name)).remove()


def _api_get(lay: NodeLayout, path: str) -> requests.Response:
    # verify per request: a Session's own loses to REQUESTS_CA_BUNDLE in the environment
    return requests.get(
        f"{lay.api_url}{path}",
        timeout=5,
        verify=str(lay.pki / "ca.crt"),
        cert=(str(lay.pki / "admin.crt"), str(lay.pki / "admin.key")),
    )


def _wait(what: str, check: Callable[[], str | None], timeout_s: float, logs: list[str], lay: NodeLayout) -> None:
    """Poll `check` (None = ready, else what is still missing) until ready or the deadline."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        for name in logs:
            if not running(lay, name):
                raise UnhealthyError(f"{name} exited while waiting for {what}:\n{tail(lay.log(name))}")
        try:
            missing = check()
        except requests.exceptions.SSLError as exc:  # a wrong certificate does not heal by waiting
            raise UnhealthyError(f"{what}: {exc}") from exc
        except (requests.RequestException, subprocess.SubprocessError, OSError) as exc:
            missing = str(exc)
        if missing is None:
            return
        last = missing
        time.sleep(0.5)
    raise UnhealthyError(
        f"{what} was not ready in {timeout_s:.0f} s ({last}); logs under {lay.logs}:\n"
        + "\n".join(f"--- {n}\n{tail(lay.log(n), 15)}" for n in logs)
    )


def _containerd_answers(lay: NodeLayout) -> str | None:
    if not lay.containerd_socket.exists():
        return "no socket yet"
    proc = node_addons.ctr(lay, "version", timeout=10)
    return None if proc.returncode == 0 else proc.stderr.strip()[-200:]


def api_ready(lay: NodeLayout) -> str | None:
    reply = _api_get(lay, "/readyz")
    return None if reply.status_code == 200 else f"/readyz {reply.status_code}"


def node_ready(lay: NodeLayout) -> str | None:
    reply = _api_get(lay, f"/api/v1/nodes/{NODE_NAME}")
    if reply.status_code != 200:
        return f"node {NODE_NAME}: {reply.status_code}"
    for condition in reply.json().get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return None if condition["status"] == "True" else f"Ready={condition['status']}: {condition.get('message')}"
    return "no Ready condition yet"


def is_up(settings: Settings) -> bool:
    lay = layout(settings)
    return all(running(lay, p.name) for p in PROCESSES) and node_namespaces.holder(lay) is not None


def up(settings: Settings, report: Callable[[str], None] = print, timeout_s: float = 300) -> NodeLayout:
    """Start the node (or what of it is not running) and wait until it is Ready with DNS."""
    lay = layout(settings)
    _require_host(report)
    bins = binaries(settings, report)
    _write_configs(lay)
    node_namespaces.create_network()
    node_namespaces.create_cgroup_root()
    node_namespaces.start_holder(lay)
    for process in CONTROL_PLANE:
        if start_process(lay, process, bins):
            report(f"started {process.name}")
        if process.name == "kube-apiserver":
            _wait("the API server", lambda: api_ready(lay), timeout_s, ["etcd", "kube-apiserver"], lay)
    if not running(lay, "containerd"):
        lay.containerd_socket.unlink(missing_ok=True)  # a killed one leaves its socket: not an answer
    if start_process(lay, RUNTIME[0], bins):
        report("started containerd")
    _wait("containerd", lambda: _containerd_answers(lay), 60, ["containerd"], lay)
    node_addons.import_pause_image(settings, lay)
    for process in AGENTS:
        if start_process(lay, process, bins):
            report(f"started {process.name}")
    _wait(f"node {NODE_NAME}", lambda: node_ready(lay), timeout_s, [p.name for p in PROCESSES], lay)
    node_addons.apply(settings, lay, report)
    report(f"node {NODE_NAME} is Ready at {lay.api_url}; KUBECONFIG={lay.admin_kubeconfig}")
    return lay


def down(settings: Settings, report: Callable[[str], None] = print) -> None:
    """Stop every process of the node and remove it: namespaces, cgroups, files."""
    lay = layout(settings)
    for process in reversed(PROCESSES):
        stop(lay, process.name)
    node_namespaces.kill_everything(lay)  # the containers and containerd's shims
    node_namespaces.remove_cgroup_root()
    node_namespaces.delete_network()
    node_namespaces.remove_created_host_paths(lay)
    if lay.root.exists():
        shutil.rmtree(lay.root)
    report("the node is down; nothing of it is left")
