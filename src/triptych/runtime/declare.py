"""Declaring Triptych functions as MLRun Nuclio functions.

`projects/triptych_project.py` declares the project's functions with these helpers
and writes `project.yaml`. Nuclio reads the result when MLRun deploys it; the local
runner (`triptych.runtime.spec`) reads the very same `project.yaml`, so triggers,
replicas and env are written down once.

A Kafka trigger's delivery settings (`triptych.sdk.Delivery`) are written twice
from the one object: into the trigger's attributes under the key ``triptych``
(the local runner's batching reads them; Nuclio ignores attributes it does not
know) and into the function's env as ``TRIPTYCH_DELIVERY`` (the handler's
delivery wrapper reads retries, dead-letter topic and consumer group from there,
under the local runner and under Nuclio alike). Nuclio's trigger is told
``explicitAckMode: disable`` (an offset is marked once the handler returned
without error; the wrapper returns only once each event is settled) and
``workerAllocationMode: static`` (a partition's events go to one worker, in order).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import nuclio
from croniter import croniter

from ..sdk import Delivery, DeliveryPlan, TriggerDelivery
from ..sdk.delivery import DELIVERY_ENV
from .cron_trigger import parse_interval
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
    delivery: Delivery = Delivery(),  # noqa: B008 - a frozen dataclass: one shared default is safe
    initial_offset: str = "earliest",
    max_workers: int = 1,
) -> nuclio.triggers.KafkaTrigger:
    trigger = nuclio.triggers.KafkaTrigger(
        brokers=brokers.split(","),
        topics=[topic],
        consumer_group=consumer_group,
        initial_offset=initial_offset,
        max_workers=max_workers,
        worker_allocation_mode="static",
        extra_attributes={"version": KAFKA_PROTOCOL_VERSION, "triptych": asdict(delivery)},
    )
    # Set directly: nuclio-jupyter's explicit_ack_mode argument warns for every value.
    trigger._struct["explicitAckMode"] = "disable"
    return trigger


def delivery_plan(name: str, triggers: dict[str, nuclio.triggers.NuclioTrigger]) -> DeliveryPlan:
    """What the delivery wrapper needs of a function's Kafka triggers."""
    routes = {}
    for trigger_name, trigger in triggers.items():
        struct = trigger.to_dict()
        attrs = struct.get("attributes", {})
        if struct.get("kind") == "kafka-cluster":
            routes[trigger_name] = TriggerDelivery(attrs["consumerGroup"], Delivery(**attrs.get("triptych", {})))
    return DeliveryPlan(name, routes)


def http_trigger(
    port: int, workers: int = 4, max_body_bytes: int = HttpTriggerSpec.max_body_bytes
) -> nuclio.triggers.HttpTrigger:
    # maxRequestBodySize is Nuclio's own attribute: its trigger refuses larger bodies
    # with 413 as our runner does, before the handler is called.
    return nuclio.triggers.HttpTrigger(
        workers=workers, port=port, extra_attributes={"maxRequestBodySize": max_body_bytes}
    )


def cron_trigger(interval: str = "", schedule: str = "", body: str = "") -> nuclio.triggers.CronTrigger:
    """Nuclio's cron trigger: an `interval` ("30s", "1h") or a five-field `schedule`
    ("0 3 * * 0"), which Nuclio's robfig/cron and the local runner's croniter read alike."""
    if bool(interval) == bool(schedule):
        raise ValueError("a cron trigger takes an interval or a schedule, one of them")
    if interval:
        parse_interval(interval)
    elif len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        raise ValueError(f"not a five-field cron schedule: {schedule!r}")
    return nuclio.triggers.CronTrigger(interval=interval, schedule=schedule, body=body)


def nuclio_function(
    name: str,
    source: Path,
    triggers: dict[str, nuclio.triggers.NuclioTrigger],
    handler: str = "handler",
    min_replicas: int = 1,
    max_replicas: int | None = None,
    env: dict[str, str] | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    image: str = DEFAULT_IMAGE,
    wake_when: str | None = None,
) -> RemoteRuntime:
    """One Nuclio function: handler file, triggers, replica bounds (fixed when
    `max_replicas` is not given), env, resources."""
    import mlrun

    max_replicas = min_replicas if max_replicas is None else max_replicas
    if min_replicas < 0 or max_replicas < max(1, min_replicas):
        raise ValueError(
            f"{name}: replica bounds must be 0 <= min <= max and max >= 1 (got min {min_replicas}, max {max_replicas})"
        )

    fn = mlrun.code_to_function(name=name, filename=str(source), kind="nuclio", handler=handler, image=image)
    # Inside a git checkout MLRun records "<remote>#<commit>:<path>" as the code's origin,
    # which would make project.yaml change with every commit; the path is what matters.
    fn.spec.build.code_origin = str(source)
    for trigger_name, trigger in triggers.items():
        fn.add_trigger(trigger_name, trigger)
    fn.spec.min_replicas = min_replicas
    fn.spec.max_replicas = max_replicas
    if wake_when is not None:
        from .spec import WAKE_ANNOTATION
        from .wake import condition

        condition(wake_when)  # an unknown condition fails here, not in the supervisor
        # In the Nuclio config's metadata (MLRun's project file keeps no function annotations).
        fn.spec.config["metadata.annotations"] = {WAKE_ANNOTATION: wake_when}
    plan = delivery_plan(name, triggers)
    for key, value in {**(env or {}), **({DELIVERY_ENV: plan.to_env()} if plan.triggers else {})}.items():
        fn.set_env(key, value)
    if cpu or memory:
        amounts = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        # MLRun strips `resources` when it writes project.yaml; a Nuclio config
        # override survives there and is applied to the deployed function.
        fn.set_config("spec.resources", {"requests": dict(amounts), "limits": dict(amounts)})
    return fn
