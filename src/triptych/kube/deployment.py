"""`triptych kube deploy`: Triptych's chart on the node of `triptych kube up`.

1. Build the images that are missing and import them into the node (`node_images`).
2. Install the operators the chart relies on from their own modules (`operators`):
   KEDA, and Nuclio's controller, which turns every NuclioFunction into a
   Deployment and a Service.
3. `helm upgrade --install` the chart with the node's values (`node_values`): the
   local images, a plain PostgreSQL StatefulSet, the chart's own Prometheus,
   NodePorts on the node's address, and requests small enough for two cores.
4. Wait until every workload is ready and every function is `ready` in Nuclio.

Run again with another tag, it is a rolling upgrade: only the pods whose image
changed are replaced, one at a time (the Deployments' default strategy).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..config import Settings
from ..errors import StackError, UnhealthyError
from ..models.carry import carry_champions
from . import chart, node, node_addons, node_images, operators
from .client import KubeApiError, KubeClient
from .node_config import NODE_IP, NodeLayout
from .status import RELEASE_NAMESPACE

RELEASE = "triptych"
# Every image a deploy needs; training only when asked (7.5 GB, and only retrain uses it).
SERVING_ROLES = (
    "serving",
    "mlflow",
    "kafka",
    "postgres",
    "prometheus",
    "minio",
    "nuclio-controller",
    "keda-operator",
    "keda-adapter",
)
# Requests sized for one two-core node: scheduling hints, not limits (the limits stay
# the declaration's). The declared requests (a core per inference replica) fit a
# real cluster's nodes, not this one.
SMALL_REQUESTS = {"cpu": "20m", "memory": "128Mi"}


def node_values(images: dict[str, str], declared: dict[str, dict], kafka_sasl: bool = False) -> dict:
    """The chart's values for the development node."""

    def repo(role: str) -> str:
        return images[role].rpartition(":")[0]

    tag = images["serving"].rpartition(":")[2]
    small = {"requests": SMALL_REQUESTS}
    values = {
        "image": {
            "repository": repo("serving"),
            "tag": tag,
            "pullPolicy": "IfNotPresent",
            "training": {"repository": repo("training" if "training" in images else "serving"), "tag": tag},
        },
        "kafka": {
            "image": images["kafka"],
            "resources": {**small, "limits": {"memory": "1536Mi"}},
            "sasl": {"enabled": kafka_sasl},
        },
        "minio": {"image": images["minio"], "resources": {**small, "limits": {"memory": "1Gi"}}},
        "postgres": {
            "mode": "statefulset",
            "statefulset": {"image": images["postgres"], "resources": {**small, "limits": {"memory": "1Gi"}}},
        },
        "mlflow": {"image": images["mlflow"], "resources": {**small, "limits": {"memory": "1Gi"}}},
        "prometheus": {
            "enabled": True,
            "image": images["prometheus"],
            "resources": {**small, "limits": {"memory": "512Mi"}},
        },
        "api": {"resources": {**small, "limits": {"memory": "1Gi"}}},
        "dashboard": {"resources": {**small, "limits": {"memory": "1Gi"}}},
        # KEDA on consumer lag for the Kafka functions (the chart's default). The HTTP
        # ones get Nuclio's HPA on CPU, which needs a metrics server the node has not:
        # they stay at their declared minimum.
        "functions": {
            "scaling": "keda",
            "overrides": {
                name: {"resources": {"requests": SMALL_REQUESTS, "limits": fn.get("resources", {}).get("limits", {})}}
                for name, fn in declared.items()
            },
        },
        "nodePorts": {"enabled": True, "host": NODE_IP},
    }
    return values


def _declared_functions() -> dict[str, dict]:
    return yaml.safe_load((chart.CHART_DIR / "files" / "functions.yaml").read_text())["functions"]


def _workloads_ready(api: KubeClient, namespace: str, only: tuple[str, ...] = ()) -> str | None:
    """None when every Deployment and StatefulSet (or those named in `only`) has its
    replicas ready and every NuclioFunction is `ready`; else what is still waited for."""
    waiting = []
    for kind, path in (
        ("Deployment", f"/apis/apps/v1/namespaces/{namespace}/deployments"),
        ("StatefulSet", f"/apis/apps/v1/namespaces/{namespace}/statefulsets"),
    ):
        for item in api.request("GET", path)["items"]:
            if only and item["metadata"]["name"] not in only:
                continue
            want = item["spec"].get("replicas", 1)
            status = item.get("status", {})
            if (
                status.get("readyReplicas", 0) < want
                or status.get("updatedReplicas", 0) < want
                or status.get("observedGeneration", 0) < item["metadata"]["generation"]
            ):
                waiting.append(f"{kind}/{item['metadata']['name']} {status.get('readyReplicas', 0)}/{want}")
    functions = {} if only else api.request("GET", f"/apis/nuclio.io/v1beta1/namespaces/{namespace}/nucliofunctions")
    for fn in functions.get("items", []):
        state = fn.get("status", {}).get("state")
        if state != "ready" and not _scaled_to_zero(api, namespace, fn["metadata"]["name"]):
            waiting.append(f"NuclioFunction/{fn['metadata']['name']} {state}")
    return ", ".join(waiting) or None


def _scaled_to_zero(api: KubeClient, namespace: str, function: str) -> bool:
    """KEDA holds the function at zero (infer-shadow without a challenger, say): Nuclio
    then calls it unhealthy, which is nothing to wait for."""
    try:
        deployment = api.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/nuclio-{function}")
    except KubeApiError:
        return False
    return deployment["spec"].get("replicas", 1) == 0


def wait_ready(lay: NodeLayout, timeout_s: float, report: Callable[[str], None], only: tuple[str, ...] = ()) -> None:
    api = node_addons.client(lay)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            waiting = _workloads_ready(api, RELEASE_NAMESPACE, only)
        except (KubeApiError, OSError) as exc:
            waiting = str(exc)
        if waiting is None:
            return
        if waiting != last:
            report(f"waiting for {waiting}")
            last = waiting
        time.sleep(3)
    raise UnhealthyError(f"the release was not ready in {timeout_s:.0f} s: {last}")


def deploy(
    settings: Settings,
    tag: str = "dev",
    training: bool = False,
    report: Callable[[str], None] = print,
    timeout_s: float = 900,
    kafka_sasl: bool = False,
) -> dict[str, str]:
    """Images, operators, the chart; returns role -> image. Needs `triptych kube up` first.
    `kafka_sasl`: Kafka asks every part for its own login (the chart's kafka.sasl.enabled)."""
    if not node.is_up(settings):
        raise StackError("the node is not up: run `triptych kube up` first")
    lay = node.layout(settings)
    roles = SERVING_ROLES + (("training",) if training else ())
    images = node_images.ensure_all(settings, lay, tag, roles, report)
    if not training:
        report("retrain runs from the serving image, which cannot train: deploy with --training for that")
    node_addons.ensure_volume_pool(lay)
    report("installing KEDA (operator and metrics API server)")
    operators.install_keda(lay, node_addons.client(lay), images)
    report("installing Nuclio's controller")
    operators.install_nuclio(settings, lay, RELEASE_NAMESPACE, images["nuclio-controller"])
    operators.ensure_nuclio_project(node_addons.client(lay), RELEASE, RELEASE_NAMESPACE)
    values_file = lay.etc / "triptych-values.yaml"
    values_file.write_text(yaml.safe_dump(node_values(images, _declared_functions(), kafka_sasl), sort_keys=False))
    report(f"helm upgrade --install {RELEASE} (values: {values_file})")
    chart.upgrade_install(
        settings,
        chart.Release(
            name=RELEASE, namespace=RELEASE_NAMESPACE, values_files=[values_file], kubeconfig=lay.admin_kubeconfig
        ),
    )
    # The inference functions wait for their champions: MLflow first, then the champions
    # of the stack this CLI points at (when the node's registry has none), then the rest.
    wait_ready(lay, timeout_s, report, only=(f"{RELEASE}-mlflow",))
    if carry_champions(settings, client_settings(settings), client_env(settings), "node"):
        report("carried this stack's champions into the node's MLflow")
    wait_ready(lay, timeout_s, report)
    return images


def client_settings(settings: Settings) -> Settings:
    """Settings that reach the deployment from this machine (what `triptych kube env` exports)."""
    env = client_env(settings)
    # Settings(**...), not model_validate: the environment still fills every other field.
    given: dict[str, Any] = {
        k.removeprefix("TRIPTYCH_").lower(): v
        for k, v in env.items()
        if k.startswith("TRIPTYCH_") and k != "TRIPTYCH_FOLLOW_CLUSTER"
    }
    return Settings(**given)


def _secret(api: KubeClient, name: str) -> dict[str, str]:
    data = api.request("GET", f"/api/v1/namespaces/{RELEASE_NAMESPACE}/secrets/{name}")["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def client_env(settings: Settings) -> dict[str, str]:
    """TRIPTYCH_* settings that point this machine's `triptych` commands at the deployment
    (empty when nothing is deployed)."""
    from .status import endpoints

    if not node.is_up(settings):
        return {}
    lay = node.layout(settings)
    api = node_addons.client(lay)
    found = endpoints(api)
    if not found.get("kafka"):
        return {}
    s3, pg = _secret(api, f"{RELEASE}-s3"), _secret(api, f"{RELEASE}-postgres")
    values = yaml.safe_load(Path(lay.etc / "triptych-values.yaml").read_text())
    ports = {**yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text())["nodePorts"], **values["nodePorts"]}
    # With kafka.sasl.enabled this machine's commands log in to Kafka as the admin.
    kafka_login: dict[str, str] = {}
    if values.get("kafka", {}).get("sasl", {}).get("enabled"):
        admin = _secret(api, f"{RELEASE}-kafka-admin")
        kafka_login = {"TRIPTYCH_KAFKA_USERNAME": admin["username"], "TRIPTYCH_KAFKA_PASSWORD": admin["password"]}
    return {
        **kafka_login,
        "TRIPTYCH_KAFKA_BOOTSTRAP": found["kafka"] or "",
        "TRIPTYCH_S3_ENDPOINT": found["s3"] or "",
        "TRIPTYCH_S3_ACCESS_KEY": s3["access-key"],
        "TRIPTYCH_S3_SECRET_KEY": s3["secret-key"],
        "TRIPTYCH_DATABASE_URL": f"postgresql://{pg['username']}:{pg['password']}@{NODE_IP}:{ports['postgres']}/triptych",
        "TRIPTYCH_MLFLOW_TRACKING_URI": f"http://{NODE_IP}:{ports['mlflow']}",
        "TRIPTYCH_FOLLOW_CLUSTER": "false",
    }
