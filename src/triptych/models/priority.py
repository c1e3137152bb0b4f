"""Training yields the CPU to the stream.

A training run and the pipeline share the machine's cores; at the same priority a
full training raised the stream's latency and left the dashboard blank for
seconds. So a training lowers its own priority to nice 19, the batch class: the
scheduler then gives it ~1/70 of a core's share against any normal-priority task
that wants to run, and all the idle cores otherwise. Linux keeps a nice value per
thread and a new thread inherits its creator's, so every thread of the process is
lowered (torch's pool may exist already) and every thread made later inherits it.

But the main thread is left alone when training runs in another thread: there
it serves (the retrain function's event loop, `triptych demo`'s stream and live
view after the quick training), and a process cannot raise a thread's priority
back without privileges. The fresh-machine run of issue 25 found `triptych demo`
streaming at nice 19 for the rest of its life after its quick training, and the
retrain function gathering 12,000 images at nice 0 before its training began:
the retrain workflow now lowers its own thread from its first step.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

TRAINING_NICE = 19


def lower_for_training(nice: int = TRAINING_NICE) -> int:
    """Set this thread and every other one to `nice` (never raising one), but the
    main thread when the caller is another; return how many changed."""
    main, me = threading.main_thread().native_id, threading.get_native_id()
    changed = 0
    for task in Path("/proc/self/task").iterdir():
        tid = int(task.name)
        if tid == main and me != main:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                changed += 1
        except (ProcessLookupError, PermissionError):  # the thread ended meanwhile
            continue
    return changed


def thread_nice_values() -> dict[int, int]:
    """The nice value of each thread of this process, by thread id."""
    values = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            values[int(task.name)] = os.getpriority(os.PRIO_PROCESS, int(task.name))
        except ProcessLookupError:
            continue
    return values
