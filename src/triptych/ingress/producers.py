"""Stream producers: every image they make goes into the `images` bucket (never
around it), with its label and source as object metadata; MinIO's own event then
starts the pipeline exactly as for an upload.

Each producer is an iterator of `Item`s; `run_stream` paces it (rate limit),
bounds it (count or duration), reports progress and returns a summary.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from minio import Minio

from ..config import Settings
from ..storage import minio_client
from .objects import encode_metadata, upload_key
from .validation import sniff_format


@dataclass(frozen=True)
class Item:
    filename: str
    data: bytes
    label: str | None = None
    client: dict = field(default_factory=dict)


@dataclass
class StreamSummary:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    bytes: int = 0
    seconds: float = 0.0
    keys: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class BucketWriter:
    def __init__(self, settings: Settings, source: str, s3: Minio | None = None):
        self.settings = settings
        self.source = source
        self.s3 = s3 or minio_client(settings)

    def put(self, item: Item) -> str:
        key = upload_key(item.filename, self.source)
        fmt = sniff_format(item.data)
        self.s3.put_object(
            self.settings.images_bucket, key, io.BytesIO(item.data), len(item.data),
            content_type=f"image/{fmt}" if fmt else "application/octet-stream",
            metadata=encode_metadata(self.source, item.filename, item.label, item.client),
        )
        return key


class Pacer:
    """Spaces calls `1/rate` seconds apart on a fixed schedule (no drift); rate 0 = no limit."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self.next_at is None:
            self.next_at = now
        if self.next_at > now:
            self.sleep(self.next_at - now)
        self.next_at = max(self.next_at, now - self.interval) + self.interval


def run_stream(
    items: Iterable[Item],
    writer: BucketWriter,
    rate: float = 0.0,
    count: int | None = None,
    duration: float | None = None,
    on_sent: Callable[[StreamSummary], None] = lambda _s: None,
    keep_keys: bool = False,
) -> StreamSummary:
    summary = StreamSummary()
    pacer = Pacer(rate)
    started = time.monotonic()
    for item in items:
        if count is not None and summary.sent + summary.failed >= count:
            break
        if duration is not None and time.monotonic() - started >= duration:
            break
        pacer.wait()
        try:
            key = writer.put(item)
            summary.sent += 1
            summary.bytes += len(item.data)
            if keep_keys:
                summary.keys.append(key)
        except Exception as exc:  # noqa: BLE001 - one failed put is counted, the stream goes on
            summary.failed += 1
            if len(summary.errors) < 10:
                summary.errors.append(f"{item.filename}: {exc}")
        on_sent(summary)
    summary.seconds = time.monotonic() - started
    return summary


# --- sources -----------------------------------------------------------------
def synthetic_items(split: str = "test", start: int = 0, fmt: str = "png", size: int = 64) -> Iterator[Item]:
    from ..datasets.synthetic import DATASET_ID, render

    index = start
    while True:  # endless: the stream is bounded by count or duration
        sample = render(index, split, size)
        yield Item(f"{sample.label}-{split}-{index:06d}.{'jpg' if fmt == 'jpeg' else fmt}", sample.encode(fmt),
                   sample.label, {"dataset": DATASET_ID, "split": split, "index": index})
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
        yield Item(f"cifar10-{index:05d}-{label}.png", buffer.getvalue(), label,
                   {"dataset": f"cifar10-{split}", "index": index})


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
