"""Sources of labelled images, each an iterator of `Item`s: the generated set
(offline), CIFAR-10 (through torchvision), a folder of image files. The stream
producers (`triptych.ingress.producers`) send them into the bucket; the data-set
publisher (`triptych.datasets.bucket`) stores them as a versioned set."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..imaging import sniff_format
from .synthetic import DATASET_ID, render, shifted


@dataclass(frozen=True)
class Item:
    filename: str
    data: bytes
    label: str | None = None
    client: dict = field(default_factory=dict)


def synthetic_items(
    split: str = "test", start: int = 0, fmt: str = "png", size: int = 64, shift: str | None = None
) -> Iterator[Item]:
    """The generated set; with `shift` (synthetic.SHIFTS), a shifted copy of it."""
    index = start
    extra = {"shift": shift} if shift else {}
    while True:  # endless: the stream is bounded by count or duration
        sample = shifted(render(index, split, size), shift)
        yield Item(
            f"{sample.label}-{split}-{index:06d}.{'jpg' if fmt == 'jpeg' else fmt}",
            sample.encode(fmt),
            sample.label,
            {"dataset": DATASET_ID, "split": split, "index": index, **extra},
        )
        index += 1


def cifar10_items(root: Path, download: bool = True, train: bool = False) -> Iterator[Item]:
    """A CIFAR-10 split (the test set unless `train`) through torchvision (downloads once when online)."""
    from torchvision.datasets import CIFAR10

    try:
        dataset = CIFAR10(root=str(root), train=train, download=download)
    except Exception as exc:  # noqa: BLE001 - re-raised with what to do
        raise RuntimeError(
            f"CIFAR-10 is not available under {root} and could not be downloaded ({exc}). "
            "Go online once, or copy the extracted `cifar-10-batches-py` folder there and pass --from-dir."
        ) from exc
    split = "train" if train else "test"
    for index, (image, target) in enumerate(dataset):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        label = dataset.classes[target]
        yield Item(
            f"cifar10-{index:05d}-{label}.png",
            buffer.getvalue(),
            label,
            {"dataset": f"cifar10-{split}", "index": index},
        )


def dir_items(folder: Path, only_images: bool = True) -> Iterator[Item]:
    """Every image file under `folder` (every file, when not `only_images`: the
    caller then names what it rejects); a file's parent folder names its label when
    the images sit in sub-folders (folder/cat/1.jpg -> "cat")."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if only_images and sniff_format(data) is None:
            continue  # not an image: README files, .DS_Store ...
        label = path.parent.name if path.parent != folder else None
        yield Item(path.name, data, label, {"path": str(path.relative_to(folder))})
