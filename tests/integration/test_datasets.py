"""Labelled data sets in the real MinIO: the generated set, an image folder, bad
files, and training from a published folder as an MLRun job."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from triptych.datasets import bucket, synthetic
from triptych.datasets.sources import Item, dir_items
from triptych.models import registry
from triptych.models.bootstrap import train_as_mlrun_job


def _png(color: tuple[int, int, int], shape: str) -> bytes:
    image = np.full((40, 56, 3), 30, np.uint8)
    if shape == "disc":
        cv2.circle(image, (28, 20), 14, color, -1)
    else:
        cv2.rectangle(image, (14, 6), (42, 34), color, -1)
    return cv2.imencode(".png", image)[1].tobytes()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """folder/<label>/<image>: 30 discs and 30 squares in varied colours, plus a
    file that is not an image, a README, and a PNG whose body is garbage."""
    root = tmp_path_factory.mktemp("shapes-folder")
    rng = np.random.default_rng(7)
    for label in ("disc", "square"):
        (root / label).mkdir()
        for i in range(30):
            (root / label / f"{i:02d}.png").write_bytes(_png(tuple(int(c) for c in rng.integers(90, 256, 3)), label))
    (root / "disc" / "notes.png").write_bytes(b"this is text, not a picture")
    (root / "README.txt").write_text("labels are the folder names")
    (root / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    return root


def test_generated_set_is_published_once_and_loads_pixel_exact(stack):
    manifest = bucket.publish_synthetic(300, 100, settings=stack)
    assert manifest.counts["train"] >= 300 and manifest.counts["test"] >= 100
    assert manifest.classes == list(synthetic.CLASSES)
    again = bucket.publish_synthetic(300, 100, settings=stack)
    assert again.published_at == manifest.published_at, "already there: nothing republished"

    loaded = bucket.load_split(synthetic.DATASET_ID, "train", 64, count=300, settings=stack)
    images, labels = synthetic.arrays(300, "train", 64)
    assert np.array_equal(loaded.images, images) and np.array_equal(loaded.labels, labels)
    assert loaded.skipped == []
    small = bucket.load_split(synthetic.DATASET_ID, "test", 32, count=20, settings=stack)
    assert small.images.shape == (20, 32, 32, 3)


def test_image_folder_is_published_with_bad_files_skipped_and_named(stack, folder):
    manifest = bucket.publish(
        "folder-shapes",
        bucket.folder_splits(dir_items(folder, only_images=False)),
        source="test folder",
        settings=stack,
    )
    assert manifest.classes == ["disc", "square"]
    # 60 good images and the garbage PNG (it has a PNG signature, so only decoding finds it out).
    assert manifest.counts["train"] + manifest.counts["test"] == 61
    assert manifest.counts["test"] >= 1, "a stable share is held out"
    assert manifest.skipped == 2
    problems = " | ".join(manifest.skipped_examples)
    assert "notes.png: not a JPEG, PNG, WebP or BMP image" in problems and "README.txt: no label" in problems

    splits = [bucket.load_split("folder-shapes", split, 32, settings=stack) for split in bucket.SPLITS]
    assert sum(len(s.labels) for s in splits) == 60
    skipped = [p for s in splits for p in s.skipped]
    assert len(skipped) == 1 and "broken.png" in skipped[0] and "cannot decode" in skipped[0]
    train = splits[0]  # labels follow the folders
    assert set(train.labels.tolist()) == {0, 1} and train.classes == ["disc", "square"]


def test_a_model_trains_from_a_published_folder(stack, folder, tmp_path):
    bucket.publish(
        "folder-shapes",
        bucket.folder_splits(dir_items(folder, only_images=False)),
        source="test folder",
        settings=stack,
    )
    budget = {"mobilenet_v2": {"train_count": 0, "test_count": 0, "epochs": 1, "input_size": 32, "learning_rate": 2e-3}}
    outcome = train_as_mlrun_job("mobilenet_v2", budget, policy="never", dataset_id="folder-shapes")
    assert outcome["dataset_id"] == "folder-shapes" and outcome["skipped_images"] == 1
    card, _ = registry.download("mobilenet_v2", outcome["version"], tmp_path, stack)
    assert card.labels == ["disc", "square"] and card.dataset_id == "folder-shapes"
    assert outcome["promoted"] is False


def test_bad_requests_get_clear_errors(stack):
    with pytest.raises(bucket.DatasetError, match="'no-such-set' is not in s3://datasets; publish it first"):
        bucket.load_split("no-such-set", "train", 32, settings=stack)
    with pytest.raises(bucket.DatasetError, match="no labelled image"):
        bucket.publish("unlabelled", {"train": [Item("a.png", _png((200, 0, 0), "disc"))]}, source="t", settings=stack)
    with pytest.raises(bucket.DatasetError, match="unknown split"):
        bucket.publish("x", {"validation": []}, source="t", settings=stack)
    with pytest.raises(bucket.DatasetError, match="must be letters"):
        bucket.publish("../escape", {"train": []}, source="t", settings=stack)


def test_republishing_replaces_the_set(stack):
    items = [Item(f"{i}.png", _png((220, 40, 40), "disc"), "disc") for i in range(6)]
    bucket.publish("replaced", {"train": items, "test": items[:2]}, source="t", settings=stack)
    bucket.publish("replaced", {"train": items[:3], "test": items[:1]}, source="t", settings=stack)
    assert len(bucket.load_split("replaced", "train", 16, settings=stack).labels) == 3
    assert len(bucket.load_split("replaced", "test", 16, settings=stack).labels) == 1
    assert bucket.read_manifest("replaced", stack).counts == {"train": 3, "test": 1}
