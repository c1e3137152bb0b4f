"""The gather step: which images a retraining learns from and is judged on.

A training set is a base data set in MinIO (the champion's, or one named) plus
the images people and labelled producers have labelled in Postgres (the review
queue's labels count). The labelled images are published as a data set of their
own, `labelled-<run>`, split deterministically by their content hash (1 in
HOLD_OUT_SHARE held out), so the split can be recomputed and is recorded with
the run. Candidate and champion are both judged on the same held-out set: the
base set's test split plus the labelled images held out.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from minio.error import S3Error

from ..config import Settings
from ..datasets.bucket import (
    DatasetError,
    Split,
    concatenate,
    load_split,
    publish,
    publish_synthetic,
    read_manifest,
)
from ..datasets.sources import Item
from ..datasets.synthetic import DATASET_ID
from ..db.connection import Database
from ..imaging import sniff_format
from ..storage import MISSING_OBJECT_CODES, minio_client, read_object

log = logging.getLogger("triptych.lifecycle")

HOLD_OUT_SHARE = 5
SPLIT_RULE = f"labelled images: held out when int(sha256[:8], 16) % {HOLD_OUT_SHARE} == 0; base set: its own splits"


def held_out(sha256: str) -> bool:
    return int(sha256[:8], 16) % HOLD_OUT_SHARE == 0


@dataclass(frozen=True)
class TrainingSet:
    """What the gather step decided; passed to each training step as parameters."""

    base: str
    labelled: str | None = None  # the data set of labelled images this run published (None: there were none)
    train_count: int | None = None  # of the base set's train split (None: all of it)
    test_count: int | None = None
    labelled_train: int = 0
    labelled_test: int = 0
    skipped_labels: int = 0  # labelled images whose label is not one of the base set's classes
    split: str = SPLIT_RULE

    @property
    def dataset_id(self) -> str:
        return f"{self.base}+{self.labelled}" if self.labelled else self.base

    def as_dict(self) -> dict:
        return {**asdict(self), "dataset_id": self.dataset_id}

    @classmethod
    def from_dict(cls, data: dict) -> TrainingSet:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def load(self, part: str, size: int | None, settings: Settings) -> Split:
        """The base split (capped) plus the labelled images of the same split."""
        count = self.train_count if part == "train" else self.test_count
        split = load_split(self.base, part, size, count, settings)
        extra = self.labelled_train if part == "train" else self.labelled_test
        if self.labelled and extra:
            split = concatenate(split, load_split(self.labelled, part, size, None, settings))
        return split


LABELLED = """
SELECT image_id, bucket, object_key, object_version, sha256, filename, ground_truth_label
FROM images
WHERE ground_truth_label IS NOT NULL AND status <> 'quarantined'
ORDER BY uploaded_at DESC
LIMIT %s
"""


def gather(
    run_id: str,
    base: str,
    settings: Settings,
    train_count: int | None = None,
    test_count: int | None = None,
    db: Database | None = None,
) -> TrainingSet:
    """Publish the images labelled in Postgres as `labelled-<run>` and return the set."""
    if base == DATASET_ID:
        if train_count is None or test_count is None:
            raise ValueError("the generated set is made to measure: give train_count and test_count")
        publish_synthetic(train_count, test_count, settings=settings)
    manifest = read_manifest(base, settings)
    if manifest is None:
        raise DatasetError(f"data set {base!r} is not in s3://{settings.datasets_bucket}")
    classes = set(manifest.classes)
    db = db or Database(settings)
    rows = db.transaction(lambda cur: (cur.execute(LABELLED, (settings.retrain_max_labelled,)), cur.fetchall())[1])
    usable = [r for r in rows if r["ground_truth_label"] in classes]
    skipped = len(rows) - len(usable)
    base_set = TrainingSet(base, train_count=train_count, test_count=test_count, skipped_labels=skipped)
    if not usable:
        return base_set
    client = minio_client(settings)

    def item(row) -> Item | None:
        try:
            data = read_object(client, row["bucket"], row["object_key"], row["object_version"] or None)
        except S3Error as exc:  # a vanished object loses one image; MinIO away fails the run, which says why
            if exc.code not in MISSING_OBJECT_CODES:
                raise
            log.warning("labelled image %s cannot be read (%s); left out", row["image_id"], exc)
            return None
        fmt = sniff_format(data) or "bin"
        return Item(f"{row['image_id']}.{fmt}", data, row["ground_truth_label"], {"image_id": str(row["image_id"])})

    with ThreadPoolExecutor(8) as pool:
        items = list(pool.map(item, usable))
    pairs = [(row, it) for row, it in zip(usable, items) if it is not None]
    test = [it for row, it in pairs if held_out(row["sha256"])]
    train = [it for row, it in pairs if not held_out(row["sha256"])]
    labelled = f"labelled-{run_id.replace('-', '')[:12]}"
    publish(
        labelled,
        {"train": train, "test": test},
        source=f"images labelled in Postgres (run {run_id})",
        classes=list(manifest.classes),
        settings=settings,
    )
    return TrainingSet(base, labelled, train_count, test_count, len(train), len(test), skipped)


def base_dataset(settings: Settings) -> str:
    """The data set the champions learned from (the first that is still in MinIO), else the generated one."""
    from ..models import registry
    from ..models.zoo import ARCHITECTURES

    for name in ARCHITECTURES:
        version = registry.version_for_alias(name, registry.CHAMPION, settings)
        if version is None:
            continue
        base = registry.tag_of(name, version, "dataset_base", settings) or registry.tag_of(
            name, version, "dataset_id", settings
        )
        if base and read_manifest(base, settings) is not None:
            return base
    return DATASET_ID
