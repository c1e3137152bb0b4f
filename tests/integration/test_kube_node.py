"""Triptych on a real Kubernetes node: `triptych kube up` (etcd, the control plane,
containerd with runc, the kubelet, kube-proxy and CoreDNS, the node in its own
network namespace), then `triptych kube deploy` (every image built here and
imported, Nuclio's controller from Nuclio's own chart, the Helm chart with a plain
PostgreSQL StatefulSet and its own Prometheus). Proven here, through the node's
NodePorts from this machine:
- bucket drops and HTTP uploads become comparisons in the node's PostgreSQL,
  through the NuclioFunctions Nuclio's controller turned into pods;
- the API and the dashboard answer through their Services;
- KEDA scales an inference function up on lag and back down, and wakes
  infer-shadow from zero for a challenger (its cold start measured);
- with images in flight, none is lost or doubled when an inference pod, the Kafka
  pod or the PostgreSQL pod is deleted, when `kube deploy` rolls to a new tag, and
  when containerd and the kubelet are killed and started again;
- `triptych kube status --json` says what runs, with the keys other tools read;
- `triptych kube down` leaves no process, namespace, cgroup or file behind.

Needs root (the node's namespaces and cgroups), as CI has. The first run builds the
node's binaries and images (minutes); later runs reuse the cache.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import subprocess
import time
from pathlib import Path

import httpx2 as httpx
import psutil
import psycopg2
import pytest
import yaml

from triptych.kube import deployment, node, node_addons, node_namespaces
from triptych.kube.node_config import CGROUP_ROOT, HOST_VETH, NAMESPACE, NODE_NAME

from ..images import image_bytes
from .conftest import CLI, make_key
from .pipeline_helpers import image_ids_for, stream, train_missing_champions, unique, wait_comparisons
from .runtime_helpers import query, wait_for

pytestmark = [
    pytest.mark.kube,
    pytest.mark.skipif(os.geteuid() != 0, reason="the node needs root (namespaces, cgroups)"),
    # The first test's limit covers the module's fixture: on a fresh machine it
    # builds the node's binaries and images (about half an hour on two cores).
    pytest.mark.timeout(3600),
]

TAG = "test"
NAMESPACE_K8S = "triptych"


def kube_cli(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "kube", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def deployed(stack):
    """The node up, the chart deployed at TAG with the test stack's champions carried in;
    the settings that reach the deployment. The node goes down at the end unless it was up."""
    train_missing_champions(stack)
    was_up = node.is_up(stack)
    try:
        started = time.monotonic()
        up = kube_cli("up")
        assert up.returncode == 0, up.stderr[-4000:]
        print(f"\n[kube] node up in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        deploy = kube_cli("deploy", "--tag", TAG)
        assert deploy.returncode == 0, deploy.stderr[-6000:]
        print(f"[kube] deployed in {time.monotonic() - started:.0f} s\n{deploy.stderr[-3000:]}")
        yield deployment.client_settings(stack)
    finally:
        # The node lives in the test stack's data folder, which the session's end deletes.
        if not was_up:
            node.down(stack)


def _status() -> dict:
    proc = kube_cli("status", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_status_reports_the_node_its_pods_endpoints_and_images(deployed):
    state = _status()
    assert set(state) >= {"kubeconfig", "nodes", "pods", "endpoints", "images"}
    assert Path(state["kubeconfig"]).exists()
    assert state["nodes"] == [{"name": NODE_NAME, "ready": True}]
    functions = {p["function"] for p in state["pods"] if p["function"] and p["ready"]}
    assert {
        "ingest",
        "aggregate",
        "upload",
        "infer-resnet50",
        "infer-mobilenet-v2",
        "infer-efficientnet-b0",
    } <= functions, state["pods"]
    assert all(state["endpoints"][k] for k in ("api", "dashboard", "s3", "kafka")), state["endpoints"]
    roles = {image["role"]: image for image in state["images"]}
    assert {
        "serving",
        "mlflow",
        "kafka",
        "postgres",
        "prometheus",
        "minio",
        "nuclio-controller",
        "pause",
        "coredns",
    } <= set(roles), state["images"]
    print(
        "\n[kube] images: "
        + ", ".join(f"{i['role']} {i['size_bytes'] / 1e9:.2f} GB" for i in state["images"] if i["size_bytes"])
    )
    # The serving functions run without torch: the image stays small enough to start fast.
    assert roles["serving"]["size_bytes"] <= 1.2e9


def test_bucket_drops_become_comparisons_through_the_nuclio_functions(deployed):
    tag = unique("kube-drop")
    stream(deployed, 6, 9300, tag)
    ids = image_ids_for(deployed, tag, 6, timeout=300)
    wait_comparisons(deployed, ids, timeout=300)
    per_image = query(
        deployed,
        "SELECT image_id, count(DISTINCT model_name) FROM predictions "
        "WHERE image_id = ANY(%s::uuid[]) GROUP BY image_id",
        (ids,),
    )
    assert len(per_image) == 6 and all(n == 3 for _, n in per_image)


def test_http_uploads_through_the_api_service_become_comparisons(deployed):
    state = _status()
    key = make_key(deployed, ["upload"])
    tag = unique("kube-upload")
    with httpx.Client(base_url=state["endpoints"]["api"], headers={"X-API-Key": key}, timeout=60) as client:
        for i in range(3):
            reply = client.post("/upload", files={"file": (f"{tag}-{i}.png", image_bytes("PNG"))})
            assert reply.status_code in (200, 201), reply.text
    ids = image_ids_for(deployed, tag, 3, timeout=300)
    wait_comparisons(deployed, ids, timeout=300)


def test_the_api_and_the_dashboard_answer_through_their_services(deployed):
    state = _status()
    health = httpx.get(f"{state['endpoints']['api']}/health", timeout=30)
    assert health.status_code == 200, health.text
    board = state["endpoints"]["dashboard"]
    # Sign-in is on (the dashboard binds beyond loopback in its pod): a page asks for it.
    page = httpx.get(board, headers={"Accept": "text/html"}, timeout=60)
    assert page.status_code == 302 and page.headers["location"].startswith("/login"), page.text
    # A one-time link made in the node's PostgreSQL signs the local admin in through the Service.
    from triptych.db.connection import Database
    from triptych.security.sessions import make_login_link
    from triptych.security.users import LOCAL_ADMIN, ensure_local_admin

    secret = Database(deployed).transaction(
        lambda cur: (ensure_local_admin(cur), make_login_link(cur, LOCAL_ADMIN, datetime.timedelta(minutes=5)))[1]
    )
    with httpx.Client(base_url=board, timeout=60) as client:
        assert client.get(f"/login?token={secret}").status_code == 303
        page = client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "Triptych" in page.text


def test_keda_scales_an_inference_function_above_its_minimum_on_lag(deployed, stack):
    """Lag on images-input-stream, and KEDA's HPA takes an inference function above its
    declared minimum; the backlog is then worked off, and the function comes back down
    to its minimum through the HPA's scale-down window.

    The lag is made by replaying the images this module already registered onto the
    topic, many times over, faster than two cores classify them: a real backlog the
    functions must work through. The sinks are idempotent, so the replays change no
    row. The trace (seconds, replicas, lag every 5 s) is printed for docs/operations/kubernetes.md.

    Nuclio's controller clamps the Deployment's replicas into the NuclioFunction's own
    bounds whenever it updates the function; the chart gives it KEDA's bounds, so the
    trace must never fall back to the minimum while the backlog lasts (with min == max
    it did: 6 -> 1 -> 6)."""
    from triptych.bus import GroupLag
    from triptych.bus import producer as make_producer
    from triptych.contracts import TOPIC_IMAGES_INPUT, ImageMessage
    from triptych.kube.chart import CHART_DIR

    function = "infer-efficientnet-b0"
    keda = yaml.safe_load((CHART_DIR / "files" / "functions.yaml").read_text())["functions"][function]["keda"]
    trigger = keda["triggers"][0]["metadata"]
    lag = GroupLag(deployed, trigger["consumerGroup"], trigger["topic"])
    api = node_addons.client(node.layout(stack))

    def replicas() -> int:
        target = api.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACE_K8S}/deployments/nuclio-{function}")
        return target["spec"].get("replicas", 0)

    rows = query(
        deployed,
        "SELECT i.image_id, bucket, object_key, object_version, sha256, image_format, width, "
        "height, source FROM images i JOIN model_comparisons c USING (image_id) "
        "WHERE image_format IS NOT NULL",
        dicts=True,
    )
    assert len(rows) >= 6, "the earlier tests compared images to replay"
    messages = [ImageMessage(**{k: str(v) if k == "image_id" else v for k, v in row.items()}) for row in rows]
    before = query(deployed, "SELECT count(*) FROM predictions")[0][0]
    assert replicas() == keda["minReplicaCount"]
    producer = make_producer(deployed)
    repeats = max(1, 900 // len(messages))
    started, trace = time.monotonic(), []
    for _ in range(repeats):
        for message in messages:
            producer.send(TOPIC_IMAGES_INPUT, key=message.image_id.encode(), value=message.model_dump_json().encode())
    producer.flush()

    def sample() -> tuple[int, int]:
        point = (replicas(), lag())
        trace.append((round(time.monotonic() - started), *point))
        return point

    try:
        wait_for(
            lambda: sample()[0] > keda["minReplicaCount"],
            120,
            interval=5,
            message=f"KEDA to scale {function} above {keda['minReplicaCount']}",
        )
        wait_for(lambda: sample()[1] == 0, 600, interval=5, message=f"{function}'s backlog worked off")
        drained = len(trace)
        window = keda["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
            "stabilizationWindowSeconds"
        ]
        wait_for(
            lambda: sample()[0] == keda["minReplicaCount"],
            window + 240,
            interval=5,
            message=f"{function} back down to {keda['minReplicaCount']} after the backlog",
        )
    finally:
        print(f"\n[kube] scaling of {function}, {repeats * len(messages)} replayed (s, replicas, lag): {trace}")
    assert max(r for _, r, _ in trace) > keda["minReplicaCount"]
    up = next(i for i, (_, r, _) in enumerate(trace) if r > keda["minReplicaCount"])
    # While the lag asks for two replicas or more, nothing may have pulled them back to the minimum.
    ask_two = 2 * int(trigger["lagThreshold"])
    assert all(r > keda["minReplicaCount"] for _, r, lag in trace[up:drained] if lag > ask_two), trace
    assert query(deployed, "SELECT count(*) FROM predictions")[0][0] == before, "a replay changed no row"


def _pods(lay, selector: str) -> list[str]:
    pods = node_addons.client(lay).request(
        "GET", f"/api/v1/namespaces/{NAMESPACE_K8S}/pods", params={"labelSelector": selector}
    )["items"]
    return [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]


def _restarts(lay) -> dict[str, list]:
    """Each pod's container restarts and why the last one ended: printed when a fault test
    fails, so that a server that restarted under load names itself."""
    pods = node_addons.client(lay).request("GET", f"/api/v1/namespaces/{NAMESPACE_K8S}/pods")["items"]
    return {
        p["metadata"]["name"]: [
            (c["restartCount"], c.get("lastState", {}).get("terminated", {}).get("reason"))
            for c in p["status"].get("containerStatuses", [])
        ]
        for p in pods
    }


def _delete_pod(lay, name: str) -> None:
    node_addons.client(lay).request("DELETE", f"/api/v1/namespaces/{NAMESPACE_K8S}/pods/{name}")


def _database_answers(settings) -> bool:
    """The test's own reads need PostgreSQL too: while its pod is replaced they wait."""
    try:
        return query(settings, "SELECT 1") == [(1,)]
    except psycopg2.OperationalError:
        return False


FAULTS: list[dict] = []  # one row per fault: the table of docs/operations/kubernetes.md, printed at the end


def _through_a_fault(deployed, lay, name: str, fault, before: int = 10, during: int = 20, timeout: float = 600) -> None:
    """Images in flight across `fault()`: `before` dropped first, the fault, `during` more;
    then every one is compared exactly once (one comparison, one prediction per model)."""
    tag = unique("kube-fault")
    first = 10000 + 400 * len(FAULTS)
    stream(deployed, before, first, tag)
    started, fault_at = time.monotonic(), datetime.datetime.now(datetime.UTC)
    # The fault runs beside the stream: an image a second for as long as it lasts (an
    # upgrade builds and imports its images, then rolls), `during` at least, 300 at most.
    sent = 0
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(fault)
        try:
            while sent < during or (not running.done() and sent < 300):
                stream(deployed, 1, first + before + sent, tag)
                sent += 1
                time.sleep(1.0 if not running.done() else 0)
            running.result()
        except Exception:
            print(f"\n[kube] restarts after {sent} images sent: {_restarts(lay)}")
            raise
    total = before + sent
    wait_for(lambda: _database_answers(deployed), 240, message="the node's PostgreSQL to answer this test")
    ids = image_ids_for(deployed, tag, total, timeout=timeout)
    wait_comparisons(deployed, ids, timeout=timeout)
    per_image = query(
        deployed,
        "SELECT image_id, count(*) FROM model_comparisons WHERE image_id = ANY(%s::uuid[]) GROUP BY image_id",
        (ids,),
    )
    per_model = query(
        deployed,
        "SELECT image_id, model_name, count(*) FROM predictions "
        "WHERE image_id = ANY(%s::uuid[]) GROUP BY image_id, model_name",
        (ids,),
    )
    # The longest stretch without a new comparison, from the fault on (same clock: the node
    # is this machine).
    times = [fault_at] + sorted(
        t
        for (t,) in query(
            deployed,
            "SELECT created_at FROM model_comparisons WHERE image_id = ANY(%s::uuid[]) AND created_at > %s",
            (ids, fault_at),
        )
    )
    pause = max((b - a).total_seconds() for a, b in zip(times, times[1:])) if len(times) > 1 else 0.0
    row = {
        "fault": name,
        "images": total,
        "compared_once": sum(1 for _, n in per_image if n == 1),
        "lost": total - len(per_image),
        "doubled": sum(1 for *_, n in per_model if n > 1),
        "longest_pause_s": round(pause, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    FAULTS.append(row)
    print(f"\n[kube] {row}")
    assert row["compared_once"] == total and row["lost"] == 0 and row["doubled"] == 0, row
    assert len(per_model) == 3 * total


def test_an_inference_pod_deleted_in_flight_loses_and_doubles_nothing(deployed, stack):
    lay = node.layout(stack)
    victim = _pods(lay, "nuclio.io/function-name=infer-mobilenet-v2")[0]
    _through_a_fault(deployed, lay, "delete an inference pod", lambda: _delete_pod(lay, victim))
    assert victim not in _pods(lay, "nuclio.io/function-name=infer-mobilenet-v2")


def test_the_kafka_pod_deleted_comes_back_and_nothing_is_lost(deployed, stack):
    lay = node.layout(stack)
    _through_a_fault(deployed, lay, "delete the Kafka pod", lambda: _delete_pod(lay, "triptych-kafka-0"))


def test_the_postgres_pod_deleted_comes_back_and_nothing_is_lost(deployed, stack):
    lay = node.layout(stack)
    _through_a_fault(deployed, lay, "delete the PostgreSQL pod", lambda: _delete_pod(lay, "triptych-postgres-0"))


def test_a_helm_upgrade_to_a_new_tag_rolls_while_the_stream_runs(deployed, stack):
    lay = node.layout(stack)
    before = {p: None for p in _pods(lay, "nuclio.io/function-name=ingest")}
    api = node_addons.client(lay)
    servers = ("triptych-minio", "triptych-kafka", "triptych-postgres")

    def server_images() -> dict[str, str]:
        path = f"/apis/apps/v1/namespaces/{NAMESPACE_K8S}/statefulsets"
        return {
            s["metadata"]["name"]: s["spec"]["template"]["spec"]["containers"][0]["image"]
            for s in api.request("GET", path)["items"]
            if s["metadata"]["name"] in servers
        }

    servers_before = server_images()

    def upgrade():
        proc = kube_cli("deploy", "--tag", f"{TAG}-2")
        assert proc.returncode == 0, proc.stderr[-4000:]

    _through_a_fault(deployed, lay, "helm upgrade to a new tag (rolling)", upgrade)
    # The servers' images are tagged by their contents, not by the release: they did not roll.
    assert server_images() == servers_before and len(servers_before) == 3, servers_before
    ingest = api.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACE_K8S}/deployments/nuclio-ingest")
    assert ingest["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{TAG}-2")
    assert not set(before) & set(_pods(lay, "nuclio.io/function-name=ingest")), "every ingest pod was replaced"


def test_containerd_and_the_kubelet_killed_then_started_again(deployed, stack):
    lay = node.layout(stack)

    def crash_and_restart():
        node.stop(lay, "kubelet", kill=True)
        node.stop(lay, "containerd", kill=True)
        proc = kube_cli("up", timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]

    _through_a_fault(deployed, lay, "kill -9 containerd and the kubelet, then `kube up`", crash_and_restart)
    print(
        "\n[kube] fault | images | compared once | lost | doubled | longest pause (s)\n"
        + "\n".join(
            f"[kube] {r['fault']} | {r['images']} | {r['compared_once']} | {r['lost']} | {r['doubled']} | "
            f"{r['longest_pause_s']}"
            for r in FAULTS
        )
    )


def _ready_pods(lay, function: str) -> list[dict]:
    pods = node_addons.client(lay).request(
        "GET",
        f"/api/v1/namespaces/{NAMESPACE_K8S}/pods",
        params={"labelSelector": f"nuclio.io/function-name={function}"},
    )["items"]
    return [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def test_infer_shadow_sleeps_at_zero_until_a_challenger_exists_then_wakes(deployed, stack):
    """infer-shadow has no pod while no model has a challenger, however many images flow;
    a challenger alias in the node's MLflow wakes it through KEDA's Prometheus trigger (the
    jobs function sets `triptych_wake_condition{condition="challenger"}` to 1 while a
    challenger is in shadow, from whichever of its worker processes runs the gate), and
    it answers in shadow; with the alias gone it goes back to zero.

    The cold start is measured from the challenger's appearance (the function's first
    event) to its first shadow answer, in stages: KEDA's decision (the jobs function's
    minute, Prometheus' scrape, KEDA's poll), the pod Ready (scheduling, the container,
    ONNX Runtime loading the model), the first answer. It runs after the fault tests:
    their check of one prediction per image and model would count shadow answers."""
    from triptych.models import registry

    lay = node.layout(stack)
    api = node_addons.client(lay)
    function, model = "infer-shadow", "mobilenet_v2"

    def replicas() -> int:
        target = api.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACE_K8S}/deployments/nuclio-{function}")
        return target["spec"].get("replicas", 0)

    def shadow_answers(ids: list[str]) -> list[tuple]:
        return query(
            deployed,
            "SELECT image_id, created_at FROM predictions WHERE role = 'shadow' AND image_id = ANY(%s::uuid[]) "
            "ORDER BY created_at",
            (ids,),
        )

    champion = registry.version_for_alias(model, registry.CHAMPION, deployed)
    assert champion, "the node carries the test stack's champions"
    assert registry.version_for_alias(model, registry.CHALLENGER, deployed) is None
    # Asleep: images are compared by the champions, and no shadow pod starts for them.
    tag = unique("kube-asleep")
    stream(deployed, 5, 12000, tag)
    ids = image_ids_for(deployed, tag, 5, timeout=300)
    wait_comparisons(deployed, ids, timeout=300)
    assert replicas() == 0 and _ready_pods(lay, function) == [] and shadow_answers(ids) == []

    # The challenger: the champion's own version, served a second time in shadow.
    registry.set_alias(model, champion, registry.CHALLENGER, deployed)
    woke_at, stages, sent, tag = time.monotonic(), {}, [], unique("kube-shadow")
    try:

        def answered() -> bool:
            # An image every two seconds from the challenger on, so the awake pod's first
            # poll finds work; each sample notes the stage the wake has reached.
            stream(deployed, 1, 12100 + len(sent), tag)
            sent.append(1)
            now = round(time.monotonic() - woke_at, 1)
            if "keda_scaled_s" not in stages and replicas() >= 1:
                stages["keda_scaled_s"] = now
            if "pod_ready_s" not in stages and _ready_pods(lay, function):
                stages["pod_ready_s"] = now
            rows = query(deployed, "SELECT image_id FROM images WHERE filename LIKE %s", (f"{tag}-%",))
            if shadow_answers([str(r[0]) for r in rows]):
                stages["first_answer_s"] = now
                return True
            return False

        wait_for(answered, 420, interval=2, message=f"{function} to wake for a challenger and answer")
        print(f"\n[kube] cold start of {function} from the challenger's alias (s): {stages}, {len(sent)} images sent")
        assert stages["keda_scaled_s"] <= stages["pod_ready_s"] <= stages["first_answer_s"]
    finally:
        registry.delete_alias(model, registry.CHALLENGER, deployed)
    # Back to zero once the challenger is gone: the jobs function drops the gauge at its next
    # review, and KEDA scales to zero after its cooldown.
    started = time.monotonic()
    wait_for(lambda: replicas() == 0, 480, interval=5, message=f"{function} back at zero without a challenger")
    print(f"[kube] {function} back at zero {time.monotonic() - started:.0f} s after the alias went")


def test_down_leaves_no_process_namespace_cgroup_or_file(deployed, stack):
    lay = node.layout(stack)
    mount_namespace = node_namespaces.node_mount_namespace(lay)
    node.down(stack)
    assert not node.is_up(stack)
    assert not lay.root.exists()
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split().count(NAMESPACE) == 0
    assert subprocess.run(["ip", "link", "show", HOST_VETH], capture_output=True).returncode != 0
    assert not any((h / CGROUP_ROOT.lstrip("/")).exists() for h in node_namespaces.hierarchies())
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(lay.root) in " ".join(proc.info["cmdline"] or []) or (
                mount_namespace and os.readlink(f"/proc/{proc.pid}/ns/mnt") == mount_namespace
            ):
                leftovers.append(proc.pid)
        except OSError:
            continue
    assert leftovers == []
    assert str(lay.root) not in Path("/proc/self/mountinfo").read_text()
    again = kube_cli("down", timeout=120)  # nothing left to do: it says so, and does not fail
    assert again.returncode == 0, again.stderr
