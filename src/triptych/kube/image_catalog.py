"""The images built for the node, with their role and measured figures.

One JSON file under the cache (`kube-images/catalog.json`) records, for each image
reference: its role (`serving`, `training`, or a server's or operator's name), its
unpacked size, how long it took to build and to import. It has one writer,
`record()`, called by whatever built or imported the image.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from ..config import Settings
from .node_config import NodeLayout


def _path(settings: Settings) -> Path:
    return settings.cache_dir / "kube-images" / "catalog.json"


def read(settings: Settings) -> dict[str, dict]:
    try:
        return json.loads(_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def record(settings: Settings, name: str, **figures) -> None:
    """Merge `figures` (role, size_bytes, build_s, import_s, archive) into the image's entry."""
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        catalog = read(settings)
        catalog.setdefault(name, {}).update(figures)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(catalog, indent=2, sort_keys=True))
        tmp.replace(path)


def imported(settings: Settings, lay: NodeLayout) -> list[dict]:
    """Every image the node's containerd holds, with its role and unpacked size where known."""
    from .node_addons import imported_images

    catalog = read(settings)
    names = sorted(n for n in imported_images(lay) if not n.startswith("sha256:"))
    return [
        {"name": n, "role": catalog.get(n, {}).get("role"), "size_bytes": catalog.get(n, {}).get("size_bytes")}
        for n in names
    ]
