"""Serving Grad-CAM heatmaps without torch in the serving process.

A heatmap is rendered once per (image, model, version) by a worker process (spawned
on first use, at a lower CPU priority, one torch thread: it must not slow the
stream) and kept in the reports bucket under `gradcam/<image>/<model>-v<version>.png`.
The API and the dashboard each own an Explainer; both find the same kept PNGs.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from minio import Minio
from minio.error import S3Error

from ..config import Settings
from ..db import queries
from ..storage import MISSING_OBJECT_CODES, read_object

log = logging.getLogger("triptych.explain")
RENDER_TIMEOUT_S = 120.0  # the first render also spawns the worker and loads torch and the weights


class NoAnswer(LookupError):
    """The image is unknown, or that model has not answered it."""


class ImageGone(LookupError):
    """The models answered the image, but its bytes are no longer in the bucket (deleted
    or expired since): there is nothing to draw the heatmap over."""


class Unavailable(RuntimeError):
    """The worker could not render it now (crashed, or too slow); a retry may work."""


@dataclass(frozen=True)
class Heatmap:
    png: bytes
    model_name: str
    version: str
    label: str
    render_ms: float | None  # None: it was already kept


ORPHAN_CHECK_S = 1.0


def _exit_when_orphaned(parent: int) -> None:
    """The worker must never outlive the API or dashboard that spawned it (ended by
    `triptych down`, SIGTERM or kill -9): once its parent is gone it is re-parented,
    and it exits. A watch, not PR_SET_PDEATHSIG: that signal follows the *thread*
    that spawned the worker, a request thread that may end long before the process."""
    import os
    import time

    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)  # nothing to flush: a render in flight is simply not kept


def _worker_start(parent: int) -> None:
    import os

    threading.Thread(target=_exit_when_orphaned, args=(parent,), name="orphan-watch", daemon=True).start()
    import torch

    os.nice(10)  # below the inference functions: an explanation can wait, the stream cannot
    torch.set_num_threads(1)


class Explainer:
    def __init__(self, settings: Settings, read: Callable, s3: Minio):
        self.settings, self._read, self._s3 = settings, read, s3
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def key(self, image_id: str, model_name: str, version: str) -> str:
        return f"gradcam/{image_id}/{model_name}-v{version}.png"

    def heatmap(self, image_id: str, model_name: str) -> Heatmap:
        answer = self._read(queries.champion_answer, image_id, model_name)
        if answer is None:
            raise NoAnswer(f"{model_name} has not answered image {image_id}")
        version, label = answer["model_version"], answer["predicted_class"]
        key = self.key(image_id, model_name, version)
        bucket = self.settings.reports_bucket
        try:
            return Heatmap(read_object(self._s3, bucket, key), model_name, version, label, None)
        except S3Error as exc:
            if exc.code != "NoSuchKey":
                raise
        raw = self._original(image_id)
        from .gradcam import render  # torch stays in the worker: this import is torch-free at module level

        try:
            png, render_ms = (
                self._workers().submit(render, self.settings, model_name, version, raw, label).result(RENDER_TIMEOUT_S)
            )
        except FutureTimeout as exc:
            raise Unavailable(f"the Grad-CAM worker took over {RENDER_TIMEOUT_S:.0f} s") from exc
        except BrokenProcessPool as exc:  # the worker died (out of memory, killed): a fresh one next time
            with self._lock:
                self._pool = None
            raise Unavailable(f"the Grad-CAM worker failed: {exc}") from exc
        self._s3.put_object(bucket, key, io.BytesIO(png), len(png), content_type="image/png")
        log.info("gradcam %s %s v%s rendered in %.0f ms", image_id, model_name, version, render_ms)
        return Heatmap(png, model_name, version, label, render_ms)

    def _original(self, image_id: str) -> bytes:
        where = self._read(queries.image_location, image_id)
        if where is None:
            raise ImageGone(f"image {image_id} has no row (deleted since it was answered)")
        try:
            return read_object(
                self._s3,
                where["bucket"],
                where["object_key"],
                where["object_version"] or None,
                limit=self.settings.max_image_bytes,
            )
        except S3Error as exc:
            if exc.code in MISSING_OBJECT_CODES:
                raise ImageGone(
                    f"image {image_id}: {where['bucket']}/{where['object_key']} is no longer in the bucket ({exc.code})"
                ) from exc
            raise

    def _workers(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_start,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
