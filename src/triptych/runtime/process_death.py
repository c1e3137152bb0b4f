"""Children that die with their parent. Linux's PR_SET_PDEATHSIG has the kernel
send a signal to a child when the thread that started it exits, so a supervisor
killed with -9 (no chance to drain) does not leave replicas behind, one of them
perhaps still answering on a shared HTTP port."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` for `subprocess.Popen`, made in the parent (whose pid it keeps)."""
    parent = os.getpid()

    def arm() -> None:  # runs in the child, before exec
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the signal was armed
                os._exit(1)

    return arm
