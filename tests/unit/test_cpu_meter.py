"""The bench's CPU accounting over a window in which processes start and exit: each
is counted over the part of the window it lived in, never below zero (a before/after
difference of totals gave an idle replica that exited mid-run -337.7 ms per image)."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import psutil
import pytest

from triptych.benchmark.resources import CpuMeter, Tracked, _value_at

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"


def test_a_series_is_read_between_its_samples_and_held_after_its_last():
    series = [(10.0, 1.0), (11.0, 2.0), (12.0, 4.0)]
    assert _value_at(series, 10.5, created=5.0) == pytest.approx(1.5)
    assert _value_at(series, 11.5, created=5.0) == pytest.approx(3.0)
    assert _value_at(series, 20.0, created=5.0) == 4.0  # exited after its last sample: what it had used
    assert _value_at(series, 9.0, created=9.5) == 0.0  # not born yet
    # Born before `at` but first seen later: its CPU spread evenly since its creation.
    assert _value_at(series, 9.0, created=8.0) == pytest.approx(0.5)


def _busy(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BUSY.format(s=seconds)])


def test_processes_that_exit_or_start_in_the_window_count_for_the_time_they_lived():
    early = _busy(1.5)  # busy, then gone half way through the window
    late: list[subprocess.Popen] = []

    def discover() -> list[Tracked]:
        alive = []
        for proc, name in [(early, "early"), *((p, "late") for p in late)]:
            try:
                alive.append(Tracked(name, psutil.Process(proc.pid), with_children=False))
            except psutil.NoSuchProcess:
                continue
        return alive

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # of the children waited for so far
        return usage.ru_utime + usage.ru_stime

    with CpuMeter(discover, interval_s=0.1, discover_s=0.1) as meter:
        start = time.time()
        time.sleep(0.3)
        before = children_cpu()
        early.wait()
        early_cpu = children_cpu() - before
        late.append(_busy(1.0))  # starts well inside the window
        late[0].wait()
        late_cpu = children_cpu() - before - early_cpu
        end = time.time()
    used = meter.between(start, end)
    assert set(used) == {"early", "late"}
    assert all(seconds >= 0 for seconds in used.values())
    # What each really used (the kernel's count, however busy the machine is), less what
    # `early` used before the window opened (0.3 s at most) and one sample's worth.
    assert early_cpu - 0.3 - 0.25 <= used["early"] <= early_cpu + 0.05, (used, early_cpu)
    assert late_cpu - 0.25 <= used["late"] <= late_cpu + 0.05, (used, late_cpu)
    assert late_cpu > 0.3, "a busy second is mostly CPU even on a loaded machine"
