"""Single-layer OCI images of static binaries, written without a builder.

The node's own small images (pause, CoreDNS, the operators built from Go modules)
are one static binary each, `FROM scratch`. An OCI image layout of one layer is a
few JSON documents and a tar, so they are written here directly: no build
container, no daemon, and byte-for-byte the same archive for the same binary
(timestamps zeroed), which is what lets `kube deploy` skip an unchanged import.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ScratchImage:
    name: str  # the full reference containerd stores, e.g. localhost/triptych/pause:3.10
    files: dict[str, Path]  # path in the image -> file on this machine
    entrypoint: list[str]
    cmd: list[str] = field(default_factory=list)
    user: str = "65532:65532"  # nobody's: none of them needs root
    exposed_ports: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def _tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _layer(image: ScratchImage) -> bytes:
    """The layer tar: parent folders, then each file with mode 0755, owned by root."""
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
    folders: set[str] = {"tmp"}
    for inner in image.files:
        parts = inner.strip("/").split("/")[:-1]
        folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    for folder in sorted(folders):
        info = tarfile.TarInfo(folder)
        info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
        entries.append((info, None))
    for inner, source in sorted(image.files.items()):
        data = source.read_bytes()
        info = tarfile.TarInfo(inner.strip("/"))
        info.size, info.mode = len(data), 0o755
        entries.append((info, data))
    return _tar_bytes(entries)


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def write_archive(image: ScratchImage, dest: Path) -> Path:
    """An `oci-archive` (a tar of an OCI image layout) for `ctr images import`."""
    layer = _layer(image)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    layer_gz = gzip.compress(layer, mtime=0)
    layer_digest, _ = _blob(layer_gz)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": image.entrypoint,
                "Cmd": image.cmd or None,
                "User": image.user,
                "Env": ["PATH=/usr/local/bin:/bin", *(f"{k}={v}" for k, v in sorted(image.env.items()))],
                "ExposedPorts": {p: {} for p in image.exposed_ports} or None,
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_digest, _ = _blob(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer_gz),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    manifest_digest, _ = _blob(manifest)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": image.name,
                        "org.opencontainers.image.ref.name": image.name.rpartition(":")[2],
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for name, data in [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index)] + [
        (f"blobs/sha256/{digest.split(':')[1]}", data)
        for digest, data in ((config_digest, config), (layer_digest, layer_gz), (manifest_digest, manifest))
    ]:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        entries.append((info, data))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(".part")
    part.write_bytes(_tar_bytes(entries))
    part.rename(dest)
    return dest


def unpacked_size(image: ScratchImage) -> int:
    return sum(p.stat().st_size for p in image.files.values())
