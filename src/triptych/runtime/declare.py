"""Declaring Triptych functions as MLRun Nuclio functions.

`projects/triptych_project.py` declares the project's functions with these helpers
and writes `project.yaml`. Nuclio reads the result when MLRun deploys it; the local
runner (`triptych.runtime.spec`) reads the very same `project.yaml`, so triggers,
replicas and env are written down once.

Delivery settings Nuclio's Kafka trigger does not have (batching, bounded
retries, the dead-letter topic) ride along inside the trigger's attributes under
the key ``triptych``; Nuclio ignores attributes it does not know.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import nuclio

from .delivery import Delivery
from .spec import HttpTriggerSpec

if TYPE_CHECKING:
    from mlrun.runtimes import RemoteRuntime

DEFAULT_IMAGE = "python:3.11"
# Nuclio 1.14's Kafka client must be told the broker protocol version for Kafka 3.9.
KAFKA_PROTOCOL_VERSION = "3.9.0"


def kafka_trigger(
    topic: str,
    consumer_group: str,
    brokers: str,
    delivery: Delivery = Delivery(),
    initial_offset: str = "earliest",
    max_workers: int = 1,
) -> nuclio.triggers.KafkaTrigger:
    return nuclio.triggers.KafkaTrigger(
        brokers=brokers.split(","),
        topics=[topic],
        consumer_group=consumer_group,
        initial_offset=initial_offset,
        max_workers=max_workers,
        extra_attributes={"version": KAFKA_PROTOCOL_VERSION, "triptych": asdict(delivery)},
    )


def http_trigger(port: int, workers: int = 4,
                 max_body_bytes: int = HttpTriggerSpec.max_body_bytes) -> nuclio.triggers.HttpTrigger:
    # maxRequestBodySize is Nuclio's own attribute: its trigger refuses larger bodies
    # with 413 as our runner does, before the handler is called.
    return nuclio.triggers.HttpTrigger(workers=workers, port=port,
                                       extra_attributes={"maxRequestBodySize": max_body_bytes})


def cron_trigger(interval: str = "", schedule: str = "", body: str = "") -> nuclio.triggers.CronTrigger:
    return nuclio.triggers.CronTrigger(interval=interval, schedule=schedule, body=body)


def nuclio_function(
    name: str,
    source: Path,
    triggers: dict[str, nuclio.triggers.NuclioTrigger],
    handler: str = "handler",
    replicas: int = 1,
    env: dict[str, str] | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    image: str = DEFAULT_IMAGE,
) -> "RemoteRuntime":
    """One Nuclio function: handler file, triggers, fixed replica count, env, resources."""
    import mlrun

    fn = mlrun.code_to_function(name=name, filename=str(source), kind="nuclio", handler=handler, image=image)
    # Inside a git checkout MLRun records "<remote>#<commit>:<path>" as the code's origin,
    # which would make project.yaml change with every commit; the path is what matters.
    fn.spec.build.code_origin = str(source)
    for trigger_name, trigger in triggers.items():
        fn.add_trigger(trigger_name, trigger)
    fn.spec.min_replicas = replicas
    fn.spec.max_replicas = replicas
    for key, value in (env or {}).items():
        fn.set_env(key, value)
    if cpu or memory:
        amounts = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        # MLRun strips `resources` when it writes project.yaml; a Nuclio config
        # override survives there and is applied to the deployed function.
        fn.set_config("spec.resources", {"requests": dict(amounts), "limits": dict(amounts)})
    return fn
