"""One replica of one function under Nuclio 1.14's own processor, configured
from the same declaration as the local runner (`functions_runtime = "nuclio"`,
`triptych up --runtime nuclio`).

This launcher renders the function's Nuclio config (`nuclio_function_config`),
points its triggers at the stack of the current settings (Kafka brokers, the
HTTP trigger's address), starts the processor (built once from Nuclio's Go module)
as a child that dies with it, reports the replica to the supervisor once the
processor's readiness probe answers, forwards SIGTERM, and exits with the
processor's code.

What differs from the local runner, by Nuclio's design: a Kafka trigger calls the
handler once per record (no micro-batches: the delivery wrapper passes
``[event]``); the function's Prometheus metrics stay inside Nuclio's Python
wrapper process (Nuclio's own metric sinks are the way there), so the replica
has no metrics port; an HTTP function runs one replica (on Kubernetes a Service
spreads requests over replicas; locally there is no port sharing).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .. import logs
from ..config import Settings, get_settings
from .deploy import nuclio_function_config
from .nuclio_processor import (
    install_processor,
    processor_environment,
    write_processor_configs,
)
from .process_death import die_with_parent
from .replica import replica_arguments, replica_info_path
from .spec import FunctionSpec, HttpTriggerSpec

log = logging.getLogger("triptych.runtime.nuclio_replica")

READY_TIMEOUT_S = 180.0


class NuclioReplicaError(RuntimeError):
    pass


def free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def local_config(project_file: Path, spec: FunctionSpec, index: int, settings: Settings) -> dict:
    """The function's Nuclio config with its triggers pointed at this stack."""
    if index > 0 and any(isinstance(t, HttpTriggerSpec) for t in spec.triggers):
        raise NuclioReplicaError(
            f"{spec.name}: an HTTP function runs one replica under the local Nuclio processor "
            "(Nuclio's HTTP trigger cannot share its port); scale it to 1"
        )
    config = nuclio_function_config(project_file, spec.name)
    for trigger in config["spec"]["triggers"].values():
        attributes = trigger.setdefault("attributes", {})
        if trigger["kind"] == "kafka-cluster":
            attributes["brokers"] = settings.kafka_url.split(",")
        elif trigger["kind"] == "http":
            trigger["url"] = f"{settings.bind_host}:{attributes['port']}"
    return config


def ready(health_port: int, host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{health_port}/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def serve_under_nuclio(project_file: Path, spec: FunctionSpec, index: int) -> int:
    os.environ.setdefault("TRIPTYCH_WORKER_ID", f"{spec.name}-{index}")
    settings = get_settings()
    binary, wrapper = install_processor(settings)
    config = local_config(project_file, spec, index, settings)
    folder = settings.data_dir / "functions" / "nuclio" / f"{spec.name}-{index}"
    # The processor's admin and health endpoints are for this wrapper alone: on loopback,
    # whatever address the host's servers bind (a worker of a cluster binds its own).
    loopback = "127.0.0.1"
    health_port = free_port(loopback)
    processor_yaml, platform_yaml = write_processor_configs(config, folder, free_port(loopback), health_port)
    env = processor_environment(config, wrapper, sys.executable, spec.source.parent)
    env["TRIPTYCH_WORKER_ID"] = os.environ["TRIPTYCH_WORKER_ID"]
    processor = subprocess.Popen(
        [str(binary), "--config", str(processor_yaml), "--platform-config", str(platform_yaml)],
        env=env,
        preexec_fn=die_with_parent(),
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _: processor.send_signal(signum))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while processor.poll() is None and not ready(health_port, loopback):
        if time.monotonic() > deadline:
            log.error("%s[%d]: the processor was not ready after %.0fs", spec.name, index, READY_TIMEOUT_S)
            processor.terminate()
            break
        time.sleep(0.5)
    if processor.poll() is None:
        info = replica_info_path(settings, spec.name, index)
        info.parent.mkdir(parents=True, exist_ok=True)
        info.write_text(
            json.dumps(
                {
                    "function": spec.name,
                    "replica": index,
                    "pid": os.getpid(),
                    "processor_pid": processor.pid,
                    "runtime": "nuclio",
                    "metrics_port": None,
                    "health_port": health_port,
                    "started_at": time.time(),
                    "http_ports": [t.port for t in spec.triggers if isinstance(t, HttpTriggerSpec)],
                }
            )
        )
        log.info("%s[%d]: Nuclio processor %d ready (health :%d)", spec.name, index, processor.pid, health_port)
    return processor.wait()


def main() -> int:
    logs.configure()
    spec, index, project = replica_arguments("One replica of one function under Nuclio's processor.")
    try:
        return serve_under_nuclio(project, spec, index)
    except NuclioReplicaError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
