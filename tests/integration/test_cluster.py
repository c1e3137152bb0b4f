"""Triptych on several hosts: network namespaces on this machine, each running
`triptych up --role ...` as a real machine would (`triptych cluster up`). Three
KRaft brokers (replication 3, min ISR 2), four MinIO nodes (one erasure set),
PostgreSQL and MLflow on their own host, two workers whose replicas share the
consumer groups. A labelled stream flows while a worker host dies and while a
broker is cut off; every image is compared exactly once.

Traffic goes only to this machine's own namespaces (10.251.0.0/24 on the bridge
triptych-br0), and every test bounds itself in count and time."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime

import psutil
import pytest
from kafka import KafkaAdminClient

from triptych.cluster import netns
from triptych.cluster.manager import Cluster
from triptych.datasets.sources import Item, synthetic_items
from triptych.ingress.producers import BucketWriter

from .conftest import triptych
from .pipeline_helpers import train_missing_champions, unique
from .runtime_helpers import query, wait_for

pytestmark = pytest.mark.cluster

# What each worker runs here: the pipeline, one replica a function (two workers, so
# two replicas of each share every consumer group).
PIPELINE = {"ingest": 1, "aggregate": 1, "infer-resnet50": 1, "infer-mobilenet-v2": 1, "infer-efficientnet-b0": 1}


@pytest.fixture(scope="module")
def cluster(stack):
    try:
        netns.require_root()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    train_missing_champions(stack)
    cluster = Cluster(stack)
    started = time.monotonic()
    try:
        cluster.up(workers=2, replicas=PIPELINE)
        client = cluster.client_settings()
        wait_for(
            lambda: all(
                {n: f["running"] for n, f in h["functions"].items() if f["running"] or f["desired"]} == PIPELINE
                for h in cluster.status()["hosts"]
                if "worker" in h["roles"]
            ),
            240,
            interval=1,
            message="each worker running the pipeline's replicas",
        )
        print(f"\n[cluster] up in {time.monotonic() - started:.0f} s")
        yield cluster, client
    finally:
        cluster.down(purge=True)


class Stream:
    """Labelled images into the cluster's bucket, `rate` a second, in a thread."""

    def __init__(self, client, tag: str, count: int, rate: float):
        self.writer, self.tag, self.count, self.rate = BucketWriter(client, "synthetic"), tag, count, rate
        self.sent: list[tuple[str, float]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for item in synthetic_items("test", 9000):
            if len(self.sent) >= self.count:
                return
            name = f"{self.tag}-{len(self.sent):04d}.png"
            self.writer.put(Item(name, item.data, item.label, item.client))
            self.sent.append((name, time.monotonic()))
            time.sleep(1 / self.rate)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._thread.join(300)


def compared_exactly_once(client, tag: str, count: int, timeout: float) -> list[dict]:
    def rows():
        return query(
            client,
            """SELECT i.image_id, i.filename, (SELECT count(*) FROM model_comparisons c
                                                                WHERE c.image_id = i.image_id) AS n,
                                       (SELECT max(created_at) FROM model_comparisons c
                                        WHERE c.image_id = i.image_id) AS at
                                FROM images i WHERE i.filename LIKE %s""",
            (f"{tag}-%",),
            dicts=True,
        )

    found = wait_for(
        lambda: (r := rows()) and len(r) >= count and all(x["n"] >= 1 for x in r) and r,
        timeout,
        interval=1,
        message=f"{count} images of {tag} compared",
    )
    assert len(found) == count, f"{len(found)} image rows for {count} images sent"
    doubled = [r["filename"] for r in found if r["n"] != 1]
    assert not doubled, f"compared more than once: {doubled}"
    return found


def longest_pause_s(found: list[dict]) -> float:
    """The longest time without a new comparison while the stream ran: what a fault
    cost (last comparison before it to the first after it)."""
    times = sorted(r["at"].timestamp() for r in found)
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def report(fault: str, count: int, found: list[dict]) -> None:
    print(
        f"\n[{fault}] {count} images in, {len(found)} compared exactly once, 0 lost, 0 doubled; "
        f"longest pause between comparisons {longest_pause_s(found):.1f} s"
    )


def test_status_lists_every_host_with_its_namespace_roles_processes_and_replicas(cluster):
    manager, client = cluster
    proc = triptych("cluster", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)
    hosts = {h["name"]: h for h in state["hosts"]}
    assert set(hosts) == {
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "minio-1",
        "minio-2",
        "minio-3",
        "minio-4",
        "db",
        "worker-1",
        "worker-2",
    }
    assert hosts["kafka-1"]["roles"] == ["kafka"] and hosts["minio-1"]["roles"] == ["minio"]
    assert hosts["db"]["roles"] == ["postgres", "mlflow", "monitoring"]
    assert all(h["namespace"] == f"triptych-{h['name']}" and h["pids"] for h in hosts.values())
    for worker in ("worker-1", "worker-2"):
        assert {n: f["running"] for n, f in hosts[worker]["functions"].items() if f["desired"]} == PIPELINE
    assert state["kafka_bootstrap"].count(":9092") == 3


def test_replica_health_of_every_host_comes_from_the_clusters_prometheus_to_the_api_and_the_cli(cluster):
    from fastapi.testclient import TestClient

    from triptych.api import create_app
    from triptych.observe.replicas import replica_health

    manager, client = cluster
    both = {name: 2 * n for name, n in PIPELINE.items()}  # one replica a function on each worker
    health = wait_for(
        lambda: (
            (h := replica_health(client))
            and len(h.supervisors_up) == 2
            and {n: f["running"] for n, f in h.functions.items() if f["desired"]} == both
            and h
        ),
        90,
        interval=2,
        message="Prometheus on db counting both workers' replicas",
    )
    assert {n: f["desired"] for n, f in health.functions.items() if f["desired"]} == both
    workers = {f"{h.address}:9400" for h in manager.topology().with_role("worker")}
    assert set(health.supervisors_up) == workers and not health.supervisors_down
    # The API's /health reads the same, with no runner of its own anywhere near.
    reply = TestClient(create_app(client)).get("/health").json()
    assert {n: f["running"] for n, f in reply["functions"].items() if f["desired"]} == both, reply
    # The CLI follows the cluster while it is up: its servers, and every host's replicas.
    proc = triptych("status", "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["kafka"]["url"].count(":9092") == 3 and status["minio"]["url"] == client.s3_url
    assert {n: f["running"] for n, f in status["functions"]["all_hosts"]["functions"].items() if f["desired"]} == both


def test_images_flow_across_two_workers_exactly_once_on_replicated_topics(cluster):
    manager, client = cluster
    tag = unique("cluster-flow")
    with Stream(client, tag, count=60, rate=6):
        pass
    compared_exactly_once(client, tag, 60, timeout=180)
    admin = KafkaAdminClient(bootstrap_servers=client.kafka_url)
    try:
        topics = {t["name"]: t for t in admin.describe_topics(["images-input-stream", "minio-events"])}
        assert all(
            len(p["replica_nodes"]) == 3 and len(p["isr_nodes"]) == 3 for t in topics.values() for p in t["partitions"]
        )
    finally:
        admin.close()
    # Both workers' replicas of one function are members of its one consumer group.
    assert group_hosts(client, "infer-mobilenet-v2") == worker_addresses(manager)


def group_hosts(client, group: str) -> set[str]:
    """The addresses of the members of a consumer group."""
    admin = KafkaAdminClient(bootstrap_servers=client.kafka_url)
    try:
        return {m["client_host"].strip("/") for m in admin.describe_groups([group])[group]["members"]}
    finally:
        admin.close()


def worker_addresses(manager) -> set[str]:
    return {h.address for h in manager.topology().with_role("worker")}


def test_a_partitioned_broker_loses_nothing(cluster):
    manager, client = cluster
    tag = unique("broker-partition")
    node = manager.topology().host("kafka-3")
    with Stream(client, tag, count=120, rate=4) as stream:
        wait_for(lambda: len(stream.sent) >= 20, 60, message="images before the partition")
        netns.link_down(node)
        cut_at, cut = time.monotonic(), datetime.now(UTC)
        try:
            wait_for(lambda: time.monotonic() - cut_at >= 30, 40, interval=1, message="30 s of partition")
        finally:
            healed = datetime.now(UTC)
            netns.link_up(node)
    found = compared_exactly_once(client, tag, 120, timeout=240)
    during = [r for r in found if cut <= r["at"] <= healed]
    # The stream went on with the other two brokers while the third was cut off.
    assert during, "no image was compared while the broker was cut off"
    report("broker partitioned 30 s", 120, found)
    print(f"[broker partitioned 30 s] {len(during)} compared during the cut")


def _server_pid(manager, host: str, executable: str) -> int:
    """The server process of a host run from `executable` (Postgres' backends rename themselves)."""
    [pid] = netns.servers(manager.topology().host(host).namespace, executable)
    return pid


def test_a_dead_minio_node_loses_nothing(cluster):
    manager, client = cluster
    tag = unique("minio-node")
    with Stream(client, tag, count=80, rate=4) as stream:
        wait_for(lambda: len(stream.sent) >= 20, 60, message="images before the node dies")
        os.kill(_server_pid(manager, "minio-4", "minio"), signal.SIGKILL)  # three drives of four write on
    report("MinIO node -9", 80, compared_exactly_once(client, tag, 80, timeout=180))
    manager.restart_host("minio-4")


def _postgres_processes(manager) -> list[int]:
    def postgres(pid: int) -> bool:
        try:
            return psutil.Process(pid).name().startswith("postgres")
        except psutil.Error:
            return False

    return [p for p in netns.pids(manager.topology().host("db").namespace) if postgres(p)]


def test_a_postgres_restart_under_load_loses_nothing(cluster):
    manager, client = cluster
    tag = unique("postgres-restart")
    with Stream(client, tag, count=80, rate=4) as stream:
        wait_for(lambda: len(stream.sent) >= 20, 60, message="images before the restart")
        os.kill(_server_pid(manager, "db", "postgres"), signal.SIGKILL)
        # Its backends notice the postmaster is gone and exit; then it may start again.
        wait_for(lambda: not _postgres_processes(manager), 30, message="the old server's backends gone")
        manager.restart_host("db")
    report("PostgreSQL -9, restarted", 80, compared_exactly_once(client, tag, 80, timeout=180))


def test_a_slow_lossy_link_slows_a_worker_but_loses_nothing_and_kills_no_replica(cluster):
    manager, client = cluster
    tag = unique("slow-link")
    worker = manager.topology().host("worker-2")
    restarts_before = _restarts(manager, "worker-2")
    qdisc = netns.impair(worker, delay_ms=200, loss_percent=5)
    try:
        with Stream(client, tag, count=60, rate=3):
            pass
        found = compared_exactly_once(client, tag, 60, timeout=240)
    finally:
        netns.impair(worker, None)
    assert _restarts(manager, "worker-2") == restarts_before, "a replica behind a slow link was restarted"
    report(
        "worker link 200 ms, 5 % loss" if qdisc == "netem" else "worker link 2 Mbit/s, 200 ms queue (tbf)", 60, found
    )


def _restarts(manager, host: str) -> int:
    [entry] = [h for h in manager.status()["hosts"] if h["name"] == host]
    return sum(f["restarts"] for f in entry["functions"].values())


def test_a_worker_moved_to_nuclios_processor_shares_the_groups_with_the_local_runner_and_loses_nothing(cluster):
    manager, client = cluster

    def worker_1() -> dict:
        return next(h for h in manager.status()["hosts"] if h["name"] == "worker-1")

    manager.switch_runtime("worker-1", "nuclio")
    wait_for(
        lambda: (
            worker_1().get("runtime") == "nuclio"
            and {n: f["running"] for n, f in worker_1()["functions"].items() if f["desired"]} == PIPELINE
        ),
        240,
        interval=1,
        message="worker-1's replicas running under Nuclio's processor",
    )
    tag = unique("nuclio-worker")
    with Stream(client, tag, count=60, rate=4):
        pass
    report(
        "worker-1 under Nuclio's processor, worker-2 under the local runner",
        60,
        compared_exactly_once(client, tag, 60, timeout=240),
    )
    # Nuclio's processor (Sarama) and the local runner (kafka-python) in one group.
    wait_for(
        lambda: group_hosts(client, "infer-mobilenet-v2") == worker_addresses(manager),
        60,
        interval=2,
        message="both workers in infer-mobilenet-v2's group",
    )


def test_a_dead_worker_host_loses_nothing_and_its_partitions_move_to_the_other(cluster):
    manager, client = cluster
    tag = unique("worker-death")
    with Stream(client, tag, count=120, rate=4) as stream:
        wait_for(lambda: len(stream.sent) >= 30, 60, message="images before the death")
        killed = manager.kill_host("worker-2")
        assert killed
    report("worker host -9", 120, compared_exactly_once(client, tag, 120, timeout=240))
    assert not [p for p in netns.pids("triptych-worker-2") if psutil.pid_exists(p)]


@pytest.mark.skipif(
    os.environ.get("TRIPTYCH_TEST_CHAOS") != "1",
    reason="the 3-minute chaos run (about 15 minutes with heals and drain) fails today, as xfail records; set "
    "TRIPTYCH_TEST_CHAOS=1 to run it (issue 39, open)",
)
@pytest.mark.xfail(
    reason="issue 39, open: the first run of seed 11 (at 605275d) lost 2 of 920 images (put after the faults, never "
    "registered) and comparisons stalled ~200 s after overlapping broker, MinIO-node and worker faults; two heals "
    "(`up` on a killed broker's host) failed. The run and its checker are real; the defects are not fixed yet.",
    strict=False,
)
def test_three_minutes_of_seeded_overlapping_faults_lose_and_double_nothing(cluster, tmp_path):
    """`triptych chaos` in short: a fixed seed's schedule (at least five faults, two of
    them overlapping) under a labelled stream; the checker finds every image compared
    exactly once; the written schedule replays as the same faults."""
    from triptych.chaos.run import load_replay, run_chaos
    from triptych.chaos.schedule import overlapping, plan

    manager, client = cluster
    for host in ("worker-2",):  # the test before this one left it dead
        if not [p for p in netns.pids(f"triptych-{host}") if psutil.pid_exists(p)]:
            manager.restart_host(host)
    seed, minutes = 11, 3.0
    roles: dict[str, list[str]] = {}
    for host in manager.topology().hosts:
        for role in host.roles:
            roles.setdefault(role, []).append(host.name)
    planned = plan(seed, minutes, roles)
    assert len(planned) >= 5 and len(overlapping(planned)) >= 2, planned
    result = run_chaos(manager, minutes, seed, rate=2.0, out=tmp_path, drain_s=180)
    verdict = result["verdict"]
    print(f"\n[chaos] seed {seed}: {json.dumps(verdict, default=str)}\n[chaos] recovery: {result['recovery_s']}")
    assert verdict["faults"] == len(planned) and verdict["overlapping"] >= 2
    assert verdict["images"] >= 200 and verdict["lost"] == 0 and verdict["doubled"] == 0, verdict
    assert verdict["mixed_versions"] == 0 and verdict["unexplained_dead_letters"] == 0, verdict
    assert verdict["passed"] and verdict["compared_once"] == verdict["images"]
    json_file = next(tmp_path.glob("chaos-*.json"))
    assert next(tmp_path.glob("chaos-*.html")).read_text().count("<svg") == 2
    assert load_replay(json_file) == (seed, minutes, planned)
