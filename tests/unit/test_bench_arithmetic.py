"""The bench's arithmetic: percentiles, rates, and an image's latency by stage."""

import math

import numpy as np
import pytest

from triptych.benchmark.arithmetic import (
    STAGES,
    ImageTimes,
    PredictionTimes,
    cpu_per_image,
    latency_report,
    percentile,
    rate,
    ratio,
    stage_breakdown,
)


@pytest.mark.parametrize("q", [0, 1, 50, 95, 99, 100])
def test_percentiles_interpolate_like_numpy_and_postgres(q):
    values = list(np.random.default_rng(3).exponential(100, 257))
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_edge_cases():
    assert math.isnan(percentile([], 50))
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_rates_and_ratios():
    assert rate(90, 10.0, 11.5) == pytest.approx(60.0)
    assert rate(0, 10.0, 11.0) == 0.0 and rate(5, 3.0, 3.0) == 0.0
    assert ratio(30, 120) == 0.25 and ratio(1, 0) is None


def answer(model, received, predicted, seen, batch=4, fetch=2.0, decode=1.0, pre=0.5, inf=5.0):
    return PredictionTimes(
        model=model,
        received_at=received,
        fetch_ms=fetch,
        decode_ms=decode,
        preprocess_ms=pre,
        inference_ms=inf,
        batch_size=batch,
        predicted_at=predicted,
        seen_at=seen,
    )


def image(**overrides):
    times = dict(
        put_done=100.000,
        registered_at=100.030,
        ingest_ms=10.0,
        predictions=(
            answer("a", 100.050, 100.100, 100.110),
            answer("b", 100.060, 100.150, 100.170),
            answer("c", 100.040, 100.080, 100.090),
        ),
        compared_at=100.250,
    )
    times.update(overrides)
    return ImageTimes(**times)


def test_the_critical_path_runs_through_the_answer_seen_last_and_the_stages_add_up():
    stages = stage_breakdown(image())
    assert stages["event_delay"] == pytest.approx(20.0)  # ingest began at 100.020
    assert stages["ingest"] == pytest.approx(10.0)
    assert stages["queueing"] == pytest.approx(30.0)  # model b took it at 100.060
    # The image waits for the whole batch's preprocessing and forward pass: 4 x the share.
    assert stages["preprocess"] == pytest.approx(2.0) and stages["inference"] == pytest.approx(20.0)
    assert stages["batch"] == pytest.approx(90.0 - (2.0 + 1.0 + 2.0 + 20.0))
    assert stages["publish"] == pytest.approx(20.0) and stages["aggregation"] == pytest.approx(80.0)
    assert sum(stages[s] for s in STAGES) == pytest.approx(stages["total"]) == pytest.approx(250.0)


def test_an_image_without_answers_has_no_breakdown():
    with pytest.raises(ValueError):
        stage_breakdown(image(predictions=()))


def test_the_latency_report_summarises_totals_and_every_stage():
    report = latency_report([image(compared_at=100.250 + i / 1000) for i in range(101)])
    assert report["total_ms"]["n"] == 101
    assert report["total_ms"]["p50"] == pytest.approx(300.0)
    assert report["total_ms"]["p99"] == pytest.approx(349.0)
    assert set(report["stages_ms"]) == set(STAGES)
    assert report["stages_ms"]["ingest"]["p95"] == pytest.approx(10.0)
    assert report["batch_size"]["p50"] == 4


def test_cpu_per_image_counts_from_zero_for_processes_that_appeared_during_the_run():
    per_image = cpu_per_image(
        {"kafka": 10.0, "ingest[0]": 2.0}, {"kafka": 12.0, "ingest[0]": 2.5, "ingest[1]": 0.5}, images=100
    )
    assert per_image == pytest.approx({"kafka": 20.0, "ingest[0]": 5.0, "ingest[1]": 5.0})
    assert cpu_per_image({}, {"kafka": 1.0}, images=0) == {}


def test_a_gpu_report_without_a_pipeline_renders_its_ceiling_and_in_process_runs():
    from triptych.benchmark.report import markdown

    result = {
        "started_at": 0.0,
        "commit": "abc1234",
        "cores": 16,
        "models": ["resnet50"],
        "batch": 256,
        "threads": None,
        "image": {"width": 640, "height": 480, "format": "jpeg"},
        "pipeline": [],
        "ceiling": [
            {
                "backend": "torch-cuda-fp16",
                "threads": None,
                "batch": 256,
                "images_per_s": 7500.0,
                "forward_ms_per_image": 0.4,
            }
        ],
        "inprocess": [
            {
                "device": "cuda",
                "backend": "torch-cuda-fp16",
                "threads": None,
                "batch": 256,
                "gpu_decode": True,
                "images_per_s": 2100.0,
                "decode_ms_per_image": 0.2,
                "forward_ms_per_image": 0.3,
            }
        ],
    }
    text = markdown(result)
    assert "| torch-cuda-fp16 | default | 256 | 7,500.0 | 0.40 |" in text
    assert "| cuda | torch-cuda-fp16 | default | 256 | yes | 2,100.0 | 0.20 | 0.30 |" in text
    assert "## Pipeline" not in text


def test_the_gpu_preprocessing_gives_a_normalised_half_precision_channels_last_batch():
    """Run on the CPU here (no GPU in tests): the same tensor code the GPU path runs."""
    import torch

    from triptych.benchmark.inprocess import _gpu_preprocess
    from triptych.models.card import IMAGENET_MEAN, IMAGENET_STD

    images = [torch.full((3, 120, 160), 128, dtype=torch.uint8), torch.zeros((3, 90, 90), dtype=torch.uint8)]
    batch = _gpu_preprocess(images, 64, IMAGENET_MEAN, IMAGENET_STD, "cpu")
    assert batch.shape == (2, 3, 64, 64) and batch.dtype == torch.float16
    assert batch.is_contiguous(memory_format=torch.channels_last)
    expected = (128 / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert abs(float(batch[0, 0].float().mean()) - expected) < 1e-2
    assert abs(float(batch[1, 2].float().mean()) - (0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]) < 1e-2


def test_a_hosts_processes_are_counted_together_under_its_name_with_their_exited_children():
    import subprocess
    import sys

    from triptych.benchmark import resources

    # A parent that burns a little CPU in a child it has reaped, and a busy sibling.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; subprocess.run("
            "[sys.executable, '-c', 'sum(range(3_000_000))']); time.sleep(30)",
        ]
    )
    sibling = subprocess.Popen([sys.executable, "-c", "sum(range(3_000_000)); import time; time.sleep(30)"])
    try:
        import psutil

        from triptych.stack.process import wait_until

        wait_until(
            lambda: (
                psutil.Process(parent.pid).cpu_times().children_user > 0
                and psutil.Process(sibling.pid).cpu_times().user > 0.05
            ),
            30,
            interval=0.1,
        )
        tracked = resources.host_processes({"worker-1": [parent.pid, sibling.pid]})
        cpu = resources.cpu_seconds(tracked)
        assert set(cpu) == {"worker-1", resources.BENCH_PROCESS}
        one = psutil.Process(parent.pid).cpu_times()
        two = psutil.Process(sibling.pid).cpu_times()
        alone = one.user + one.system + two.user + two.system
        assert cpu["worker-1"] >= alone + one.children_user  # the reaped child's CPU is in
    finally:
        parent.kill()
        sibling.kill()


def test_the_marginal_cpu_per_image_takes_off_what_a_process_spends_idle_over_the_run():
    from triptych.benchmark.arithmetic import marginal_cpu_per_image

    # 100 images in 10 s; a broker idles at 0.05 cores (50 ms/s): 5 ms an image of its 12 is idle.
    marginal = marginal_cpu_per_image(
        {"kafka-1": 12.0, "worker-1": 20.0, "noisy": 0.1}, {"kafka-1": 0.05, "noisy": 0.2}, wall_s=10.0, images=100
    )
    assert marginal == {"kafka-1": pytest.approx(7.0), "worker-1": 20.0, "noisy": 0.0}
    assert marginal_cpu_per_image({"a": 1.0}, {}, 1.0, 0) == {}
