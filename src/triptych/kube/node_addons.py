"""What a node needs beyond its processes before a chart can run on it: the pod
sandbox image, cluster DNS (CoreDNS) and a default StorageClass.

- **pause**: built from infra/kube/pause.c with `gcc -static`; every pod's sandbox.
- **CoreDNS**: built from its Go module, served at 10.96.0.10 (the kubelet's
  clusterDNS). It answers for cluster.local only: nothing beyond the node can be
  reached, so it forwards nowhere.
- **Storage**: PersistentVolumes made by `kube up`, not a provisioner: a pool of
  hostPath folders under <data>/kube/volumes in the StorageClass `triptych-local`
  (the default; `kubernetes.io/no-provisioner`). Why not kube-controller-manager's
  own hostPath provisioner: it makes each folder root-owned with mode 0750, and the
  chart's pods run as non-root users that could then not write their data (hostPath
  volumes ignore fsGroup). The pool's folders are world-writable instead, which is
  acceptable on a one-person development node and nowhere else. Every `kube up` and
  `kube deploy` tops the pool up and wipes what a deleted claim released; like
  local-path, it is for one node only.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ..config import REPO_ROOT, Settings
from ..errors import InstallError
from . import go_tools, image_catalog, oci
from .client import KubeClient
from .node_config import DNS_SERVICE_IP, PAUSE_IMAGE, NodeLayout

PAUSE_SOURCE = REPO_ROOT / "infra" / "kube" / "pause.c"
COREDNS_IMAGE = f"localhost/triptych/coredns:{go_tools.COREDNS_VERSION.lstrip('v')}"
STORAGE_CLASS = "triptych-local"
SYSTEM = "kube-system"


def client(lay: NodeLayout) -> KubeClient:
    return KubeClient(
        lay.api_url, verify=str(lay.pki / "ca.crt"), cert=(str(lay.pki / "admin.crt"), str(lay.pki / "admin.key"))
    )


def ctr(lay: NodeLayout, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """containerd's own client, in the namespace the CRI (and so the kubelet) uses."""
    return subprocess.run(
        ["ctr", "--address", str(lay.containerd_socket), "--namespace", "k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def imported_images(lay: NodeLayout) -> set[str]:
    return set(ctr(lay, "images", "list", "--quiet", timeout=60).stdout.split())


def import_archive(lay: NodeLayout, archive: Path, name: str) -> None:
    """`ctr images import` of an oci-archive (unpacked for the CRI's snapshotter)."""
    proc = ctr(lay, "images", "import", str(archive))
    if proc.returncode != 0 or name not in imported_images(lay):
        raise InstallError(f"importing {archive.name} into the node failed: {proc.stderr.strip()[-2000:]}")


def _pause_binary(settings: Settings) -> Path:
    binary = settings.cache_dir / "kube-tools" / "pause" / "pause"
    if binary.exists() and binary.stat().st_mtime >= PAUSE_SOURCE.stat().st_mtime:
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["gcc", "-Os", "-static", "-s", "-o", str(binary), str(PAUSE_SOURCE)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise InstallError(f"building the pause binary failed:\n{proc.stderr[-2000:]}")
    return binary


def scratch_archive(settings: Settings, image: oci.ScratchImage) -> Path:
    """The image's oci-archive under the cache, written once per binary."""
    safe = image.name.replace("/", "_").replace(":", "_")
    archive = settings.cache_dir / "kube-images" / f"{safe}.tar"
    newest = max(p.stat().st_mtime for p in image.files.values())
    if not archive.exists() or archive.stat().st_mtime < newest:
        oci.write_archive(image, archive)
    return archive


def ensure_scratch_image(settings: Settings, lay: NodeLayout, image: oci.ScratchImage, role: str) -> None:
    if image.name in imported_images(lay):
        return
    started = time.monotonic()
    import_archive(lay, scratch_archive(settings, image), image.name)
    image_catalog.record(
        settings,
        image.name,
        role=role,
        size_bytes=oci.unpacked_size(image),
        import_s=round(time.monotonic() - started, 2),
    )


def import_pause_image(settings: Settings, lay: NodeLayout) -> None:
    ensure_scratch_image(
        settings,
        lay,
        oci.ScratchImage(PAUSE_IMAGE, {"/pause": _pause_binary(settings)}, entrypoint=["/pause"]),
        role="pause",
    )


COREFILE = """.:1053 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loop
    reload
}
"""


def coredns_objects() -> list[dict]:
    labels = {"k8s-app": "kube-dns"}
    meta = {"name": "coredns", "namespace": SYSTEM}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": SYSTEM}],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"Corefile": COREFILE}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**meta, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "priorityClassName": "system-cluster-critical",
                        "containers": [
                            {
                                "name": "coredns",
                                "image": COREDNS_IMAGE,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"containerPort": 1053, "protocol": "UDP", "name": "dns"},
                                    {"containerPort": 1053, "protocol": "TCP", "name": "dns-tcp"},
                                ],
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
                                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "40Mi"},
                                    "limits": {"memory": "128Mi"},
                                },
                                "securityContext": {
                                    "runAsNonRoot": True,
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": SYSTEM, "labels": labels},
            "spec": {
                "selector": labels,
                "clusterIP": DNS_SERVICE_IP,
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": 1053, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "targetPort": 1053, "protocol": "TCP"},
                ],
            },
        },
    ]


def storage_class() -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner",
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate",
    }


POOL_LABEL = "triptych.io/volume-pool"
POOL_FREE = 6  # Available volumes kept ready: the chart claims four (Kafka, MinIO, PostgreSQL, Prometheus)
VOLUME_CAPACITY = "100Gi"  # nominal: a hostPath volume is bounded only by the disk


def _volume(lay: NodeLayout, name: str) -> dict:
    folder = lay.volumes / name
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o1777)  # any pod's user may write, as in /tmp (see the module's note)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {POOL_LABEL: "true"}},
        "spec": {
            "capacity": {"storage": VOLUME_CAPACITY},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(folder), "type": "Directory"},
        },
    }


def ensure_volume_pool(lay: NodeLayout, api: KubeClient | None = None) -> int:
    """Wipe the volumes a deleted claim released, then keep POOL_FREE Available; the number made."""
    api = api or client(lay)
    pool = api.request("GET", "/api/v1/persistentvolumes", params={"labelSelector": POOL_LABEL})["items"]
    available = 0
    for pv in pool:
        phase = pv.get("status", {}).get("phase")
        if phase in ("Released", "Failed"):
            api.request("DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
            shutil.rmtree(lay.volumes / pv["metadata"]["name"], ignore_errors=True)
        elif phase in ("Available", "Pending", None):
            available += 1
    made = 0
    while available + made < POOL_FREE:
        api.create(_volume(lay, f"triptych-pv-{secrets.token_hex(4)}"))
        made += 1
    return made


def apply(settings: Settings, lay: NodeLayout, report: Callable[[str], None]) -> None:
    """CoreDNS (its image built and imported once), the default StorageClass and its volumes."""
    coredns = go_tools.tool_path(settings, go_tools.COREDNS)
    if not coredns.exists():
        report(f"building CoreDNS {go_tools.COREDNS_VERSION} from the Go module proxy (once; cached after)")
    ensure_scratch_image(
        settings,
        lay,
        oci.ScratchImage(
            COREDNS_IMAGE, {"/coredns": go_tools.install(settings, go_tools.COREDNS)}, entrypoint=["/coredns"]
        ),
        role="coredns",
    )
    api = client(lay)
    for obj in [storage_class(), *coredns_objects()]:
        api.apply(obj, SYSTEM)
    ensure_volume_pool(lay, api)
