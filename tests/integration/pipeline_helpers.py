"""The real project's functions, run by the real supervisor for pipeline tests."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
import uuid
from pathlib import Path

import pytest
from kafka import TopicPartition

from projects.triptych_project import ROOT, render
from triptych.bus import consumer as make_consumer
from triptych.bus import producer as make_producer
from triptych.contracts import TOPIC_IMAGES_INPUT, ImageMessage
from triptych.datasets.sources import Item, synthetic_items
from triptych.db.connection import Database
from triptych.db.images import NewImage, register_image
from triptych.ingress.objects import image_id_for
from triptych.ingress.producers import BucketWriter
from triptych.runtime.spec import project_functions
from triptych.storage import minio_client

from ..images import truncated_jpeg
from .runtime_helpers import RunningSupervisor, query, start_supervisor, wait_for

# The upload limit the ingress tests run with (small, so "too large" is cheap to send).
MAX_BYTES = 1_000_000
# ... and the whole-request limit (a batch), so "body too large" is cheap too.
MAX_REQUEST_BYTES = 4_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_pipeline(
    folder: Path, run: dict[str, int], env: dict[str, str], data_dir: Path | None = None
) -> RunningSupervisor:
    """Write the real project (with `env` applied to its declaration) and run only
    the functions in `run` (name -> replicas); the others are scaled to 0. The
    supervisor's data dir is `folder/data` unless `data_dir` is given (the stack's,
    where its Prometheus looks for targets)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        text = render(functions_dir=ROOT / "functions")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    project = folder / "project.yaml"
    project.write_text(text)
    data_dir = data_dir or folder / "data"
    (data_dir / "functions").mkdir(parents=True, exist_ok=True)
    declared = list(project_functions(project))
    missing = set(run) - set(declared)
    if missing:
        pytest.fail(f"not declared in the project: {missing}")
    (data_dir / "functions" / "desired.json").write_text(json.dumps({n: run.get(n, 0) for n in declared}))
    sup = start_supervisor(project, data_dir, env)
    try:
        for name, replicas in run.items():
            sup.wait_running(name, replicas, timeout=120)
    except BaseException:
        sup.stop()  # never leave a half-started pipeline running behind a failed test
        raise
    return sup


class CliServer:
    """A `triptych <command> --port P` server in a subprocess with its own settings,
    ready once `probe_path` answers 200 (the dashboard, the API)."""

    def __init__(
        self, command: str, env: dict[str, str], log: Path, probe_path: str = "/health", host: str | None = None
    ):
        import subprocess
        import sys

        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "triptych.cli",
                command,
                "--port",
                str(self.port),
                *(["--host", host] if host else []),
            ],
            env={**os.environ, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: self._answers(probe_path), 60, message=f"`triptych {command}` at {self.url}")

    def _answers(self, path: str) -> bool:
        import urllib.request

        if self.proc.poll() is not None:
            pytest.fail(
                f"`triptych {self.command}` exited with {self.proc.returncode}:\n{self.log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        import subprocess

        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def train_missing_champions(settings) -> None:
    """Quick champions for every model that has none (kept with the stack)."""
    from triptych.models.bootstrap import QUICK, missing_champions, train_as_mlrun_job

    for name in missing_champions(settings):
        train_as_mlrun_job(name, QUICK, policy="always")


def start_full_pipeline(
    stack, folder: Path, env: dict[str, str] | None = None, extra: dict[str, int] | None = None
) -> tuple[RunningSupervisor, int]:
    """Upload, ingest, the three inference functions and aggregate (plus `extra`),
    with champions (trained quickly here when the registry has none); returns the
    supervisor and the upload function's port."""
    from triptych.models.zoo import ARCHITECTURES

    train_missing_champions(stack)
    port = free_port()
    run = {"upload": 1, "ingest": 1, "aggregate": 1, **{a.function: 1 for a in ARCHITECTURES.values()}, **(extra or {})}
    return start_pipeline(folder, run, {"TRIPTYCH_UPLOAD_PORT": str(port), **(env or {})}), port


class TopicWatcher:
    """Reads a topic from 'now' on, without a consumer group."""

    def __init__(self, settings, topic: str):
        self.consumer = make_consumer(settings)
        self.partitions = [TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_end()
        for tp in self.partitions:
            self.consumer.position(tp)
        self.seen: list = []

    def collect(self, predicate, want: int, timeout: float) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len([r for r in self.seen if predicate(r)]) < want:
            for records in self.consumer.poll(timeout_ms=500).values():
                self.seen.extend(records)
        return [r for r in self.seen if predicate(r)]

    def close(self) -> None:
        self.consumer.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_rows(stack, where: str, params: tuple, count: int, timeout: float = 30) -> list[dict]:
    """Wait until `images` has at least `count` rows matching `where`; return them."""
    return wait_for(
        lambda: (
            (rows := query(stack, f"SELECT * FROM images WHERE {where}", params, dicts=True))
            and len(rows) >= count
            and rows
        ),
        timeout,
        message=f"{count} image row(s) where {where} {params}",
    )


def stream(stack, count: int, start: int, tag: str, shift: str | None = None) -> list[str]:
    """Put `count` labelled test images into the bucket, their filenames tagged
    (with `shift`, a shifted copy of them: see synthetic.SHIFTS)."""
    writer = BucketWriter(stack, "synthetic")
    return [
        writer.put(Item(f"{tag}-{item.filename}", item.data, item.label, item.client))
        for _, item in zip(range(count), synthetic_items("test", start, shift=shift))
    ]


def image_ids_for(stack, tag: str, count: int, timeout=120) -> list[str]:
    rows = wait_rows(stack, "filename LIKE %s", (f"{tag}-%",), count, timeout)
    return [str(r["image_id"]) for r in rows]


def wait_comparisons(stack, ids, timeout=240) -> list[dict]:
    return wait_for(
        lambda: (
            (r := query(stack, "SELECT * FROM model_comparisons WHERE image_id = ANY(%s::uuid[])", (ids,), dicts=True))
            and len(r) >= len(ids)
            and r
        ),
        timeout,
        message=f"{len(ids)} comparisons",
    )


def send_corrupt_image(stack) -> str:
    """A registered image whose bytes cannot be decoded, sent straight to the
    inference functions (ingest would have quarantined it); returns its id."""
    key = f"quarantine/tests/{unique('corrupt')}.jpg"  # ingest skips this prefix: the message goes straight in
    # A fresh suffix keeps the bytes unique; without 0xFF, which libjpeg can read as a marker
    # that ends the scan early and returns a partial image (5 % of random suffixes did).
    data = truncated_jpeg() + uuid.uuid4().bytes.replace(b"\xff", b"\x00")
    minio_client(stack).put_object(stack.images_bucket, key, io.BytesIO(data), len(data))
    sha = hashlib.sha256(data).hexdigest()
    image_id = image_id_for(stack.images_bucket, key, "", sha)
    Database(stack).transaction(
        lambda cur: register_image(
            cur,
            NewImage(
                image_id=image_id,
                bucket=stack.images_bucket,
                object_key=key,
                object_version="",
                sha256=sha,
                filename="corrupt.jpg",
                size_bytes=len(data),
                source="unknown",
            ),
        )
    )
    producer = make_producer(stack)
    message = ImageMessage(
        image_id=image_id,
        bucket=stack.images_bucket,
        object_key=key,
        sha256=sha,
        image_format="jpeg",
        width=200,
        height=200,
        source="unknown",
    )
    producer.send(TOPIC_IMAGES_INPUT, key=image_id.encode(), value=message.model_dump_json().encode()).get(10)
    producer.close()
    return image_id
