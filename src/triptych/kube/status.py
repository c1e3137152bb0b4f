"""`triptych kube status --json`: what runs on the node, read
from its API server and its containerd.

The keys are an interface other tools read: kubeconfig, nodes [{name, ready}],
pods [{name, namespace, phase, ready, function}], endpoints {api, dashboard, s3,
kafka}, images [{name, role, size_bytes}].
"""

from __future__ import annotations

from ..config import Settings
from . import image_catalog, node, node_addons
from .client import KubeApiError
from .node_config import NODE_IP

# The pod label that names the Triptych function a pod runs: Nuclio's controller
# puts it on every function pod it makes.
FUNCTION_LABEL = "nuclio.io/function-name"
RELEASE_NAMESPACE = "triptych"
# The chart's Services the host reaches (NodePorts on the node's address), by name
# for the release `triptych`, and the scheme a client dials them with.
ENDPOINT_SERVICES = {
    "api": ("triptych-api", "http"),
    "dashboard": ("triptych-dashboard", "http"),
    "s3": ("triptych-minio", "http"),
    "kafka": ("triptych-kafka-external-0", ""),
}


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def endpoints(api, namespace: str = RELEASE_NAMESPACE) -> dict[str, str | None]:
    """Each of the deployment's doors as the host dials it: the node's address and the
    Service's NodePort (None while it is not deployed)."""
    found: dict[str, str | None] = dict.fromkeys(ENDPOINT_SERVICES)
    try:
        services = api.request("GET", f"/api/v1/namespaces/{namespace}/services")["items"]
    except KubeApiError:
        return found
    by_name = {s["metadata"]["name"]: s for s in services}
    for key, (name, scheme) in ENDPOINT_SERVICES.items():
        ports = [p for p in by_name.get(name, {}).get("spec", {}).get("ports", []) if p.get("nodePort")]
        if ports:
            address = f"{NODE_IP}:{ports[0]['nodePort']}"
            found[key] = f"{scheme}://{address}" if scheme else address
    return found


def collect(settings: Settings) -> dict:
    lay = node.layout(settings)
    state: dict = {
        "kubeconfig": str(lay.admin_kubeconfig),
        "nodes": [],
        "pods": [],
        "endpoints": dict.fromkeys(ENDPOINT_SERVICES),
        "images": [],
    }
    if not node.is_up(settings):
        return state
    api = node_addons.client(lay)
    try:
        nodes = api.request("GET", "/api/v1/nodes")["items"]
        pods = api.request("GET", "/api/v1/pods")["items"]
    except (KubeApiError, OSError) as exc:
        state["error"] = str(exc)
        return state
    state["nodes"] = [{"name": n["metadata"]["name"], "ready": _ready(n)} for n in nodes]
    state["pods"] = [
        {
            "name": p["metadata"]["name"],
            "namespace": p["metadata"]["namespace"],
            "phase": p.get("status", {}).get("phase", "Unknown"),
            "ready": _ready(p),
            "function": p["metadata"].get("labels", {}).get(FUNCTION_LABEL),
        }
        for p in pods
    ]
    state["endpoints"] = endpoints(api)
    state["images"] = image_catalog.imported(settings, lay)
    return state
