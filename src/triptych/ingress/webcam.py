"""The webcam / video file / RTSP producer.

Capture and upload run in separate threads joined by a bounded queue. When the
upload side falls behind (MinIO slow or away), the queue fills and frames are
dropped by policy — the oldest (keep the view live, the default) or the newest —
and counted; memory never grows with the backlog.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import cv2

from ..datasets.sources import Item
from .producers import Pacer, StreamSummary


@dataclass
class WebcamSummary(StreamSummary):
    captured: int = 0


T = TypeVar("T")


class DroppingQueue(Generic[T]):
    """A bounded FIFO that drops instead of blocking the producer."""

    def __init__(self, capacity: int, policy: str = "drop-oldest"):
        if policy not in ("drop-oldest", "drop-newest"):
            raise ValueError("policy must be drop-oldest or drop-newest")
        self.capacity, self.policy = capacity, policy
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._cond:
            if len(self._items) >= self.capacity:
                self.dropped += 1
                if self.policy == "drop-newest":
                    return
                self._items.popleft()
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float) -> T | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def open_capture(source: str) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise RuntimeError(f"cannot open video source {source!r} (a camera index, a video file or an rtsp:// URL)")
    return capture


def source_kind(source: str) -> str:
    if source.isdigit():
        return "webcam"
    return "rtsp" if source.lower().startswith(("rtsp://", "rtsps://")) else "video"


class WebcamProducer:
    def __init__(
        self,
        source: str,
        sink: Callable[[Item], object],
        fps: float = 2.0,
        width: int | None = None,
        height: int | None = None,
        jpeg_quality: int = 85,
        queue_size: int = 8,
        policy: str = "drop-oldest",
        label: str | None = None,
    ):
        self.source, self.sink = source, sink
        self.fps, self.width, self.height, self.quality = fps, width, height, jpeg_quality
        self.label = label
        self.queue: DroppingQueue[Item] = DroppingQueue(queue_size, policy)
        self.summary = WebcamSummary()
        self.stop = threading.Event()
        self.session = time.strftime("%Y%m%dT%H%M%S")

    def _encode(self, frame, index: int) -> Item:
        if self.width and self.height:
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return Item(
            f"frame-{self.session}-{index:06d}.jpg",
            buf.tobytes(),
            self.label,
            {"frame": index, "captured_at": time.time(), "source": self.source},
        )

    def _capture(self, max_frames: int | None) -> None:
        capture = open_capture(self.source)
        pacer = Pacer(self.fps)
        live = source_kind(self.source) != "video"
        try:
            while not self.stop.is_set() and (max_frames is None or self.summary.captured < max_frames):
                if live:
                    # Grab continuously so the frame kept at each tick is fresh, not
                    # one that waited in the driver's buffer.
                    deadline = time.monotonic() + (1 / self.fps if self.fps else 0)
                    grabbed = capture.grab()
                    while grabbed and time.monotonic() < deadline and not self.stop.is_set():
                        grabbed = capture.grab()
                    ok, frame = capture.retrieve() if grabbed else (False, None)
                else:
                    pacer.wait()
                    ok, frame = capture.read()
                if not ok or frame is None:
                    break  # end of file or camera gone
                self.queue.put(self._encode(frame, self.summary.captured))
                self.summary.captured += 1
        finally:
            capture.release()

    def _send(self) -> None:
        while not (self.stop.is_set() and len(self.queue) == 0):
            item = self.queue.get(timeout=0.2)
            if item is None:
                continue
            try:
                self.sink(item)
                self.summary.sent += 1
            except Exception:  # noqa: BLE001 - counted; the stream goes on
                self.summary.failed += 1

    def run(self, max_frames: int | None = None, duration: float | None = None) -> WebcamSummary:
        started = time.monotonic()
        sender = threading.Thread(target=self._send, name="webcam-sender", daemon=True)
        sender.start()
        capture = threading.Thread(target=self._capture, args=(max_frames,), name="webcam-capture", daemon=True)
        capture.start()
        capture.join(timeout=duration)
        self.stop.set()
        capture.join()
        sender.join(timeout=30)
        self.summary.dropped = self.queue.dropped
        self.summary.seconds = time.monotonic() - started
        return self.summary
