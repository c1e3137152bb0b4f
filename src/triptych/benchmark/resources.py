"""What each process of the running stack costs: CPU seconds (so a run's CPU per
image per process) and peak resident memory.

A server counts with its children (PostgreSQL forks a backend per connection);
a function replica is one process. Processes are named the way `triptych
status` names them: `postgres`, `kafka`, ..., `infer-resnet50[0]`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..config import Settings
from ..control import read_status
from ..stack.manager import Stack

BENCH_PROCESS = "bench (this process)"


@dataclass(frozen=True)
class Tracked:
    name: str
    process: psutil.Process
    with_children: bool
    # Also the CPU of its children that already exited (a host's every process is
    # listed on its own, so its live children must not be walked as well).
    reaped_children: bool = False


def tracked_processes(settings: Settings, functions_status: Path | None = None) -> list[Tracked]:
    """The stack's servers, every function replica (from the supervisor's status
    file: the stack's own, or `functions_status`), and the bench itself."""
    tracked = []
    for service in Stack(settings).services:
        if service.name == "functions" or not service.managed:
            continue  # the supervisor's replicas are listed one by one below
        process = service.pidfile.live_process()
        if process is not None:
            tracked.append(Tracked(service.name, process, with_children=True))
    status = json.loads(functions_status.read_text()) if functions_status else read_status(settings)
    for function, entry in sorted(status.get("functions", {}).items()):
        for replica in entry.get("replicas", []):
            if replica.get("pid") and replica.get("state") in ("running", "starting"):
                try:
                    tracked.append(Tracked(f"{function}[{replica['index']}]", psutil.Process(replica["pid"]), False))
                except psutil.NoSuchProcess:
                    continue
    tracked.append(Tracked(BENCH_PROCESS, psutil.Process(os.getpid()), with_children=False))
    return tracked


def host_processes(hosts: dict[str, list[int]]) -> list[Tracked]:
    """Every process of each host (a cluster's namespaces), counted under the host's
    name: CPU per image per host. The bench itself is tracked as on one host."""
    tracked = []
    for host, pids in hosts.items():
        for pid in pids:
            try:
                tracked.append(Tracked(host, psutil.Process(pid), with_children=False, reaped_children=True))
            except psutil.NoSuchProcess:
                continue
    tracked.append(Tracked(BENCH_PROCESS, psutil.Process(os.getpid()), with_children=False))
    return tracked


def _family(item: Tracked) -> list[psutil.Process]:
    if not item.with_children:
        return [item.process]
    try:
        return [item.process, *item.process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def family_cpu(item: Tracked) -> float | None:
    """User + system CPU seconds so far of one tracked item: its process, its live
    children when it counts them, and the children it already reaped; None once it is gone."""
    try:
        times = item.process.cpu_times()
    except psutil.NoSuchProcess:
        return None
    total = times.user + times.system
    if item.with_children or item.reaped_children:
        total += times.children_user + times.children_system
    for child in _family(item)[1:]:
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system
    return total


def cpu_seconds(processes: list[Tracked]) -> dict[str, float]:
    """`family_cpu` so far, per tracked name (a gone process counts nothing)."""
    totals: dict[str, float] = {}
    for item in processes:
        totals[item.name] = totals.get(item.name, 0.0) + (family_cpu(item) or 0.0)
    return totals


Key = tuple[str, int, float]  # (name, pid, creation time): a pid reused later is another process


class CpuMeter:
    """CPU seconds per tracked name between two moments, from samples taken every
    `interval_s` in a thread, the processes found again every `discover_s`.

    Immune to processes that start or exit in the window: each process is counted
    over the part of the window it lived in. One that exits keeps what it had used
    at its last sample (at most `interval_s` of its CPU is missed); one that starts
    counts from its creation. A before/after difference of totals instead gave an
    idle replica that exited mid-run -337 ms per image."""

    def __init__(self, discover: Callable[[], list[Tracked]], interval_s: float = 0.5, discover_s: float = 2.0):
        self.discover, self.interval_s, self.discover_s = discover, interval_s, discover_s
        self.samples: dict[Key, list[tuple[float, float]]] = {}
        self.created: dict[Key, float] = {}
        self._items: dict[Key, Tracked] = {}
        self._found_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if now - self._found_at >= self.discover_s:
            self._found_at = now
            for item in self.discover():
                try:
                    key = (item.name, item.process.pid, item.process.create_time())
                except psutil.NoSuchProcess:
                    continue
                self._items.setdefault(key, item)
                self.created.setdefault(key, key[2])
        for key, item in list(self._items.items()):
            total = family_cpu(item)
            if total is None:
                del self._items[key]  # gone: its last sample stands
                continue
            self.samples.setdefault(key, []).append((now, total))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> CpuMeter:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each tracked name used in [start, end]."""
        used: dict[str, float] = {}
        for key, series in self.samples.items():
            spent = _value_at(series, end, self.created[key]) - _value_at(series, start, self.created[key])
            used[key[0]] = used.get(key[0], 0.0) + max(0.0, spent)
        return used


def _value_at(series: list[tuple[float, float]], at: float, created: float) -> float:
    """A process's CPU total at `at`, interpolated between its samples: 0 before it
    was created, its last sample after it (it exited, or the window ended)."""
    first_t, first_v = series[0]
    if at <= first_t:
        if at <= created:
            return 0.0
        # Alive at `at` but first seen later: spread what it had used evenly since its creation.
        return first_v * (at - created) / (first_t - created) if first_t > created else first_v
    if at >= series[-1][0]:
        return series[-1][1]
    for (t0, v0), (t1, v1) in zip(series, series[1:]):
        if t0 <= at <= t1:
            return v0 + (v1 - v0) * (at - t0) / (t1 - t0) if t1 > t0 else v1
    return series[-1][1]


def peak_rss_mb(processes: list[Tracked]) -> dict[str, float]:
    """Peak resident set (VmHWM) per tracked name; a server's children add their
    peaks (an upper bound: they need not peak at once)."""
    peaks: dict[str, float] = {}
    for item in processes:
        total = 0
        for proc in _family(item):
            try:
                with open(f"/proc/{proc.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1]) * 1024
                            break
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        peaks[item.name] = round(peaks.get(item.name, 0.0) + total / 2**20, 1)
    return peaks


def idle_cores(processes: list[Tracked], window_s: float) -> dict[str, float]:
    """Cores each tracked name uses over `window_s` with nothing to do."""
    before = cpu_seconds(processes)
    time.sleep(window_s)
    after = cpu_seconds(processes)
    return {name: max(0.0, (after[name] - before.get(name, 0.0)) / window_s) for name in after}


def wait_idle(
    processes: list[Tracked], below_cores: float = 0.3, window_s: float = 1.0, timeout_s: float = 60.0
) -> float:
    """Wait until the tracked processes together use less than `below_cores` over a
    window (what a run leaves behind, vacuum, log flushes, metric windows, has
    settled), at most `timeout_s`; returns the last window's cores in use."""
    deadline = time.monotonic() + timeout_s
    busy = float("inf")
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(processes).values())
        time.sleep(window_s)
        busy = (sum(cpu_seconds(processes).values()) - before) / window_s
        if busy < below_cores:
            break
    return busy
