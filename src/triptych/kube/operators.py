"""The operators the chart relies on, installed on the node from their own modules'
manifests, with images built here (`node_images`):

- **Nuclio's controller**, from Nuclio's own Helm chart (dashboard, autoscaler and
  DLX off), watching the release's namespace: every NuclioFunction becomes a
  Deployment and a Service.
- **KEDA** (operator and metrics API server), from the manifests KEDA's module
  ships (`config/minimal`: CRDs, RBAC, the two Deployments, the APIService of
  external.metrics.k8s.io) with our images in place of the registry's. The
  operator makes and rotates the metrics server's certificate itself.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from ..config import Settings
from ..errors import UnhealthyError
from ..runtime.nuclio_processor import NUCLIO_MODULE, NUCLIO_VERSION
from . import chart, crds
from .client import KubeApiError, KubeClient
from .node_config import NodeLayout

NUCLIO_RELEASE = "nuclio"
KEDA_NAMESPACE = "keda"
KEDA_MODULE, KEDA_VERSION, _ = crds.KEDA
# The kustomization KEDA's module builds its plain install from; its CRD patches only
# tighten two schema bounds and are left out.
KEDA_KUSTOMIZATION = "config/minimal"
KEDA_IMAGES = {"ghcr.io/kedacore/keda": "keda-operator", "ghcr.io/kedacore/keda-metrics-apiserver": "keda-adapter"}


def install_nuclio(settings: Settings, lay: NodeLayout, namespace: str, controller_image: str) -> None:
    """Nuclio's controller from Nuclio's own chart (in its Go module), watching `namespace`."""
    repository, _, tag = controller_image.rpartition(":")
    release = chart.Release(
        name=NUCLIO_RELEASE,
        namespace=namespace,
        kubeconfig=lay.admin_kubeconfig,
        chart=crds.module_dir(NUCLIO_MODULE, NUCLIO_VERSION) / crds.NUCLIO_CHART,
        # Cron triggers inside the processor: Nuclio's default makes a CronJob of
        # appropriate/curl per trigger, an image no registry here serves.
        sets=[
            "dashboard.enabled=false",
            "autoscaler.enabled=false",
            "dlx.enabled=false",
            "platform.cronTriggerCreationMode=processor",
            # A function whose pod restarted while its servers came up is
            # `unhealthy` until the monitor looks again (3 m by default).
            "controller.monitoring.function.interval=20s",
            "crd.create=true",
            f"controller.image.repository={repository}",
            f"controller.image.tag={tag}",
            "controller.image.pullPolicy=IfNotPresent",
        ],
        extra=["--wait", "--timeout", "5m"],
    )
    chart.upgrade_install(settings, release)


def _kustomized(folder: Path) -> list[dict]:
    """The documents of a kustomization's `resources`, folders followed (no transformers)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for resource in spec.get("resources", []):
        path = (folder / resource).resolve()
        if path.is_dir():
            docs += _kustomized(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def keda_objects(images: dict[str, str]) -> list[dict]:
    """KEDA's minimal install, each container on the image of `images` (role -> name)."""
    docs = _kustomized(crds.module_dir(KEDA_MODULE, KEDA_VERSION) / KEDA_KUSTOMIZATION)
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            upstream = container["image"].rpartition(":")[0]
            container["image"] = images[KEDA_IMAGES[upstream]]
            container["imagePullPolicy"] = "IfNotPresent"
            container["resources"]["requests"] = {"cpu": "20m", "memory": "64Mi"}  # one two-core node
    return docs


def install_keda(lay: NodeLayout, api: KubeClient, images: dict[str, str], timeout_s: float = 300) -> None:
    docs = keda_objects(images)
    api.install_crds([d for d in docs if d["kind"] == "CustomResourceDefinition"])
    first = {"Namespace": 0, "ServiceAccount": 1}  # what the others name must exist before them
    for doc in sorted(
        (d for d in docs if d["kind"] != "CustomResourceDefinition"), key=lambda d: first.get(d["kind"], 2)
    ):
        api.apply(doc, KEDA_NAMESPACE)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            service = api.request("GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io")
            if any(
                c["type"] == "Available" and c["status"] == "True"
                for c in service.get("status", {}).get("conditions", [])
            ):
                return
            last = service.get("status", {}).get("conditions")
        except KubeApiError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise UnhealthyError(f"KEDA's metrics API was not available in {timeout_s:.0f} s: {last}")
        time.sleep(2)


def ensure_nuclio_project(api: KubeClient, release: str, namespace: str, name: str = "triptych") -> None:
    """The NuclioProject the chart's functions name, made before the chart: created in
    the same apply, a function the controller sees first goes to state `error` for
    good ("project not found"). Labelled as the release's, so Helm adopts it."""
    api.apply(
        {
            "apiVersion": "nuclio.io/v1beta1",
            "kind": "NuclioProject",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace},
            },
            "spec": {"description": "Triptych's functions (the MLRun project of project.yaml)"},
        },
        namespace,
    )
