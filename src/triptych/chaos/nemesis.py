"""Faults on the multi-host cluster (`triptych cluster up`), each with its heal.
Every fault is one the cluster tests check alone; the chaos run overlaps them."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

import psutil

from ..cluster import netns
from ..cluster.manager import Cluster
from ..cluster.topology import Topology
from ..control import read_status
from ..errors import StackError
from .schedule import Fault

Heal = Callable[[], None]


def _topology(manager: Cluster) -> Topology:
    topology = manager.topology()
    if topology is None:
        raise StackError("the cluster is gone: a fault needs it up")
    return topology


def _server_pid(manager: Cluster, host: str, executable: str) -> int | None:
    """The server process of a host run from `executable`, if it runs."""
    found = netns.servers(_topology(manager).host(host).namespace, executable)
    return found[0] if found else None


def _kill(pid: int | None) -> None:
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _restart(manager: Cluster, host: str) -> Heal:
    return lambda: manager.restart_host(host)


def _supervisor_pid(manager: Cluster, host: str) -> int | None:
    for pid in netns.pids(_topology(manager).host(host).namespace):
        try:
            if "triptych.runtime.supervisor" in " ".join(psutil.Process(pid).cmdline()):
                return pid
        except psutil.Error:
            continue
    return None


def _a_replica_pid(manager: Cluster, host: str, rng: random.Random) -> int | None:
    own = manager.settings.model_copy(update={"data_dir": manager.host_dir(_topology(manager).host(host))})
    pids = [
        r["pid"]
        for entry in read_status(own).get("functions", {}).values()
        for r in entry.get("replicas", [])
        if r.get("pid") and r.get("state") == "running"
    ]
    return rng.choice(sorted(pids)) if pids else None


def inject(manager: Cluster, fault: Fault, rng: random.Random) -> Heal:
    """Start `fault`; returns what heals it."""
    host = _topology(manager).host(fault.host)
    if fault.kind == "worker-host":
        manager.kill_host(fault.host)
        return _restart(manager, fault.host)
    if fault.kind == "replica":
        _kill(_a_replica_pid(manager, fault.host, rng))
        return lambda: None  # its supervisor starts it again
    if fault.kind == "worker-supervisor":
        _kill(_supervisor_pid(manager, fault.host))
        return _restart(manager, fault.host)
    if fault.kind == "worker-slow-link":
        netns.impair(host, delay_ms=200, loss_percent=5)

        def restore() -> None:
            netns.impair(host, delay_ms=None)

        return restore
    if fault.kind == "broker":
        _kill(_server_pid(manager, fault.host, "java"))
        return _restart(manager, fault.host)
    if fault.kind == "broker-link":
        netns.link_down(host)
        return lambda: netns.link_up(host)
    if fault.kind == "minio-node":
        _kill(_server_pid(manager, fault.host, "minio"))
        return _restart(manager, fault.host)
    if fault.kind == "postgres":
        _kill(_server_pid(manager, fault.host, "postgres"))

        def heal() -> None:
            # Its backends notice the postmaster is gone and exit; then it may start again.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _server_pid(manager, fault.host, "postgres") is not None:
                time.sleep(0.5)
            manager.restart_host(fault.host)

        return heal
    raise ValueError(f"unknown fault {fault.kind!r}")
