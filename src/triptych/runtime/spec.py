"""The local runner's view of `project.yaml`: what each function runs and how.

This reads the MLRun project file that `projects/triptych_project.py` writes, so
the runner and a Nuclio deployment share one declaration. Brokers written into a
Kafka trigger are for the deployment; locally the runner connects to the Kafka of
the current settings (TRIPTYCH_KAFKA_BOOTSTRAP or the local stack).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..sdk import Delivery


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class KafkaTriggerSpec:
    name: str
    topics: tuple[str, ...]
    consumer_group: str
    initial_offset: str
    delivery: Delivery


@dataclass(frozen=True)
class HttpTriggerSpec:
    name: str
    port: int
    workers: int
    max_body_bytes: int = 64 * 2**20


@dataclass(frozen=True)
class CronTriggerSpec:
    name: str
    interval: str
    schedule: str
    body: str


TriggerSpec = KafkaTriggerSpec | HttpTriggerSpec | CronTriggerSpec


# What wakes a function at zero besides its lag (`runtime.wake`), in its Nuclio metadata.
WAKE_ANNOTATION = "triptych.io/wake-when"


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    source: Path
    handler: str
    replicas: int  # what the supervisor starts with: the declared minimum
    env: dict[str, str] = field(default_factory=dict)
    triggers: tuple[TriggerSpec, ...] = ()
    max_replicas: int | None = None  # the scaler's bound; None: fixed at `replicas`
    wake_when: str | None = None  # a condition besides its lag that wakes it from zero (`runtime.wake`)

    @property
    def kafka_triggers(self) -> list[KafkaTriggerSpec]:
        return [t for t in self.triggers if isinstance(t, KafkaTriggerSpec)]


def _trigger(name: str, raw: dict) -> TriggerSpec:
    kind = raw.get("kind")
    attrs = raw.get("attributes", {})
    if kind in ("kafka-cluster", "kafka"):
        delivery = Delivery(**attrs.get("triptych", {}))
        return KafkaTriggerSpec(
            name=name,
            topics=tuple(attrs["topics"]),
            consumer_group=attrs["consumerGroup"],
            initial_offset=attrs.get("initialOffset", "earliest"),
            delivery=delivery,
        )
    if kind == "http":
        return HttpTriggerSpec(
            name=name,
            port=int(attrs.get("port", 0)),
            workers=int(raw.get("maxWorkers", 1)),
            max_body_bytes=int(attrs.get("maxRequestBodySize", HttpTriggerSpec.max_body_bytes)),
        )
    if kind == "cron":
        return CronTriggerSpec(
            name=name,
            interval=attrs.get("interval", ""),
            schedule=attrs.get("schedule", ""),
            body=attrs.get("event", {}).get("body", ""),
        )
    raise SpecError(f"trigger {name!r}: kind {kind!r} is not supported by the local runner")


def function_spec(raw: dict, root: Path) -> FunctionSpec:
    """One `project.yaml` function entry as the runner sees it (its source relative to `root`)."""
    name = raw["name"]
    spec = raw.get("spec", {}).get("spec", {})
    source = spec.get("build", {}).get("origin_filename")
    if not source:
        raise SpecError(f"function {name!r} has no source file in project.yaml")
    handler = spec.get("function_handler", "handler").rpartition(":")[2]
    triggers = tuple(
        _trigger(key.removeprefix("spec.triggers."), value)
        for key, value in spec.get("config", {}).items()
        if key.startswith("spec.triggers.")
    )
    env = {e["name"]: str(e.get("value", "")) for e in spec.get("env", []) if "value" in e}
    return FunctionSpec(
        name=name,
        source=(root / source).resolve(),
        handler=handler,
        replicas=int(spec.get("min_replicas", 1)),
        env=env,
        triggers=triggers,
        max_replicas=int(spec["max_replicas"]) if spec.get("max_replicas") is not None else None,
        wake_when=spec.get("config", {}).get("metadata.annotations", {}).get(WAKE_ANNOTATION),
    )


NUCLIO_KINDS = ("remote", "nuclio")


def nuclio_entries(raw: dict) -> list[dict]:
    """project.yaml's Nuclio functions; its MLRun jobs (the workflow's steps, the
    scheduled jobs) are run as job runs, never by the function runner."""
    return [
        f
        for f in raw.get("spec", {}).get("functions", [])
        if isinstance(f.get("spec"), dict) and f["spec"].get("kind") in NUCLIO_KINDS
    ]


def project_functions(project_file: Path) -> dict[str, dict]:
    """The raw entry of every Nuclio function in `project.yaml`, by name: the one
    place that reads the file (the runner's specs and the Nuclio configs come from here)."""
    project_file = Path(project_file)
    if not project_file.exists():
        raise SpecError(f"{project_file} not found; write it with `python projects/triptych_project.py`")
    return {f["name"]: f for f in nuclio_entries(yaml.safe_load(project_file.read_text()))}


def load_functions(project_file: Path) -> dict[str, FunctionSpec]:
    root = Path(project_file).resolve().parent
    return {name: function_spec(raw, root) for name, raw in project_functions(project_file).items()}
