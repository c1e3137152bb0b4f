"""Labelled data sets kept in MinIO: one layout for every source, and the one
path training reads from.

    s3://datasets/<data set id>/<split>/<label>/<seq>-<file name>   image bytes
    s3://datasets/<data set id>/manifest.json                        classes, counts, source, skipped

The generated set, CIFAR-10 and an image folder are all published by `publish`
(from the same `Item` iterators the stream producers use), and training loads
any of them with `load_split`. The manifest is written last, so a publication
that died half-way is never loaded as complete.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import PurePosixPath

import numpy as np
from minio.error import S3Error

from ..config import Settings, get_settings
from ..imaging import sniff_format
from ..storage import minio_client, read_object
from .sources import Item

SPLITS = ("train", "test")
MANIFEST = "manifest.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_SKIPPED_KEPT = 50


class DatasetError(ValueError):
    pass


@dataclass
class Manifest:
    dataset_id: str
    classes: list[str]
    counts: dict[str, int]  # per split
    class_counts: dict[str, dict[str, int]]  # split -> label -> images
    source: str
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    published_at: float = 0.0

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True).encode()


def safe_part(text: str) -> str:
    """A label or file name as one path segment (no '/', no '..')."""
    return _SAFE.sub("_", text).strip("._") or "_"


def object_key(dataset_id: str, split: str, label: str, seq: int, filename: str) -> str:
    return f"{dataset_id}/{split}/{safe_part(label)}/{seq:07d}-{safe_part(filename)}"


def read_manifest(dataset_id: str, settings: Settings | None = None) -> Manifest | None:
    settings = settings or get_settings()
    try:
        raw = read_object(minio_client(settings), settings.datasets_bucket, f"{dataset_id}/{MANIFEST}")
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            return None
        raise
    return Manifest(**json.loads(raw))


def list_datasets(settings: Settings | None = None) -> list[Manifest]:
    settings = settings or get_settings()
    client = minio_client(settings)
    ids = [o.object_name.rstrip("/") for o in client.list_objects(settings.datasets_bucket) if o.is_dir]
    return [m for m in (read_manifest(i, settings) for i in ids) if m is not None]


def publish(
    dataset_id: str,
    splits: Mapping[str, Iterable[Item]],
    source: str,
    classes: list[str] | None = None,
    settings: Settings | None = None,
    workers: int = 8,
) -> Manifest:
    """Upload every labelled image of every split; skip (and record why) items with
    no label or bytes that are not an image, so one bad file loses nothing else."""
    settings = settings or get_settings()
    if safe_part(dataset_id) != dataset_id:
        raise DatasetError(f"data set id {dataset_id!r} must be letters, digits, '.', '_' or '-'")
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise DatasetError(f"unknown split(s) {sorted(unknown)}; splits are {', '.join(SPLITS)}")
    client = minio_client(settings)
    # Unlisted first: a publication that dies half-way must not load as the old one.
    client.remove_object(settings.datasets_bucket, f"{dataset_id}/{MANIFEST}")
    class_counts: dict[str, Counter] = {split: Counter() for split in splits}
    skipped: list[str] = []
    written: set[str] = set()

    def put(key: str, data: bytes, fmt: str) -> None:
        client.put_object(settings.datasets_bucket, key, io.BytesIO(data), len(data), content_type=f"image/{fmt}")

    with ThreadPoolExecutor(workers) as pool:
        for split, items in splits.items():
            futures = []
            for seq, item in enumerate(items):
                fmt = sniff_format(item.data)
                if not item.label:
                    skipped.append(f"{split}/{item.filename}: no label")
                elif fmt is None:
                    skipped.append(f"{split}/{item.filename}: not a JPEG, PNG, WebP or BMP image")
                else:
                    class_counts[split][item.label] += 1
                    key = object_key(dataset_id, split, item.label, seq, item.filename)
                    written.add(key)
                    futures.append(pool.submit(put, key, item.data, fmt))
            for future in futures:
                future.result()  # an upload failure is a failed publication: the manifest is not written
    seen = sorted({label for counts in class_counts.values() for label in counts})
    if classes is None:
        classes = seen
    elif set(seen) - set(classes):
        raise DatasetError(f"labels {sorted(set(seen) - set(classes))} are not among the classes {classes}")
    if not seen:
        raise DatasetError(
            f"nothing to publish for {dataset_id}: no labelled image among the items "
            f"({len(skipped)} skipped, e.g. {skipped[:3]})"
        )
    manifest = Manifest(
        dataset_id=dataset_id,
        classes=list(classes),
        source=source,
        counts={split: sum(c.values()) for split, c in class_counts.items()},
        class_counts={split: dict(sorted(c.items())) for split, c in class_counts.items()},
        skipped=len(skipped),
        skipped_examples=skipped[:_MAX_SKIPPED_KEPT],
        published_at=time.time(),
    )
    _remove_stale(client, settings.datasets_bucket, dataset_id, written)
    put_manifest = manifest.to_json()
    client.put_object(
        settings.datasets_bucket,
        f"{dataset_id}/{MANIFEST}",
        io.BytesIO(put_manifest),
        len(put_manifest),
        content_type="application/json",
    )
    return manifest


def _remove_stale(client, bucket_name: str, dataset_id: str, written: set[str]) -> None:
    """A republished set is exactly what was published last: drop the objects it no longer has."""
    from minio.deleteobjects import DeleteObject

    stale = [
        DeleteObject(o.object_name)
        for o in client.list_objects(bucket_name, prefix=f"{dataset_id}/", recursive=True)
        if o.object_name not in written
    ]
    for error in client.remove_objects(bucket_name, stale):
        raise DatasetError(f"could not remove a stale object of {dataset_id}: {error}")


def publish_synthetic(train_count: int, test_count: int, size: int = 64, settings: Settings | None = None) -> Manifest:
    """The generated set, unless it is already there with at least these counts."""
    from .sources import synthetic_items
    from .synthetic import CLASSES, DATASET_ID

    existing = read_manifest(DATASET_ID, settings)
    if existing and existing.counts.get("train", 0) >= train_count and existing.counts.get("test", 0) >= test_count:
        return existing

    return publish(
        DATASET_ID,
        {
            "train": islice(synthetic_items("train", size=size), train_count),
            "test": islice(synthetic_items("test", size=size), test_count),
        },
        source=f"generated ({size} px)",
        classes=list(CLASSES),
        settings=settings,
    )


def folder_splits(items: Iterable[Item], test_share: int = 10) -> dict[str, list[Item]]:
    """An image folder's items by split: its `train/` and `test/` sub-folders when it
    has them, otherwise a stable 1-in-`test_share` hold-out chosen by file path."""
    import zlib

    items = list(items)
    paths = [PurePosixPath(item.client.get("path", item.filename)) for item in items]
    if all(p.parts[0] in SPLITS and len(p.parts) >= 3 for p in paths):
        return {split: [i for i, p in zip(items, paths) if p.parts[0] == split] for split in SPLITS}
    test = [zlib.crc32(str(p).encode()) % test_share == 0 for p in paths]
    return {"train": [i for i, t in zip(items, test) if not t], "test": [i for i, t in zip(items, test) if t]}


@dataclass
class Split:
    images: np.ndarray  # N x size x size x 3 uint8 (or N decoded images of any size, loaded with size=None)
    labels: np.ndarray  # N int64 indices into classes
    classes: list[str]
    dataset_id: str
    skipped: list[str]


def load_split(
    dataset_id: str,
    split: str,
    size: int | None,
    count: int | None = None,
    settings: Settings | None = None,
    workers: int = 8,
) -> Split:
    """The first `count` images of a split (in publication order), decoded and
    resized to `size` x `size` (or as decoded, with size None: each model then
    resizes them its own way); an object that does not decode is skipped and named."""
    from ..imaging import DecodeError, decode, resize_to

    settings = settings or get_settings()
    manifest = read_manifest(dataset_id, settings)
    if manifest is None:
        raise DatasetError(
            f"data set {dataset_id!r} is not in s3://{settings.datasets_bucket}; publish it first "
            "(`triptych datasets publish synthetic|cifar10|dir`)"
        )
    client = minio_client(settings)
    objects = [
        o.object_name
        for o in client.list_objects(settings.datasets_bucket, prefix=f"{dataset_id}/{split}/", recursive=True)
    ]
    objects.sort(key=lambda key: (PurePosixPath(key).name, key))  # seq first: publication order
    if count is not None:
        objects = objects[:count]
    if not objects:
        raise DatasetError(f"data set {dataset_id!r} has no {split!r} images")
    index = {safe_part(label): i for i, label in enumerate(manifest.classes)}

    def fetch(key: str) -> tuple[np.ndarray | None, int, str | None]:
        label = PurePosixPath(key).parent.name
        try:
            image = decode(read_object(client, settings.datasets_bucket, key))
        except DecodeError as exc:
            return None, -1, f"{key}: {exc}"
        return (resize_to(image, size) if size else image), index[label], None  # "stretch", as trained cards say

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(fetch, objects))
    kept = [(image, label) for image, label, problem in results if problem is None]
    if not kept:
        raise DatasetError(f"no image of {dataset_id}/{split} could be decoded")
    if size:
        images = np.stack([image for image, _ in kept if image is not None])  # decoded: no problem
    else:
        images = np.empty(len(kept), dtype=object)
        for i, (image, _) in enumerate(kept):  # one by one: a list of equal shapes would broadcast
            images[i] = image
    return Split(
        images=images,
        labels=np.array([label for _, label in kept], np.int64),
        classes=list(manifest.classes),
        dataset_id=dataset_id,
        skipped=[problem for _, _, problem in results if problem is not None],
    )


def concatenate(first: Split, second: Split) -> Split:
    """Two splits with the same classes as one (a base set and the images labelled since)."""
    if first.classes != second.classes:
        raise DatasetError(f"{first.dataset_id} and {second.dataset_id} have different classes")
    return Split(
        images=np.concatenate([first.images, second.images]),
        labels=np.concatenate([first.labels, second.labels]),
        classes=first.classes,
        dataset_id=f"{first.dataset_id}+{second.dataset_id}",
        skipped=first.skipped + second.skipped,
    )
