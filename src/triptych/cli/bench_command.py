"""`triptych bench`: the running pipeline's throughput against its models' ceiling,
latency by stage, CPU and memory per process; JSON and Markdown reports."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console

from ..config import get_settings
from ..durations import parse_duration

console = Console(stderr=True)


def bench(
    seconds: float = typer.Option(30.0, min=5, help="seconds of steady state measured at saturation, per backend"),
    ramp: float = typer.Option(10.0, min=0, help="seconds of saturating flow before the steady state (not measured)"),
    null_models: bool = typer.Option(
        False,
        "--null-models",
        help="also the pipeline with each forward pass replaced by a fixed answer: its own capacity (bench only)",
    ),
    images: int = typer.Option(600, min=1, help="--device cuda: images through the in-process GPU pipeline"),
    latency_images: int = typer.Option(150, min=1, help="images at half the sustained rate, per backend"),
    size: str = typer.Option("640x480", help="WIDTHxHEIGHT of the JPEGs dropped into the bucket"),
    backends: str = typer.Option("onnx,torch", help="comma-separated CPU backends to compare: onnx, torch"),
    device: str = typer.Option("cpu", help="cpu: the running stack; cuda: ceiling and in-process pipeline on the GPU"),
    quick: bool = typer.Option(False, "--quick", help="a few images, the configured backend only, no restarts"),
    out: Path = typer.Option(None, help="folder for the JSON and Markdown reports (default: <data dir>/bench)"),
    functions_status: Path = typer.Option(
        None,
        help="the status.json of a supervisor started apart from the stack "
        "(its replicas' CPU and memory; default: the stack's)",
    ),
    cluster: bool = typer.Option(
        False,
        "--cluster",
        help="measure the cluster `triptych cluster up` made: CPU per image per host; the functions run as they are",
    ),
    scaling: bool = typer.Option(
        False,
        "--scaling",
        help="the scaler instead: idle CPU static vs autoscaled, a "
        "burst's drain, cold starts, flaps over a bursty stream",
    ),
    burst: int = typer.Option(1500, min=1, help="--scaling: images in the burst"),
    bursty_minutes: float = typer.Option(10.0, min=0, help="--scaling: minutes of bursty stream (0: skip)"),
    wakes: int = typer.Option(10, min=0, help="--scaling: cold starts measured (0: skip)"),
    idle_s: float = typer.Option(60.0, min=0, help="--scaling: seconds of idle measured per mode (0: skip)"),
    soak: str = typer.Option(
        None,
        "--soak",
        help="a soak instead, this long (30m, 2h, 90s): a steady stream, "
        "sampled every minute, with a verdict on what grows",
    ),
    load: float = typer.Option(0.8, min=0.05, max=1.0, help="--soak: the share of the measured sustainable rate"),
    sample_s: float = typer.Option(60.0, min=5, help="--soak: seconds between samples"),
) -> None:
    """Measure the pipeline: ceiling, sustained images/s, latency by stage, CPU and memory per process."""
    if soak is not None:
        _soak(parse_soak(soak), load, sample_s, out)
        return
    if scaling:
        from ..benchmark import scaler_bench as scaling_bench

        settings = get_settings()
        result = scaling_bench.run_scaling_bench(
            settings, burst=burst, idle_s=idle_s, wakes=wakes, bursty_minutes=bursty_minutes, report=console.print
        )
        folder = out or settings.data_dir / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(result["started_at"]))
        (folder / f"scaling-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
        (folder / f"scaling-{stamp}.md").write_text(scaling_bench.markdown(result))
        print(scaling_bench.markdown(result))
        console.print(f"reports: {folder}/scaling-{stamp}.json and .md")
        return
    from ..benchmark.report import markdown, write
    from ..benchmark.run import BenchOptions, run_bench
    from ..cluster.manager import Cluster
    from ..models.backends import resolve

    settings = get_settings()
    hosts, roles = None, None
    manager = Cluster(settings)
    topology = manager.topology()
    # --cluster, or this CLI following an up cluster (`triptych cluster up`): per host.
    if cluster or (topology is not None and settings.kafka_url == topology.kafka_bootstrap):
        if topology is None:
            raise typer.BadParameter("--cluster: no cluster is up (`triptych cluster up` first)")
        settings = manager.client_settings()
        hosts = manager.host_pids
        roles = {h.name: list(h.roles) for h in topology.hosts}
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError as exc:
        raise typer.BadParameter(f"--size must be WIDTHxHEIGHT, e.g. 640x480 (got {size!r})") from exc
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise typer.BadParameter(f"--size: each side between 16 and 8192 pixels (got {size!r})")
    if null_models and (functions_status or hosts):
        raise typer.BadParameter(
            "--null-models restarts this stack's own functions: not with --functions-status or on a cluster"
        )
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    if not chosen or set(chosen) - {"onnx", "torch"}:
        raise typer.BadParameter(f"--backends takes onnx and/or torch (got {backends!r}); a GPU: --device cuda")
    if device not in ("cpu", "cuda"):
        raise typer.BadParameter("--device is cpu or cuda")
    if quick:
        options = BenchOptions(
            steady_s=min(seconds, 5.0),
            ramp_s=min(ramp, 2.0),
            null_models=null_models,
            latency_images=min(latency_images, 16),
            width=width,
            height=height,
            backends=[resolve(settings.infer_backend)],
            ceiling_images=32,
            warmup=8,
            restart=False,
            timeout_s=300,
            functions_status=functions_status,
            cluster_hosts=hosts,
            cluster_roles=roles,
        )
    else:
        options = BenchOptions(
            steady_s=seconds,
            ramp_s=ramp,
            null_models=null_models,
            latency_images=latency_images,
            width=width,
            height=height,
            backends=chosen,
            functions_status=functions_status,
            cluster_hosts=hosts,
            cluster_roles=roles,
        )
    try:
        if device == "cuda":
            from ..benchmark.gpu import run_gpu_bench

            result = run_gpu_bench(settings, images=images, width=width, height=height, report=console.print)
        else:
            result = run_bench(settings, options, report=console.print)
    except (TimeoutError, RuntimeError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    json_path, md_path = write(result, out or settings.data_dir / "bench")
    print(markdown(result))
    console.print(f"reports: {json_path} and {md_path}")


def parse_soak(text: str) -> float:
    """--soak as seconds: a duration such as 30m, 2h, 90s or 1.5h (triptych.durations), above zero."""
    try:
        value = parse_duration(text)
    except ValueError:
        raise typer.BadParameter(f"a duration such as 30m, 2h or 90s (got {text!r})", param_hint="--soak") from None
    if value <= 0:
        raise typer.BadParameter("a duration above zero", param_hint="--soak")
    return value


def _soak(duration_s: float, load: float, sample_s: float, out: Path | None) -> None:
    from ..benchmark import soak as soak_bench
    from ..benchmark.preflight import require_stack

    settings = get_settings()
    require_stack(settings)
    folder = out or settings.data_dir / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"soak-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.partial.json"
    result = soak_bench.run_soak(
        settings, duration_s, load, sample_s=min(sample_s, duration_s), report=console.print, partial=partial
    )
    partial.unlink(missing_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(result["started_at"]))
    (folder / f"soak-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
    (folder / f"soak-{stamp}.html").write_text(soak_bench.html_report(result))
    (folder / f"soak-{stamp}.md").write_text(soak_bench.markdown(result))
    print(soak_bench.markdown(result))
    console.print(f"reports: {folder}/soak-{stamp}.json, .html and .md")


def register(app: typer.Typer) -> None:
    app.command()(bench)
