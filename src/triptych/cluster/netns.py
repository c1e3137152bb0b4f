"""Hosts on one machine: a network namespace each, joined by a bridge.

Each host `triptych-<name>` gets a veth pair whose other end sits on the bridge
`triptych-br0` (the root namespace holds the gateway address, so the CLI reaches
every host), a loopback, a default route, and its own /etc/hosts
(`/etc/netns/<namespace>/hosts`, which `ip netns exec` mounts over /etc/hosts)
naming every other host. Needs root (CAP_NET_ADMIN), as on the CI machines.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import psutil

from ..errors import StackError
from .topology import BRIDGE, GATEWAY, SUBNET, Host, Topology

NETNS_ETC = Path("/etc/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise StackError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def require_root() -> None:
    if os.geteuid() != 0 or not shutil.which("ip"):
        raise StackError(
            "a cluster of network namespaces needs root and iproute2 (`ip`); on real machines, "
            "run `triptych up --role ...` on each (see docs/operations/several-hosts.md)"
        )


def _veth(host: Host) -> str:
    return f"tt-{host.name}"[:15]  # interface names are at most 15 characters


def exists(namespace: str) -> bool:
    return namespace in _ip("netns", "list").stdout.split()


def create(topology: Topology) -> None:
    """The bridge and every host; a host that exists already is left as it is."""
    require_root()
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{GATEWAY}/{SUBNET.prefixlen}", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
    for host in topology.hosts:
        etc = NETNS_ETC / host.namespace
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(topology.hosts_file())
        if exists(host.namespace):
            continue
        _ip("netns", "add", host.namespace)
        _ip("link", "add", _veth(host), "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
        _ip("link", "set", _veth(host), "master", BRIDGE, "up")
        ns = ("-n", host.namespace)
        _ip(*ns, "addr", "add", f"{host.address}/{SUBNET.prefixlen}", "dev", "eth0")
        _ip(*ns, "link", "set", "eth0", "up")
        _ip(*ns, "link", "set", "lo", "up")
        _ip(*ns, "route", "add", "default", "via", GATEWAY)


def pids(namespace: str) -> list[int]:
    """Every process in the namespace (`ip netns pids`)."""
    proc = _ip("netns", "pids", namespace, check=False)
    return [int(p) for p in proc.stdout.split()] if proc.returncode == 0 else []


def servers(namespace: str, executable: str) -> list[int]:
    """The processes of the namespace run from `executable` (argv[0]'s base name: a
    server, not the backends PostgreSQL forks and renames)."""

    def runs(pid: int) -> bool:
        try:
            argv = psutil.Process(pid).cmdline()
        except psutil.Error:
            return False
        return bool(argv) and os.path.basename(argv[0]) == executable

    return [pid for pid in pids(namespace) if runs(pid)]


def kill_all(namespace: str, sig: int = signal.SIGKILL) -> list[int]:
    """Send `sig` to every process of a host, as a host that dies would lose them."""
    killed = []
    for pid in pids(namespace):
        try:
            os.kill(pid, sig)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed


def link_down(host: Host) -> None:
    """Cut a host off the network (its processes keep running), as a partition would."""
    _ip("link", "set", _veth(host), "down")


def link_up(host: Host) -> None:
    _ip("link", "set", _veth(host), "up")


def impair(host: Host, delay_ms: int | None = 200, loss_percent: float = 5, rate_kbit: int = 2000) -> str:
    """Slow traffic to and from a host (tc on both ends of its link); `delay_ms=None`
    heals it. netem adds `delay_ms` and `loss_percent`; where the kernel has no netem
    (this machine's has none), a token bucket limits the link to `rate_kbit` and drops
    what waits longer than `delay_ms`: slow, and lossy once full. Returns the qdisc used."""
    used = "none"
    for prefix, device in (([], _veth(host)), (["ip", "netns", "exec", host.namespace], "eth0")):
        subprocess.run([*prefix, "tc", "qdisc", "del", "dev", device, "root"], capture_output=True)
        if delay_ms is None:
            continue
        for kind, args in (
            ("netem", ["delay", f"{delay_ms}ms", "loss", f"{loss_percent}%"]),
            ("tbf", ["rate", f"{rate_kbit}kbit", "burst", "32kbit", "latency", f"{delay_ms}ms"]),
        ):
            proc = subprocess.run(
                [*prefix, "tc", "qdisc", "add", "dev", device, "root", kind, *args], capture_output=True, text=True
            )
            if proc.returncode == 0:
                used = kind
                break
        else:
            raise StackError(f"tc on {host.name}'s {device} failed: {proc.stderr.strip()}")
    return used


def destroy(topology: Topology) -> None:
    for host in topology.hosts:
        kill_all(host.namespace)
        if exists(host.namespace):
            _ip("netns", "delete", host.namespace, check=False)
        _ip("link", "delete", _veth(host), check=False)  # gone with its namespace, normally
        shutil.rmtree(NETNS_ETC / host.namespace, ignore_errors=True)
    _ip("link", "delete", BRIDGE, check=False)


def exec_argv(host: Host, argv: list[str], own_dir: tuple[Path, str] | None = None) -> list[str]:
    """`argv` run inside the host's namespace, with its /etc/hosts. `own_dir`
    (folder, path): the host's own folder mounted at `path`, as a machine has its
    own disk. `ip netns exec` gives each command a private mount namespace, so every
    host sees its own data at the same path, which distributed MinIO requires (its
    nodes must run with identical settings, its event queue folder included)."""
    if own_dir is None:
        return ["ip", "netns", "exec", host.namespace, *argv]
    folder, path = own_dir
    script = f'mkdir -p {shlex.quote(path)} && mount --bind {shlex.quote(str(folder))} {shlex.quote(path)} && exec "$@"'
    return ["ip", "netns", "exec", host.namespace, "sh", "-c", script, "sh", *argv]
