"""Training yields the CPU to the stream.

A training run and the pipeline share the machine's cores; at the same priority a
full training raised the stream's latency and left the dashboard blank for
seconds. So a training lowers its own priority to nice 19, the batch class: the
scheduler then gives it ~1/70 of a core's share against any normal-priority task
that wants to run, and all the idle cores otherwise. Linux keeps a nice value per
thread and a new thread inherits its creator's, so every thread of the process is
lowered (torch's pool may exist already) and every thread made later inherits it.
A process cannot raise its priority back without privileges, so this is for
processes whose work is training (a retrain replica, a training job, the quick
bootstrap), never for a function that also serves.
"""

from __future__ import annotations

import os
from pathlib import Path

TRAINING_NICE = 19


def lower_for_training(nice: int = TRAINING_NICE) -> int:
    """Set every thread of this process to `nice` (never raising one); return how many changed."""
    changed = 0
    for task in Path("/proc/self/task").iterdir():
        tid = int(task.name)
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                changed += 1
        except (ProcessLookupError, PermissionError):  # the thread ended meanwhile
            continue
    return changed


def thread_nice_values() -> list[int]:
    """The nice value of each thread of this process."""
    values = []
    for task in Path("/proc/self/task").iterdir():
        try:
            values.append(os.getpriority(os.PRIO_PROCESS, int(task.name)))
        except ProcessLookupError:
            continue
    return values
