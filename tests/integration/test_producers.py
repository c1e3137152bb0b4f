"""The stream producers write into the bucket; the pipeline takes it from there."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import psutil

from triptych.datasets.synthetic import CLASSES
from triptych.ingress.producers import BucketWriter
from triptych.ingress.webcam import WebcamProducer

from ..images import image_bytes
from .pipeline_helpers import wait_rows
from .runtime_helpers import wait_for


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "triptych.cli", *args], capture_output=True, text=True, timeout=300)


def test_synthetic_stream_arrives_labelled(stack, ingress):
    before = time.time()
    proc = _cli("stream", "synthetic", "--count", "20", "--rate", "0", "--start", str(int(before) % 100000))
    assert proc.returncode == 0, proc.stderr
    assert "sent 20 image(s)" in proc.stderr
    rows = wait_rows(stack, "source = 'synthetic' AND uploaded_at >= to_timestamp(%s)", (before,), 20)
    assert len(rows) == 20 and all(r["ground_truth_label"] in CLASSES for r in rows)
    assert all(r["client_metadata"]["dataset"] == "triptych-shapes-v1" for r in rows)


def test_dir_stream_takes_labels_from_subfolders(stack, ingress, tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.png").write_bytes(image_bytes("PNG"))
    (tmp_path / "README.txt").write_text("not an image")
    before = time.time()
    proc = _cli("stream", "dir", str(tmp_path), "--rate", "0")
    assert proc.returncode == 0, proc.stderr
    rows = wait_rows(stack, "source = 'dir' AND uploaded_at >= to_timestamp(%s)", (before,), 6)
    assert sorted(r["ground_truth_label"] for r in rows) == ["cat"] * 3 + ["dog"] * 3


def _video(path, frames: int, size=(64, 48)) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), (i * 5) % 255, np.uint8)
        cv2.putText(frame, str(i), (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()
    return str(path)


def test_webcam_producer_sends_frames_in_order_at_the_asked_rate(stack, ingress, tmp_path):
    video = _video(tmp_path / "clip.avi", 30)
    producer = WebcamProducer(video, BucketWriter(stack, "video").put, fps=10, label="clip")
    summary = producer.run()
    assert (summary.captured, summary.sent, summary.dropped, summary.failed) == (30, 30, 0, 0)
    assert 2.5 <= summary.seconds <= 4.5, f"30 frames at 10 fps took {summary.seconds:.2f}s"
    rows = wait_rows(stack, "filename LIKE %s", (f"frame-{producer.session}-%",), 30)
    frames = sorted(rows, key=lambda r: r["client_metadata"]["frame"])
    assert [r["client_metadata"]["frame"] for r in frames] == list(range(30))
    stamps = [r["client_metadata"]["captured_at"] for r in frames]
    assert stamps == sorted(stamps)
    assert all(r["source"] == "video" and r["ground_truth_label"] == "clip" for r in rows)


def test_webcam_backpressure_drops_and_counts_frames_with_flat_memory(tmp_path):
    video = _video(tmp_path / "long.avi", 400, size=(320, 240))
    consumer_stopped = threading.Event()
    delivered = []

    def stalled_sink(item):
        consumer_stopped.wait()  # the consumer is stopped: nothing drains
        delivered.append(item.client["frame"])

    producer = WebcamProducer(video, stalled_sink, fps=200, queue_size=8)
    rss, queued = [], []
    sampler_stop = threading.Event()

    def sample():  # records only: an assert in a thread would fail nothing
        while not sampler_stop.is_set():
            rss.append(psutil.Process().memory_info().rss)
            queued.append(len(producer.queue))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    runner = threading.Thread(target=lambda: producer.run())
    runner.start()
    # Every frame is read while the sink is stalled: all but a queue's worth must be dropped.
    wait_for(lambda: producer.summary.captured == 400, 60, message="all 400 frames captured")
    consumer_stopped.set()
    runner.join(timeout=60)
    sampler_stop.set()
    sampler.join()
    s = producer.summary
    assert s.captured == 400
    assert s.dropped >= 400 - 8 - 1 - 5 and s.sent + s.dropped == s.captured
    assert delivered == sorted(delivered), "the frames that survive keep their order"
    assert queued and max(queued) <= 8, f"the queue held {max(queued)} frames, above its bound of 8"
    growth_mb = (max(rss) - rss[0]) / 2**20
    assert growth_mb < 40, f"memory grew {growth_mb:.1f} MB while frames were dropped"


def test_upload_cli_sends_files_through_the_upload_function(stack, ingress, tmp_path):
    good, bad = tmp_path / "good pic.png", tmp_path / "bad.jpg"
    good.write_bytes(image_bytes("PNG"))
    bad.write_bytes(b"not an image at all")
    proc = _cli("upload", str(good), str(bad), "--label", "pet", "--url", ingress)
    assert proc.returncode == 1, "a rejected file makes the command fail"
    assert "rejected bad.jpg" in " ".join(proc.stderr.split())
    body = json.loads(proc.stdout)
    stored = [r for r in body["results"] if r["status"] == "stored"]
    assert [r["filename"] for r in stored] == ["good pic.png"]
    [row] = wait_rows(stack, "image_id = %s", (stored[0]["image_id"],), 1)
    assert row["ground_truth_label"] == "pet" and row["source"] == "upload"


def test_cifar10_without_a_local_copy_fails_clearly(tmp_path):
    proc = _cli("stream", "cifar10", "--from-dir", str(tmp_path), "--count", "1")
    assert proc.returncode == 2
    message = " ".join(proc.stderr.split())
    assert "CIFAR-10 is not available" in message and "--from-dir" in message and "Traceback" not in message
