"""Where a data set's images go in MinIO, and how a folder is split."""

from triptych.datasets.bucket import folder_splits, object_key
from triptych.datasets.sources import Item


def _items(paths):
    return [Item(p.rsplit("/", 1)[-1], b"", p.split("/")[-2], {"path": p}) for p in paths]


def test_keys_keep_labels_and_names_inside_their_folder():
    assert object_key("set-1", "train", "cat", 7, "a.png") == "set-1/train/cat/0000007-a.png"
    assert object_key("set-1", "test", "../../etc", 0, "x/y z.png") == "set-1/test/etc/0000000-x_y_z.png"


def test_a_folder_with_train_and_test_keeps_them():
    splits = folder_splits(_items(["train/cat/1.png", "train/dog/2.png", "test/cat/3.png"]))
    assert [i.client["path"] for i in splits["train"]] == ["train/cat/1.png", "train/dog/2.png"]
    assert [i.client["path"] for i in splits["test"]] == ["test/cat/3.png"]


def test_a_plain_folder_holds_out_a_stable_tenth():
    paths = [f"{label}/{i:04d}.png" for label in ("cat", "dog") for i in range(500)]
    first = folder_splits(_items(paths))
    assert 60 <= len(first["test"]) <= 140 and len(first["train"]) + len(first["test"]) == 1000
    held_out = {i.client["path"] for i in first["test"]}
    grown = folder_splits(_items(paths + [f"cat/{i:04d}.png" for i in range(500, 700)]))
    assert held_out <= {i.client["path"] for i in grown["test"]}, "adding files never moves a held-out one"
