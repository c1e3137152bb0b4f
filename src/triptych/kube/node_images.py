"""Every image the chart runs on the node, built here and imported into its containerd.

No registry is reachable, so nothing is pulled: each image is built on this machine
and imported (`imagePullPolicy: IfNotPresent`, the reference already present).

| role                | how it is built                                                  |
|---------------------|------------------------------------------------------------------|
| serving             | infra/image/Containerfile, ROLE=serving (no torch)               |
| training            | infra/image/Containerfile, ROLE=training (torch, MLRun)          |
| mlflow              | infra/image/mlflow.Containerfile                                 |
| kafka               | infra/image/servers/kafka.Containerfile (Debian's JRE + jars)    |
| postgres            | infra/image/servers/postgres.Containerfile (Debian's PostgreSQL) |
| minio               | the MinIO binary the local stack builds, FROM scratch            |
| prometheus          | Prometheus from its Go module (Kubernetes discovery), FROM scratch |
| nuclio-controller   | Nuclio's controller from its Go module, FROM scratch             |
| keda-operator, keda-adapter | KEDA's operator and metrics API server, FROM scratch     |

Builders' layers are cached, the archives are kept under the cache, and an image
the node already holds is not imported again, so a second `kube deploy` of the
same tag costs seconds. Sizes and times go to `image_catalog`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..config import REPO_ROOT, Settings
from ..errors import InstallError
from ..runtime.nuclio_processor import install_controller
from ..stack.prebuild import build_minio, minio_binary
from ..stack.services.kafka import Kafka
from . import go_tools, image, image_catalog, node_addons, oci
from .node_config import NodeLayout

SERVERS = REPO_ROOT / "infra" / "image" / "servers"
REPOSITORY = "localhost/triptych"


@dataclass(frozen=True)
class NodeImage:
    role: str
    tag: str

    @property
    def name(self) -> str:
        return f"{REPOSITORY}/{self.role}:{self.tag}"  # image.role_tag's form, for every role


def _archive_dir(settings: Settings) -> Path:
    return settings.cache_dir / "kube-images"


def _stage_server(settings: Settings, role: str, dest: Path) -> Path:
    """The build context of a server image: its Containerfile and files, and Kafka's jars."""
    dest.mkdir(parents=True)
    shutil.copy2(SERVERS / f"{role}.Containerfile", dest / "Containerfile")
    for extra in SERVERS.glob(f"{role}-*"):
        shutil.copy2(extra, dest / extra.name)
    if role == "kafka":
        kafka = Kafka(settings)
        kafka.install()
        shutil.copytree(kafka.libs_dir, dest / "libs", ignore=shutil.ignore_patterns(".complete"))
        shutil.copy2(SERVERS / "log4j.properties", dest / "log4j.properties")
    return dest


def _scratch_binary(settings: Settings, role: str) -> tuple[str, Path]:
    """Where a FROM-scratch image's one binary goes, and the binary (built when missing)."""
    if role == "minio":
        build_minio(settings.cache_dir, settings.minio_version)
        return "/usr/local/bin/minio", minio_binary(settings.cache_dir, settings.minio_version)
    if role == "prometheus":
        return "/usr/local/bin/prometheus", go_tools.prometheus(settings)
    if role in ("keda-operator", "keda-adapter"):
        command = role.removeprefix("keda-")
        # where KEDA's manifests run them
        return ("/keda" if command == "operator" else "/keda-adapter"), go_tools.keda(settings, command)
    if role == "nuclio-controller":
        return "/usr/local/bin/controller", install_controller(settings)
    raise ValueError(role)


def _scratch(settings: Settings, img: NodeImage) -> oci.ScratchImage:
    path, binary = _scratch_binary(settings, img.role)
    user = {"minio": "10001:10001", "prometheus": "65534:65534"}.get(img.role)
    if user is None:
        return oci.ScratchImage(img.name, {path: binary}, entrypoint=[path])
    return oci.ScratchImage(img.name, {path: binary}, entrypoint=[path], user=user, env={"HOME": "/tmp"})


SCRATCH_ROLES = ("minio", "prometheus", "nuclio-controller", "keda-operator", "keda-adapter")
BUILT_ROLES = ("serving", "training", "mlflow", "kafka", "postgres")


def _build_with_builder(settings: Settings, img: NodeImage) -> str:
    """Build with buildah; the builder's own tag, e.g. localhost/triptych/kafka:TAG."""
    if img.role in image.ROLES:
        return image.build_image(settings, img.name, debootstrap=True, role=img.role)
    with tempfile.TemporaryDirectory(prefix=f"triptych-{img.role}-") as tmp:
        context = _stage_server(settings, img.role, Path(tmp) / "context")
        return image.build_context(settings, context, img.name, debootstrap=True)


def _export(settings: Settings, img: NodeImage) -> tuple[Path, int]:
    """The built image as an oci-archive, and its unpacked size."""
    archive = _archive_dir(settings) / f"{img.role}-{img.tag}.tar"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.unlink(missing_ok=True)
    image._run(
        [*image.builder(settings), "push", "--format", "oci", img.name, f"oci-archive:{archive}:{img.name}"],
        f"exporting {img.name}",
    )
    return archive, _layers_size(archive)


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    member = tar.extractfile(name)
    if member is None:
        raise InstallError(f"{tar.name!s} has no file {name}: not an OCI archive")
    return member


def _layers_size(archive: Path) -> int:
    """The image's unpacked size: its layers' tars, decompressed (a stream, never in memory whole)."""
    total = 0
    with tarfile.open(archive) as tar:
        index = json.load(_member(tar, "index.json"))
        manifest = json.load(_member(tar, f"blobs/sha256/{index['manifests'][0]['digest'].split(':')[1]}"))
        for layer in manifest["layers"]:
            blob = _member(tar, f"blobs/sha256/{layer['digest'].split(':')[1]}")
            if not layer["mediaType"].endswith("gzip"):
                total += layer["size"]
                continue
            inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            while chunk := blob.read(1 << 20):
                total += len(inflate.decompress(chunk))
    return total


def ensure(settings: Settings, lay: NodeLayout, img: NodeImage, report: Callable[[str], None]) -> None:
    """Build `img` unless the builder or cache has it, then import it unless the node has it."""
    if img.name in node_addons.imported_images(lay):
        return
    started = time.monotonic()
    if img.role in SCRATCH_ROLES:
        report(f"writing the {img.role} image")
        scratch = _scratch(settings, img)
        archive = node_addons.scratch_archive(settings, scratch)
        size = oci.unpacked_size(scratch)
    else:
        if not image.image_exists(settings, img.name):
            report(f"building the {img.role} image (minutes the first time; layers are cached)")
        _build_with_builder(settings, img)
        archive, size = _export(settings, img)
    built = time.monotonic()
    report(f"importing {img.name} into the node ({size / 1e9:.2f} GB unpacked)")
    node_addons.import_archive(lay, archive, img.name)
    image_catalog.record(
        settings,
        img.name,
        role=img.role,
        size_bytes=size,
        build_s=round(built - started, 1),
        import_s=round(time.monotonic() - built, 1),
    )
    if img.role not in SCRATCH_ROLES:
        archive.unlink(missing_ok=True)  # the builder keeps the layers; the archive was only the way in


# The third-party servers. Their images are tagged by a digest of what goes into them,
# not by the release's tag: upgrading Triptych to a new tag then leaves MinIO, Kafka and
# PostgreSQL running (a single-replica MinIO that restarts refuses every bucket drop
# meanwhile), and a server whose inputs changed still gets a new image.
SERVER_ROLES = ("kafka", "postgres", *SCRATCH_ROLES)


def server_tag(settings: Settings, role: str) -> str:
    """`srv-` and 12 hex digits of the digest of the server image's inputs."""
    digest = hashlib.sha256(role.encode())
    if role in SCRATCH_ROLES:
        inputs = [_scratch_binary(settings, role)[1]]
    else:
        inputs = sorted([SERVERS / f"{role}.Containerfile", *SERVERS.glob(f"{role}-*")])
        if role == "kafka":
            inputs.append(SERVERS / "log4j.properties")
            digest.update(settings.kafka_version.encode())
    for path in inputs:
        with open(path, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return f"srv-{digest.hexdigest()[:12]}"


def node_image(settings: Settings, role: str, tag: str) -> NodeImage:
    """A role's image: Triptych's own at the release's `tag`, a server at its `server_tag`."""
    return NodeImage(role, server_tag(settings, role) if role in SERVER_ROLES else tag)


def prebuild(settings: Settings, tag: str, roles: tuple[str, ...], report: Callable[[str], None]) -> None:
    """Build the builder-made images of `roles` into the builder's layer cache, ahead of
    a `kube deploy --tag TAG` (which then only finds its layers, exports and imports):
    the debootstrap base and the Python packages are most of a fresh machine's wait."""
    for role in roles:
        if role in BUILT_ROLES:
            started = time.monotonic()
            _build_with_builder(settings, node_image(settings, role, tag))
            report(f"image {role}: {time.monotonic() - started:.0f} s")


def ensure_all(
    settings: Settings, lay: NodeLayout, tag: str, roles: tuple[str, ...], report: Callable[[str], None]
) -> dict[str, str]:
    """role -> image name, every one present on the node: Triptych's own at `tag`, the
    servers at their `server_tag`."""
    unknown = set(roles) - set(SCRATCH_ROLES + BUILT_ROLES)
    if unknown:
        raise InstallError(f"no such image role: {sorted(unknown)}")
    names = {}
    for role in roles:
        img = node_image(settings, role, tag)
        ensure(settings, lay, img, report)
        names[role] = img.name
    return names
