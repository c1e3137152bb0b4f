"""One `triptych bench` run: the ceiling, then for each backend the pipeline at
saturation (throughput, CPU per image per process) and at half that rate
(latency by stage), then memory; everything in one report, side by side."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from ..db.connection import Database
from ..models.backends import available_cores, default_threads, resolve
from ..runtime.spec import load_functions
from ..stack.manager import Stack
from . import arithmetic, ceiling, inprocess, pipeline, resources
from .preflight import require_stack
from .report import report_header


@dataclass
class BenchOptions:
    steady_s: float = 30.0  # the saturating flow's steady state, measured (per backend)
    ramp_s: float = 10.0  # the flow before it, not measured (queues fill, replicas scale, JIT warms)
    backlog: int = 300  # images in flight at most during the flow: the drain after it stays short
    latency_images: int = 150  # at half the sustained rate, per backend
    width: int = 640
    height: int = 480
    backends: list[str] = field(default_factory=lambda: ["onnx", "torch"])
    ceiling_images: int = 256
    writers: int = 4
    timeout_s: float = 600.0
    warmup: int = 120  # also warms Kafka's JIT: the first hundred images after `triptych up` cost it 3x the CPU
    restart: bool = True  # restart the functions with each backend (False: measure what runs)
    # Also the pipeline with every forward pass replaced by a fixed answer: its own capacity.
    null_models: bool = False
    functions_status: Path | None = None  # another supervisor's status.json (default: the stack's)
    # A cluster's hosts: {host: its pids now}, asked before each measure. The CPU is
    # then counted per host, and the functions, on other hosts, are measured as they run.
    cluster_hosts: Callable[[], dict[str, list[int]]] | None = None
    cluster_roles: dict[str, list[str]] | None = None  # host -> its roles, into the report

    def tracked(self, settings: Settings) -> list[resources.Tracked]:
        if self.cluster_hosts is not None:
            return resources.host_processes(self.cluster_hosts())
        return resources.tracked_processes(settings, self.functions_status)


# How long the idle CPU of every process is measured before a run (heartbeats, polls).
IDLE_WINDOW_S = 10.0


def inference_batch(settings: Settings, models: list[str]) -> int:
    functions = load_functions(settings.project_file)
    sizes = [
        t.delivery.batch_size
        for name, fn in functions.items()
        if name.startswith("infer-") and fn.env.get("TRIPTYCH_MODEL_NAME") in models
        for t in fn.kafka_triggers
    ]
    return max(sizes, default=1)


NULL_MODELS_ENV = "TRIPTYCH_BENCH_NULL_MODELS"


def restart_functions(settings: Settings, backend: str, null_models: bool = False) -> None:
    """The supervisor and its replicas inherit the backend (and the null stand-in) from the environment."""
    os.environ["TRIPTYCH_INFER_BACKEND"] = backend
    if null_models:
        os.environ[NULL_MODELS_ENV] = "true"
    else:
        os.environ.pop(NULL_MODELS_ENV, None)
    functions = Stack(settings).service("functions")
    functions.stop()
    functions.start()


def measure_pipeline(settings: Settings, db: Database, backend: str, options: BenchOptions) -> dict:
    warm = pipeline.bench_images(options.warmup, options.width, options.height)
    pipeline.drop(settings, db, warm, timeout=options.timeout_s, writers=options.writers)  # loads and warms models
    templates = pipeline.bench_images(48, options.width, options.height)
    processes = options.tracked(settings)
    resources.wait_idle(processes)
    idle = resources.idle_cores(processes, IDLE_WINDOW_S)
    # No watcher here: at saturation the bench's own CPU is kept to the puts. The
    # figures are the steady state's: the ramp before it and the drain after it are out.
    with resources.CpuMeter(lambda: options.tracked(settings)) as meter:
        saturated = pipeline.flow(
            settings,
            db,
            templates,
            options.ramp_s,
            options.steady_s,
            options.timeout_s,
            options.writers,
            options.backlog,
        )
    start, end = saturated.window
    steady = end - start
    in_window = saturated.in_window()
    sustained = in_window / steady if steady else 0.0
    used = meter.between(start, end)
    cpu = {name: seconds * 1000 / in_window for name, seconds in sorted(used.items())} if in_window else {}
    inference_cpu = sum(ms for name, ms in cpu.items() if arithmetic.champion_inference(name))

    offered = max(sustained * 0.5, 0.5)
    latency_items = pipeline.bench_images(options.latency_images, options.width, options.height)
    settled = resources.wait_idle(processes)
    with pipeline.Watcher(settings) as watcher:
        paced = pipeline.drop(settings, db, latency_items, timeout=options.timeout_s, rate=offered)
        deadline = time.monotonic() + 10  # the last answers may reach the watcher just after their comparison
        while time.monotonic() < deadline and any(
            watcher.times(k, paced.put_done[k], paced.compared_at[k]) is None for k in paced.put_done
        ):
            time.sleep(0.1)
        timed = [t for k in paced.put_done if (t := watcher.times(k, paced.put_done[k], paced.compared_at[k]))]
    return {
        "backend": backend,
        "idle_cores_before_latency": settled,
        "images": len(saturated.put_done),
        "compared": len(saturated.compared_at),
        "seconds": saturated.finished - saturated.started,
        "steady_seconds": steady,
        "compared_in_steady_state": in_window,
        "images_per_s": sustained,
        "cpu_ms_per_image": cpu,
        "cpu_ms_per_image_total": sum(cpu.values()),
        # What each process used idle just before, and the CPU per image without it.
        "idle_cores": idle,
        "marginal_cpu_ms_per_image": arithmetic.marginal_cpu_per_image(cpu, idle, steady, in_window),
        "inference_cpu_ms_per_image": inference_cpu,
        # Every tracked process's CPU in the steady state over its length: of available_cores().
        "cores_busy": sum(used.values()) / steady if steady else 0.0,
        "latency": {
            "offered_per_s": offered,
            "images": len(latency_items),
            "compared": len(paced.compared_at),
            "timed": len(timed),
            **arithmetic.latency_report(timed),
        },
        "peak_rss_mb": resources.peak_rss_mb(options.tracked(settings)),
    }


def run_bench(settings: Settings, options: BenchOptions, report=print) -> dict:
    # Replicas elsewhere (another supervisor, a cluster's workers) are not this host's to check or restart.
    here = options.functions_status is None and options.cluster_hosts is None
    require_stack(settings, functions=here)
    if not here:
        options.restart = False
    models = list(settings.active_models)
    batch = inference_batch(settings, models)
    threads = settings.infer_threads or default_threads(len(models))  # as the functions choose
    db = Database(settings)
    result = report_header(models, batch, threads, options.width, options.height)
    if options.cluster_roles:
        result["cluster_roles"] = options.cluster_roles
    report(
        f"ceiling: {', '.join(options.backends)} x batch 1 and {batch}, {options.ceiling_images} images each; "
        "then the same work in one process"
    )
    variants = [(b, threads, size) for b in options.backends for size in dict.fromkeys((1, batch))]
    with tempfile.TemporaryDirectory(prefix="triptych-bench-") as tmp:
        champions = ceiling.download_champions(settings, models, Path(tmp))
        result["ceiling"] = [
            ceiling.forward_rate(champions, backend, t, size, options.ceiling_images) for backend, t, size in variants
        ]
        # Bytes to comparison in one process with every core: the pipeline without Kafka, MinIO or Postgres.
        data = [
            (item.label, item.data)
            for item in pipeline.bench_images(options.ceiling_images, options.width, options.height)
        ]
        result["inprocess"] = [inprocess.inprocess_rate(champions, options.backends[0], available_cores(), batch, data)]
    configured = resolve(settings.infer_backend)  # what the functions run now ("auto" resolved)
    try:
        for backend in options.backends if options.restart else [configured]:
            if options.restart and backend != os.environ.get("TRIPTYCH_INFER_BACKEND", configured):
                report(f"restarting the functions with backend {backend}")
                restart_functions(settings, backend)
            report(
                f"pipeline ({backend}): {options.ramp_s:g} s of ramp and {options.steady_s:g} s of steady state "
                f"at saturation, then {options.latency_images} images at half that rate"
            )
            result["pipeline"].append(measure_pipeline(settings, db, backend, options))
        if options.null_models:
            report("restarting the functions with the null stand-in for every model (bench only)")
            restart_functions(settings, configured, null_models=True)
            report("pipeline (null models): the same flow, each forward pass a fixed answer")
            null_run = measure_pipeline(settings, db, "null", options)
            forgotten = pipeline.forget_null_answers(db)
            report(f"removed the null run's {forgotten} bench images and their fixed answers from the history")
            result["pipeline"].append(
                {**null_run, "null_models": True, "name": "pipeline with null models", "forgotten_images": forgotten}
            )
    finally:
        null_left = os.environ.get(NULL_MODELS_ENV) is not None
        if null_left or (options.restart and os.environ.get("TRIPTYCH_INFER_BACKEND", configured) != configured):
            report(f"restarting the functions with backend {configured} again")
            restart_functions(settings, configured)
    for run in result["pipeline"]:
        # The null stand-in is held against the ceiling of the backend the functions run otherwise.
        compared_to = configured if run.get("null_models") else run["backend"]
        best = max(
            (
                c
                for c in result["ceiling"]
                if c["backend"].startswith(_backend_prefix(compared_to)) and c["batch"] == batch
            ),
            key=lambda c: c["images_per_s"],
            default=None,
        )
        run["ceiling_images_per_s"] = best["images_per_s"] if best else None
        if run.get("null_models"):
            run["null_over_ceiling"] = arithmetic.ratio(run["images_per_s"], best["images_per_s"]) if best else None
            run["pipeline_over_ceiling"] = None  # no model ran: see null_over_ceiling
            run["inference_cpu_over_forward"] = None
            continue
        run["null_models"] = False
        run["pipeline_over_ceiling"] = arithmetic.ratio(run["images_per_s"], best["images_per_s"]) if best else None
        run["inference_cpu_over_forward"] = (
            arithmetic.ratio(run["inference_cpu_ms_per_image"], best["forward_ms_per_image"]) if best else None
        )
    result["finished_at"] = time.time()
    return result


def _backend_prefix(kind: str) -> str:
    return {"onnx": "onnxruntime", "torch": "torch-cpu", "cuda": "torch-cuda"}.get(kind, kind)
