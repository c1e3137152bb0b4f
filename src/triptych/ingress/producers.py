"""Stream producers: every image they make goes into the `images` bucket (never
around it), with its label and source as object metadata; MinIO's own event then
starts the pipeline exactly as for an upload.

Each producer is an iterator of `Item`s (`triptych.datasets.sources`); `run_stream` paces it (rate limit),
bounds it (count or duration), reports progress and returns a summary.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from minio import Minio

from ..config import Settings
from ..datasets.sources import Item
from ..imaging import sniff_format
from ..storage import minio_client
from .objects import encode_metadata, upload_key


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
            self.settings.images_bucket,
            key,
            io.BytesIO(item.data),
            len(item.data),
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
