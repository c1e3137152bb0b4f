"""Before any bench: the servers it needs are up, and (when it drives them) the
functions run. It fails at once, with what to do, rather than wait on a server that is down."""

from __future__ import annotations

from ..config import Settings
from ..control import replica_counts
from ..stack.manager import Stack


def require_stack(settings: Settings, functions: bool = True) -> None:
    """Fail at once, with what to do, rather than wait on a server that is down."""
    down = [
        s.name
        for s in Stack(settings).status()
        if s.name in ("postgres", "kafka", "minio", "mlflow") and s.state != "up"
    ]
    if down:
        raise RuntimeError(f"{', '.join(down)} not running: start the stack first (`triptych up`)")
    if functions:
        counts = replica_counts(settings)
        idle = [f for f in ("ingest", "aggregate") if counts.get(f, {}).get("running", 0) < 1]
        if idle:
            raise RuntimeError(
                f"no running replica of {', '.join(idle)}: are the functions up (`triptych functions status`)?"
            )
