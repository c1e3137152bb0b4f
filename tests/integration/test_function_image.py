"""The serving image, built here without a daemon (buildah on a Debian base
that debootstrap makes from Debian's packages), proven by running a function from
its root filesystem the way Nuclio on Kubernetes runs it: the image's own Nuclio
processor and Python wrapper, the function's config and environment exactly as the
Helm chart renders its NuclioFunction (secrets and $(VAR)s resolved as a kubelet
does), as the image's user, against the test stack. The first build takes minutes
(the dependency layer); later ones reuse that layer."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from triptych.config import Settings
from triptych.kube import chart, image
from triptych.storage import minio_client

from ..images import image_bytes
from .pipeline_helpers import free_port, unique
from .runtime_helpers import wait_for

RELEASE = "triptych"


def kubelet_env(env: list[dict], secrets: dict[tuple[str, str], str], image_env: list[str]) -> dict[str, str]:
    """A container's environment as a kubelet makes it: the image's ENV, then the
    pod's list in order, secretKeyRefs looked up, $(NAME) expanded from earlier names."""
    resolved = dict(item.split("=", 1) for item in image_env)
    for var in env:
        if "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            resolved[var["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            resolved[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: resolved.get(m.group(1), m.group(0)), var["value"])
    return resolved


def chart_function(settings: Settings, name: str) -> dict:
    """The NuclioFunction the chart renders for `name`, its servers the test stack's."""
    pg = settings.postgres_url.split("@")[1].split("/")[0]
    release = chart.Release(
        name=RELEASE,
        sets=[
            f"kafka.bootstrap={settings.kafka_url}",
            f"s3.endpoint={settings.s3_url}",
            f"postgres.host={pg.split(':')[0]}",
            f"postgres.port={pg.split(':')[1]}",
            f"postgres.database={settings.postgres_db}",
            f"mlflow.trackingUri={settings.mlflow_url}",
            f"prometheus.url={settings.prometheus_url}",
        ],
    )
    return next(
        d
        for d in chart.documents(chart.template(settings, release))
        if d["kind"] == "NuclioFunction" and d["metadata"]["name"] == name
    )


def _wrapper_uids(root: Path) -> list[int]:
    """The uid of each Nuclio Python wrapper process whose root is `root`."""
    uids = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and os.readlink(proc / "root") == str(root)
                and b"_nuclio_wrapper.py" in (proc / "cmdline").read_bytes()
            ):
                uids.append(int((proc / "status").read_text().split("Uid:")[1].split()[0]))
        except OSError:  # gone meanwhile
            continue
    return uids


@pytest.fixture(scope="module")
def built(stack):
    # The serving image (no torch): what the chart runs upload from, and the one the
    # Kubernetes node's test deploys, so a CI run builds it once for both.
    return image.build_image(stack, image.role_tag("serving"), debootstrap=True, role="serving")


def test_upload_runs_from_the_image_as_the_chart_deploys_it(stack, built, admin_key):
    function = chart_function(stack, "upload")
    port, health_port = free_port(), free_port()
    function["spec"]["triggers"]["http"]["url"] = f"127.0.0.1:{port}"  # :8080 in a pod of its own
    # The upload component's own PostgreSQL login, as its Secret holds it on a cluster (the
    # test stack's, which `triptych up` made); S3 given by endpoint is the user's own: one key.
    upload = stack.model_copy(update={"component": "upload"})
    secrets = {
        (f"{RELEASE}-s3", "access-key"): stack.s3_access_key,
        (f"{RELEASE}-s3", "secret-key"): stack.s3_secret_key,
        (f"{RELEASE}-pg-upload", "username"): "triptych_upload",
        (f"{RELEASE}-pg-upload", "password"): upload.postgres_url.split(":")[2].split("@")[0],
        (f"{RELEASE}-api", "jwt-secret"): "image-test-secret",
    }
    env = kubelet_env(function["spec"]["env"], secrets, image.image_env(stack, built))
    assert env["TRIPTYCH_DATABASE_URL"] == upload.postgres_url

    with image.mounted_rootfs(stack, built) as root:
        # Where Nuclio's controller mounts them (a ConfigMap each), and the processor reads them by default.
        (root / "etc/nuclio/config/processor").mkdir(parents=True)
        (root / "etc/nuclio/config/processor/processor.yaml").write_text(
            yaml.safe_dump({"metadata": function["metadata"], "spec": function["spec"]})
        )
        # The function's volumes, as the kubelet mounts them: its metrics folder (an emptyDir).
        for volume in function["spec"].get("volumes", []):
            assert "emptyDir" in volume["volume"], volume
            folder = root / volume["volumeMount"]["mountPath"].lstrip("/")
            assert not any(p.is_symlink() for p in folder.parents if root in p.parents), "a symlink would leave root"
            folder.mkdir(parents=True, exist_ok=True)  # the rootfs's upper layer outlives a run
            os.chown(folder, 10001, 10001)
        (root / "etc/nuclio/config/platform").mkdir(parents=True)
        (root / "etc/nuclio/config/platform/platform.yaml").write_text(
            yaml.safe_dump(
                {
                    "kind": "kube",
                    "webAdmin": {"enabled": False},
                    "healthCheck": {"enabled": True, "listenAddress": f"127.0.0.1:{health_port}"},
                    "logger": {
                        "sinks": {"stdout": {"kind": "stdout"}},
                        "system": [{"level": "info", "sink": "stdout"}],
                        "functions": [{"level": "info", "sink": "stdout"}],
                    },
                }
            )
        )
        log = open(stack.data_dir / "image-upload.log", "w")
        # A mount namespace of its own: /proc and /dev for the chroot vanish with it.
        # The host's tools by full path: the environment is the container's.
        unshare, mount, chroot = (shutil.which(tool) for tool in ("unshare", "mount", "chroot"))
        processor = subprocess.Popen(
            [
                unshare,
                "--mount",
                "--fork",
                "--",
                "/bin/sh",
                "-c",
                f"{mount} -t proc proc {root}/proc && {mount} --rbind /dev {root}/dev && "
                f"exec {chroot} --userspec=10001:10001 {root} processor",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def ready():
                assert processor.poll() is None, (stack.data_dir / "image-upload.log").read_text()[-3000:]
                try:
                    return urllib.request.urlopen(f"http://127.0.0.1:{health_port}/ready", timeout=2).status == 200
                except OSError:
                    return False

            wait_for(ready, 180, interval=0.5, message="the processor from the image to be ready")
            data = image_bytes("PNG")
            reply = httpx.post(
                f"http://127.0.0.1:{port}/upload",
                headers={"X-API-Key": admin_key},
                files={"file": (f"{unique('from-image')}.png", data)},
                timeout=60,
            )
            assert reply.status_code in (200, 201), reply.text
            stored = minio_client(stack).get_object(stack.images_bucket, reply.json()["object_key"])
            assert stored.read() == data
            assert _wrapper_uids(root) == [10001], "the image's Python wrapper ran the handler, inside it, as its user"
        finally:
            os.killpg(processor.pid, signal.SIGTERM)  # the processor and its wrapper, in the session
            try:
                processor.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(processor.pid, signal.SIGKILL)
                processor.wait()
            log.close()
