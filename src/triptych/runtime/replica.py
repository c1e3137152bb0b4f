"""One replica of one function: its own OS process running every trigger the
function declares, with a health/metrics endpoint.

SIGTERM or SIGINT drains: Kafka triggers finish the batch in hand, commit and
leave their group; the HTTP trigger finishes in-flight requests; then the process
exits 0. A trigger that crashes ends the replica with exit code 1, and the
supervisor starts it again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from .. import logs
from ..config import Settings, get_settings
from ..control import replica_target_path
from ..security.db_roles import take_declared_component
from .admin import AdminServer
from .cron_trigger import CronTriggerRunner
from .http_trigger import HttpTriggerRunner
from .kafka_trigger import KafkaTriggerRunner
from .nuclio_compat import load_handler, make_context
from .spec import (
    CronTriggerSpec,
    FunctionSpec,
    HttpTriggerSpec,
    KafkaTriggerSpec,
    load_functions,
)
from .targets import write_target

log = logging.getLogger("triptych.runtime.replica")


def replica_info_path(settings: Settings, function: str, index: int) -> Path:
    return settings.data_dir / "functions" / "replicas" / f"{function}-{index}.json"


def replica_log_path(settings: Settings, function: str, index: int) -> Path:
    """A replica's JSON log (`triptych logs`); its stdout and stderr go beside it, as `.log`."""
    return settings.data_dir / "logs" / "functions" / f"{function}-{index}.jsonl"


def serve_replica(spec: FunctionSpec, index: int) -> int:
    """Run until told to stop; return the process exit code."""
    take_declared_component(os.environ, spec.env)
    for key, value in spec.env.items():
        os.environ.setdefault(key, value)  # the declaration's env, unless the caller overrides it
    os.environ.setdefault("TRIPTYCH_WORKER_ID", f"{spec.name}-{index}")
    # Settings are read after the function's env is in place, here and in the handler.
    get_settings.cache_clear()
    settings = get_settings()
    logs.configure(spec.name, index, replica_log_path(settings, spec.name, index))
    handler = load_handler(spec)
    # One context per replica, as one Nuclio worker: what init_context puts in
    # user_data is what every trigger's handler call sees.
    context = make_context(spec.name, index, "init", "init")
    if handler.init_context:
        handler.init_context(context)

    stop = threading.Event()
    failures: list[BaseException] = []
    runners: list[KafkaTriggerRunner | HttpTriggerRunner | CronTriggerRunner] = []
    for trigger in spec.triggers:
        if isinstance(trigger, KafkaTriggerSpec):
            runners.append(KafkaTriggerRunner(spec.name, trigger, handler, settings, stop, context))
        elif isinstance(trigger, HttpTriggerSpec):
            runners.append(HttpTriggerRunner(spec.name, trigger, handler, stop, context, host=settings.bind_host))
        elif isinstance(trigger, CronTriggerSpec):
            runners.append(CronTriggerRunner(spec.name, trigger, handler, stop, context))

    def run(runner) -> None:
        try:
            runner.run()
        except BaseException as exc:  # noqa: BLE001 - any crash ends the replica for a clean restart
            log.exception("%s[%d]: trigger crashed", spec.name, index)
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=run, args=(r,), name=type(r).__name__, daemon=True) for r in runners]
    admin = AdminServer(
        health=lambda: {
            "healthy": not failures and all(t.is_alive() for t in threads),
            "function": spec.name,
            "replica": index,
            "pid": os.getpid(),
        }
    )
    admin.start()
    target = replica_target_path(settings, spec.name, index)
    write_target(target, settings.bind_host, admin.port, {"function": spec.name, "replica": str(index)})
    info = replica_info_path(settings, spec.name, index)
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text(
        json.dumps(
            {
                "function": spec.name,
                "replica": index,
                "pid": os.getpid(),
                "metrics_port": admin.port,
                "http_ports": [r.port for r in runners if isinstance(r, HttpTriggerRunner)],
                "started_at": time.time(),
            }
        )
    )

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    for thread in threads:
        thread.start()
    log.info("%s[%d]: serving %d trigger(s); metrics on :%d", spec.name, index, len(threads), admin.port)
    while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
        pass
    for thread in threads:
        thread.join(timeout=60)
    target.unlink(missing_ok=True)
    admin.stop()
    return 1 if failures else 0


def replica_arguments(description: str) -> tuple[FunctionSpec, int, Path]:
    """NAME --replica I --project FILE, as the supervisor starts a replica."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("function")
    parser.add_argument("--replica", type=int, default=0)
    parser.add_argument("--project", type=Path, default=None)
    args = parser.parse_args()
    project = args.project or get_settings().project_file
    functions = load_functions(project)
    if args.function not in functions:
        parser.error(f"no function {args.function!r}; the project declares: {', '.join(sorted(functions))}")
    return functions[args.function], args.replica, project


def main() -> int:
    logs.configure()
    spec, index, _ = replica_arguments("One replica of one function under the local runner.")
    return serve_replica(spec, index)


if __name__ == "__main__":
    raise SystemExit(main())
