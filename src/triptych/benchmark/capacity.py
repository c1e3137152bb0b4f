"""Throughput on paper: how many images a second a Triptych of W workers with c
cores each can sustain, from the CPU each process spends per image (what
`triptych bench` measures) and the partitions of each topic.

Every figure is a ceiling; the smallest one is the throughput and names the
bottleneck:

- the workers' cores: W * c * 1000 / (CPU ms per image of every function);
- each function's partitions: a Kafka-triggered function runs at most one busy
  replica per partition of its topic, each replica one core (the runner's
  handler is single-threaded), so P * 1000 / (its CPU ms per image);
- each server tier: its hosts * their cores * 1000 / (its CPU ms per image), with
  the per-image CPU measured on the replicated cluster (replication and erasure
  coding included), PostgreSQL on its one primary.

Pure arithmetic, no I/O: the numbers come from a bench report (bench/capacity.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..contracts import TOPIC_IMAGES_INPUT, TOPIC_MINIO_EVENTS, TOPIC_PREDICTIONS, TOPICS
from .arithmetic import champion_inference

# The topic each function consumes: its partitions cap its busy replicas.
FUNCTION_TOPICS = {"ingest": TOPIC_MINIO_EVENTS, "aggregate": TOPIC_PREDICTIONS}  # infer-*: images-input
DECLARED_PARTITIONS = dict(TOPICS)


def topic_of(function: str) -> str:
    return FUNCTION_TOPICS.get(function, TOPIC_IMAGES_INPUT)


@dataclass(frozen=True)
class Costs:
    """CPU ms per image: each function (summed over its replicas), each server tier."""

    functions: dict[str, float]
    servers: dict[str, float]  # "kafka", "minio", "postgres"


@dataclass(frozen=True)
class Servers:
    """How many hosts each server tier has, and cores per server host."""

    brokers: int = 3
    minio_nodes: int = 4
    cores: int = 8


@dataclass(frozen=True)
class Estimate:
    workers: int
    cores_per_worker: int
    images_per_s: float
    bottleneck: str
    ceilings: dict[str, float]


def estimate(
    costs: Costs,
    workers: int,
    cores_per_worker: int,
    partitions: dict[str, int] | None = None,
    servers: Servers = Servers(),
) -> Estimate:
    if workers < 1 or cores_per_worker < 1:
        raise ValueError("a cluster needs at least one worker with one core")
    parts = {**DECLARED_PARTITIONS, **(partitions or {})}
    ceilings = {"workers' cores": workers * cores_per_worker * 1000 / sum(costs.functions.values())}
    for function, ms in costs.functions.items():
        if ms > 0:
            topic = topic_of(function)
            ceilings[f"{function}: {parts[topic]} partitions of {topic}"] = parts[topic] * 1000 / ms
    hosts = {"kafka": servers.brokers, "minio": servers.minio_nodes, "postgres": 1}
    for tier, ms in costs.servers.items():
        if ms > 0:
            ceilings[f"{tier} ({hosts[tier]} x {servers.cores} cores)"] = hosts[tier] * servers.cores * 1000 / ms
    bottleneck = min(ceilings, key=ceilings.__getitem__)
    return Estimate(workers, cores_per_worker, ceilings[bottleneck], bottleneck, ceilings)


def one_host_rate(costs: Costs, cores: int) -> float:
    """Everything on `cores` shared cores (this machine, or its namespaces): the
    images a second that the whole pipeline's CPU per image allows."""
    return cores * 1000 / (sum(costs.functions.values()) + sum(costs.servers.values()))


def per_image(run: dict) -> dict[str, float]:
    """The run's marginal CPU ms per image (idle CPU taken off) where the report has
    it, else the gross figure: the model scales what one more image costs."""
    return run.get("marginal_cpu_ms_per_image") or run["cpu_ms_per_image"]


def single_host_costs(run: dict) -> Costs:
    """Costs from one pipeline run of a one-host bench report, whose processes are
    named (`kafka`, `infer-resnet50[0]` ...): each function summed over its replicas
    (the shadow challenger and the int8 twin left out: they run only when woken)."""
    functions: dict[str, float] = {}
    cpu = per_image(run)
    for name, ms in cpu.items():
        base = name.split("[")[0]
        if champion_inference(name) or base in ("ingest", "aggregate"):
            functions[base] = functions.get(base, 0.0) + ms
    servers = {tier: cpu.get(tier, 0.0) for tier in ("kafka", "minio", "postgres")}
    return Costs(functions, servers)


def cluster_tiers(run: dict, roles: dict[str, list[str]]) -> dict[str, float]:
    """CPU ms per image of each tier of a cluster bench, whose CPU is counted per
    host (`roles`: host -> its roles). A MinIO-only host gives one MinIO node's
    cost; the broker hosts' CPU less their MinIO nodes' is Kafka's. The database
    host's MLflow and Prometheus count with PostgreSQL (an upper bound)."""
    cpu = per_image(run)
    minio_only = [h for h, r in roles.items() if r == ["minio"]]
    per_node = sum(cpu.get(h, 0.0) for h in minio_only) / len(minio_only) if minio_only else 0.0
    brokers = [h for h, r in roles.items() if "kafka" in r]
    return {
        "workers": sum(cpu.get(h, 0.0) for h, r in roles.items() if "worker" in r),
        "kafka": sum(cpu.get(h, 0.0) for h in brokers) - per_node * sum("minio" in roles[h] for h in brokers),
        "minio": per_node * sum("minio" in r for r in roles.values()),
        "postgres": sum(cpu.get(h, 0.0) for h, r in roles.items() if "postgres" in r),
    }
