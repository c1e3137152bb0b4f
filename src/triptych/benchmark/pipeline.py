"""Driving the running pipeline: labelled images dropped into the bucket, as
fast as it takes them (throughput) or at a fixed rate (latency), and the
timestamps every function put in its messages collected along the way.

The bench watches `images-input-stream` and `predictions-output-stream` itself
(no consumer group: it changes no one's offsets), so it sees when each message
became readable; the end of an image's way is its comparison row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
from kafka import TopicPartition

from ..bus import consumer as make_consumer
from ..config import Settings
from ..contracts import TOPIC_IMAGES_INPUT, TOPIC_PREDICTIONS, ImageMessage, PredictionMessage
from ..datasets.sources import Item
from ..datasets.synthetic import render
from ..db.connection import Database
from ..ingress.producers import BucketWriter, Pacer
from ..models.null_backend import NULL_SUFFIX
from .arithmetic import ImageTimes, PredictionTimes

SOURCE = "synthetic"  # generated images; their client metadata says {"bench": true}
COMPARED_SINCE = "SELECT count(*) AS n FROM model_comparisons WHERE created_at >= to_timestamp(%s)"
COMPARED = """
SELECT i.object_key, extract(epoch FROM c.created_at)::float8 AS compared_at
FROM model_comparisons c JOIN images i USING (image_id)
WHERE i.object_key = ANY(%s)
"""


def bench_images(count: int, width: int = 640, height: int = 480, distinct: int = 48) -> list[Item]:
    """`count` labelled JPEGs of the generated classes at width x height (camera
    sized by default). `distinct` are rendered and cycled: every put is a new
    object, hence a new image, whatever its bytes."""
    rendered = []
    for index in range(min(distinct, count)):
        sample = render(index, "test", max(width, height))
        pixels = cv2.resize(sample.image, (width, height), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        rendered.append((sample.label, jpeg.tobytes()))
    return [
        Item(f"bench-{i:06d}.jpg", rendered[i % len(rendered)][1], rendered[i % len(rendered)][0], {"bench": True})
        for i in range(count)
    ]


@dataclass
class Watcher:
    """Reads the image and prediction streams from their ends in a thread and
    remembers the timestamps of every message (champions' answers only)."""

    settings: Settings
    images: dict[str, ImageMessage] = field(default_factory=dict)  # by object key
    predictions: dict[str, list[tuple[PredictionMessage, float]]] = field(default_factory=dict)  # by image id
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, name="bench-watcher", daemon=True)
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the bench could not start reading the Kafka topics")
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        consumer = make_consumer(self.settings, fetch_max_wait_ms=20)
        partitions = [
            TopicPartition(topic, p)
            for topic in (TOPIC_IMAGES_INPUT, TOPIC_PREDICTIONS)
            for p in consumer.partitions_for_topic(topic) or [0]
        ]
        consumer.assign(partitions)
        consumer.seek_to_end()
        for tp in partitions:
            consumer.position(tp)  # resolve the end now, before any image is put
        self._ready.set()
        try:
            while not self._stop.is_set():
                for tp, records in consumer.poll(timeout_ms=100).items():
                    seen = time.time()
                    for record in records:
                        self._remember(tp.topic, record.value, seen)
        finally:
            consumer.close()

    def _remember(self, topic: str, value: bytes, seen: float) -> None:
        try:
            if topic == TOPIC_IMAGES_INPUT:
                image = ImageMessage.model_validate_json(value)
                self.images[image.object_key] = image
            else:
                prediction = PredictionMessage.model_validate_json(value)
                if prediction.role == "champion":
                    self.predictions.setdefault(prediction.image_id, []).append((prediction, seen))
        except ValueError:
            return  # not ours to judge: someone else's malformed message

    def times(self, key: str, put_done: float, compared_at: float) -> ImageTimes | None:
        image = self.images.get(key)
        if image is None or image.ingest_ms is None:
            return None
        answers = []
        for p, seen in self.predictions.get(image.image_id, []):
            if p.received_at is None:
                return None  # a function from before the bench's timestamps
            answers.append(
                PredictionTimes(
                    model=p.model_name,
                    received_at=p.received_at.timestamp(),
                    fetch_ms=p.timings.fetch_ms,
                    decode_ms=p.timings.decode_ms,
                    preprocess_ms=p.timings.preprocess_ms,
                    inference_ms=p.timings.inference_ms,
                    batch_size=p.batch_size,
                    predicted_at=p.predicted_at.timestamp(),
                    seen_at=seen,
                )
            )
        if not answers:
            return None
        return ImageTimes(
            put_done=put_done,
            registered_at=image.registered_at.timestamp(),
            ingest_ms=image.ingest_ms,
            predictions=tuple(answers),
            compared_at=compared_at,
        )


@dataclass
class Drop:
    """What one batch of puts did: when each object was written, and when each was compared."""

    started: float
    put_done: dict[str, float]
    compared_at: dict[str, float]

    @property
    def finished(self) -> float:
        return max(self.compared_at.values(), default=self.started)


def put_images(settings: Settings, items: list[Item], writers: int = 4, rate: float = 0.0) -> tuple[float, dict]:
    """Write every item into the images bucket: `writers` at once as fast as the
    bucket takes them, or paced at `rate` per second. Returns (start, key -> done)."""
    writer = BucketWriter(settings, SOURCE)
    done: dict[str, float] = {}
    pacer = Pacer(rate)

    def put(item: Item) -> None:
        key = writer.put(item)
        done[key] = time.time()

    started = time.time()
    if rate > 0:
        for item in items:
            pacer.wait()
            put(item)
    else:
        with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="bench-put") as pool:
            list(pool.map(put, items))  # the first error propagates
    return started, done


def wait_compared(db: Database, keys: list[str], timeout: float, poll_s: float = 0.25) -> dict[str, float]:
    """Object key -> when its comparison was written, once all are (or raise at the deadline)."""
    deadline = time.monotonic() + timeout
    compared: dict[str, float] = {}
    while True:

        def read(cur):
            cur.execute(COMPARED, (keys,))
            return cur.fetchall()

        compared = {row["object_key"]: row["compared_at"] for row in db.transaction(read)}
        if len(compared) >= len(keys):
            return compared
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"only {len(compared)} of {len(keys)} images were compared within {timeout:.0f} s; "
                "are the champions registered and the functions running (`triptych functions status`)?"
            )
        time.sleep(poll_s)


def drop(
    settings: Settings, db: Database, items: list[Item], timeout: float, writers: int = 4, rate: float = 0.0
) -> Drop:
    started, done = put_images(settings, items, writers, rate)
    return Drop(started, done, wait_compared(db, list(done), timeout))


@dataclass
class Flow(Drop):
    """A saturating flow: puts for `warmup_s + steady_s`, never more than `backlog`
    images ahead of the comparisons, then drained. `window` is the steady state
    (warm-up before it and the drain after it are left out of every figure)."""

    window: tuple[float, float] = (0.0, 0.0)

    def in_window(self) -> int:
        start, end = self.window
        return sum(1 for at in self.compared_at.values() if start <= at < end)


def flow(
    settings: Settings,
    db: Database,
    templates: list[Item],
    warmup_s: float,
    steady_s: float,
    timeout: float,
    writers: int = 4,
    backlog: int = 300,
    on_window: Callable[[float, float], None] | None = None,
) -> Flow:
    """Drop images as fast as the pipeline takes them for `warmup_s + steady_s`
    (each put a new object, its bytes cycled from `templates`), holding at most
    `backlog` in flight so that the drain stays short; then wait for every one.
    `on_window(start, end)` is called at the window's end (the CPU meter's cue)."""
    writer = BucketWriter(settings, SOURCE)
    done: dict[str, float] = {}
    lock = threading.Lock()
    started = time.time()
    window = (started + warmup_s, started + warmup_s + steady_s)
    compared = [0]
    stop = threading.Event()

    def poll() -> None:  # how far the comparisons have got: the writers hold back past `backlog`
        while not stop.is_set():
            compared[0] = db.transaction(lambda cur: (cur.execute(COMPARED_SINCE, (started,)), cur.fetchone()["n"])[1])
            stop.wait(0.25)

    def put_until_end(first: int) -> None:
        index = first
        while time.time() < window[1]:
            with lock:
                ahead = len(done) - compared[0]
            if ahead >= backlog:
                time.sleep(0.02)
                continue
            template = templates[index % len(templates)]
            key = writer.put(Item(f"bench-{index:07d}.jpg", template.data, template.label, template.client))
            with lock:
                done[key] = time.time()
            index += writers

    poller = threading.Thread(target=poll, name="bench-poll", daemon=True)
    poller.start()
    try:
        with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="bench-put") as pool:
            list(pool.map(put_until_end, range(writers)))  # the first error propagates
    finally:
        stop.set()
        poller.join()
    if on_window is not None:
        on_window(*window)
    return Flow(started, done, wait_compared(db, list(done), timeout), window)


def forget_null_answers(db: Database) -> int:
    """Remove what a `--null-models` run wrote: its bench images and, with them (ON
    DELETE CASCADE), their fixed answers and comparisons, and the per-minute metrics
    of the `+null` versions. The stack's history keeps no stand-in's answer; the
    report keeps the figures. Returns the images removed."""

    def forget(cur) -> int:
        cur.execute(
            """DELETE FROM images i
               WHERE i.source = %s AND i.client_metadata->>'bench' = 'true'
                 AND EXISTS (SELECT 1 FROM predictions p WHERE p.image_id = i.image_id AND p.model_version LIKE %s)""",
            (SOURCE, f"%{NULL_SUFFIX}"),
        )
        removed = cur.rowcount
        cur.execute("DELETE FROM model_metrics WHERE model_version LIKE %s", (f"%{NULL_SUFFIX}",))
        return removed

    return db.transaction(forget)
