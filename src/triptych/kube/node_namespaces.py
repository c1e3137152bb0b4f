"""The node's own network and mount namespaces, and its cgroup root.

The node is a network namespace (`triptych-kube`) joined to the host by a veth pair:
the host dials the API server and NodePorts at the node's address, and nothing of
the node listens on the host's own interfaces.

Why a holder process rather than `ip netns exec`: that command remounts /sys for the
new network namespace and so loses the cgroup v1 mounts the kubelet and runc need.
Instead one long-lived process enters the network namespace, unshares a private
mount namespace, and bind-mounts there (and only there) what the node must not
share with the host:
- files holding the kernel settings the kubelet insists on, over /proc/sys/…, so
  the host's settings are never changed;
- the node's own folders over the host paths that the kubelet, containerd and the
  CNI plugins write to whatever their configuration says (/var/log/containers,
  /var/lib/cni, /run/netns, /run/containerd), so that every file of the node
  stays under its root.
Every process of the node is then started inside both namespaces with
`nsenter -t <holder> -m -n`: containerd and the kubelet must share one mount
namespace, or the kubelet's volume mounts would be invisible to the containers.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import psutil

from ..errors import StackError
from ..stack.process import PidFile, ProcessRecord, spawn_detached
from .node_config import (
    CGROUP_ROOT,
    HOST_IP,
    HOST_VETH,
    KUBELET_SYSCTLS,
    LINK,
    NAMESPACE,
    NODE_IP,
    NodeLayout,
)

CGROUP_MOUNTS = Path("/sys/fs/cgroup")
HOLDER = "namespace-holder"


def host_paths(layout: NodeLayout) -> dict[str, Path]:
    """Host path -> the node's own folder bound over it inside the node."""
    return {
        "/var/log/containers": layout.root / "var-log-containers",
        "/var/lib/cni": layout.root / "var-lib-cni",
        "/run/netns": layout.run / "netns",
        "/run/containerd": layout.run / "containerd-shims",
    }


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise StackError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def netns_exists() -> bool:
    return NAMESPACE in _ip("netns", "list", check=False).stdout.split()


def create_network() -> None:
    """The namespace, its veth to the host, forwarding and bridge filtering inside it."""
    if not netns_exists():
        _ip("netns", "add", NAMESPACE)
    if _ip("link", "show", HOST_VETH, check=False).returncode != 0:
        _ip("link", "add", HOST_VETH, "type", "veth", "peer", "name", "eth0", "netns", NAMESPACE)
        _ip("addr", "add", f"{HOST_IP}/{LINK.prefixlen}", "dev", HOST_VETH)
        _ip("link", "set", HOST_VETH, "up")
        ns = ("-n", NAMESPACE)
        _ip(*ns, "addr", "add", f"{NODE_IP}/{LINK.prefixlen}", "dev", "eth0")
        _ip(*ns, "link", "set", "eth0", "up")
        _ip(*ns, "link", "set", "lo", "up")
        _ip(*ns, "route", "add", "default", "via", HOST_IP)
    # Per network namespace: pods' traffic is routed through the node, and the
    # bridge's frames pass iptables, so that kube-proxy's Service rules see a pod
    # talking to a pod on the same bridge.
    for key in ("net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"):
        subprocess.run(["ip", "netns", "exec", NAMESPACE, "sysctl", "-q", "-w", key], capture_output=True)


def delete_network() -> None:
    if _ip("link", "show", HOST_VETH, check=False).returncode == 0:
        _ip("link", "del", HOST_VETH, check=False)
    if netns_exists():
        _ip("netns", "del", NAMESPACE, check=False)


def _holder_script(layout: NodeLayout) -> str:
    lines = ["set -e"]
    for key, value in KUBELET_SYSCTLS.items():
        target = layout.sysctls / key.replace("/", ".")
        target.write_text(value + "\n")
        lines.append(f"mount --bind {shlex.quote(str(target))} /proc/sys/{key}")
    for host_path, own in host_paths(layout).items():
        lines.append(f"mount --bind {shlex.quote(str(own))} {host_path}")
    # The kubelet's root is shared within the node so that volume mounts it makes
    # reach the containers (mount propagation HostToContainer).
    root = shlex.quote(str(layout.kubelet_root))
    lines += [
        f"mount --bind {root} {root}",
        f"mount --make-rshared {root}",
        f"touch {shlex.quote(str(layout.run / 'holder.ready'))}",
        "exec sleep infinity",
    ]
    return "\n".join(lines)


def holder(layout: NodeLayout) -> psutil.Process | None:
    return PidFile(layout.pid_file(HOLDER)).live_process()


def start_holder(layout: NodeLayout, timeout_s: float = 20) -> int:
    """The process that holds the node's namespaces; its pid (an existing one is kept)."""
    existing = holder(layout)
    if existing:
        return existing.pid
    layout.sysctls.mkdir(parents=True, exist_ok=True)
    for host_path, own in host_paths(layout).items():
        own.mkdir(parents=True, exist_ok=True)
        if not Path(host_path).exists():
            Path(host_path).mkdir(parents=True)
            _remember_created(layout, host_path)
    layout.kubelet_root.mkdir(parents=True, exist_ok=True)
    ready = layout.run / "holder.ready"
    ready.unlink(missing_ok=True)
    pid = spawn_detached(
        [
            "nsenter",
            f"--net=/run/netns/{NAMESPACE}",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            _holder_script(layout),
        ],
        layout.log(HOLDER),
    )
    PidFile(layout.pid_file(HOLDER)).write(ProcessRecord.of(pid))
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if not psutil.pid_exists(pid) or time.monotonic() > deadline:
            raise StackError(f"the node's namespace holder did not start; see {layout.log(HOLDER)}")
        time.sleep(0.1)
    (layout.run / "mount-namespace").write_text(os.readlink(f"/proc/{pid}/ns/mnt"))
    return pid


def in_node(layout: NodeLayout, argv: list[str]) -> list[str]:
    """argv run inside the node's mount and network namespaces."""
    proc = holder(layout)
    if proc is None:
        raise StackError("the node is not up: no namespace holder (run `triptych kube up`)")
    return ["nsenter", "-t", str(proc.pid), "-m", "-n", "--", *argv]


def _remember_created(layout: NodeLayout, host_path: str) -> None:
    with open(layout.run / "created-host-paths", "a") as f:
        f.write(host_path + "\n")


def remove_created_host_paths(layout: NodeLayout) -> None:
    """The empty mount points `start_holder` had to create on the host."""
    record = layout.run / "created-host-paths"
    if not record.exists():
        return
    for line in record.read_text().splitlines():
        try:
            os.rmdir(line)
        except OSError:
            pass  # not empty: someone else uses it now
    record.unlink()


def node_mount_namespace(layout: NodeLayout) -> str | None:
    """The node's mount namespace (`mnt:[inode]`), recorded at start: it outlives
    the holder for as long as any process of the node is in it."""
    record = layout.run / "mount-namespace"
    return record.read_text().strip() if record.exists() else None


def hierarchies() -> list[Path]:
    """Each cgroup v1 hierarchy (and the hybrid's unified one) mounted under /sys/fs/cgroup."""
    return sorted(p for p in CGROUP_MOUNTS.iterdir() if p.is_dir() and not p.is_symlink())


def create_cgroup_root() -> None:
    """The kubelet's cgroupRoot in every hierarchy; cpuset needs its cpus and mems
    copied from the parent before anything can join it."""
    for hierarchy in hierarchies():
        root = hierarchy / CGROUP_ROOT.lstrip("/")
        root.mkdir(exist_ok=True)
        for key in ("cpuset.cpus", "cpuset.mems"):
            if (root / key).exists() and not (root / key).read_text().strip():
                (root / key).write_text((hierarchy / key).read_text())


def cgroup_pids() -> set[int]:
    found: set[int] = set()
    for hierarchy in hierarchies():
        root = hierarchy / CGROUP_ROOT.lstrip("/")
        if root.exists():
            for procs in root.rglob("cgroup.procs"):
                try:
                    found.update(int(p) for p in procs.read_text().split())
                except OSError:
                    pass
    return found


def remove_cgroup_root() -> None:
    """Deepest first: a v1 cgroup is removed with rmdir once it is empty."""
    for hierarchy in hierarchies():
        root = hierarchy / CGROUP_ROOT.lstrip("/")
        if not root.exists():
            continue
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
        try:
            root.rmdir()
        except OSError:
            pass


def node_processes(layout: NodeLayout, mnt: str | None) -> list[psutil.Process]:
    """Every process of the node: in its mount namespace `mnt` (containerd, its shims,
    the control plane), in its cgroups (the containers), or naming its folder on its
    command line (every one of the node's own: found even when its pid files and
    namespace record were deleted with the folder)."""
    in_cgroups = cgroup_pids()
    root = str(layout.root)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if (
                proc.pid in in_cgroups
                or (mnt and os.readlink(f"/proc/{proc.pid}/ns/mnt") == mnt)
                or any(root in arg for arg in proc.info["cmdline"] or ())
            ):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return [p for p in found if p.pid != os.getpid()]


def kill_everything(layout: NodeLayout, timeout_s: float = 30) -> None:
    """SIGKILL every process of the node until none is left (containers included)."""
    deadline = time.monotonic() + timeout_s
    mnt = node_mount_namespace(layout)  # read once: the holder dies in the first round
    while True:
        procs = node_processes(layout, mnt)
        holder_proc = holder(layout)
        if holder_proc:
            procs.append(holder_proc)
        if not procs:
            return
        if time.monotonic() > deadline:
            raise StackError(f"processes of the node would not die: {[p.pid for p in procs]}")
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=3)
