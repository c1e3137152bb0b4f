"""The MLRun project: every Triptych function, its triggers, replicas, env and
resources, declared once. Running this file writes `project.yaml`, which both a
Nuclio deployment (`triptych deploy`) and the local runner read.

    python projects/triptych_project.py            # rewrite project.yaml, functions/*/function.yaml and the chart's functions
    python projects/triptych_project.py --check    # fail if any of them is stale

Brokers written into the Kafka triggers come from TRIPTYCH_KAFKA_BOOTSTRAP when
set (use the in-cluster address before deploying); the local runner always uses
the Kafka of its own settings.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path

# Without an MLRun API server every MLRun call warns that none is configured; that
# is expected here (the project is only declared), so keep the output readable.
os.environ.setdefault("MLRUN_LOG_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parents[1]
# Relative to ROOT (the working directory while declaring), so project.yaml is portable.
FUNCTIONS = Path("functions")
JOBS = {
    "gather": (Path("projects/jobs/gather_data.py"), "gather_data"),
    "train": (Path("projects/jobs/train_model.py"), "train_model"),
    "data-quality": (Path("projects/jobs/lifecycle_jobs.py"), "data_quality"),
    "metrics": (Path("projects/jobs/lifecycle_jobs.py"), "metrics_snapshot"),
    "shadow-gate": (Path("projects/jobs/lifecycle_jobs.py"), "shadow_gate"),
    "drift": (Path("projects/jobs/lifecycle_jobs.py"), "drift_watch"),
}


def declare(project_dir: Path, functions_dir: Path = FUNCTIONS):
    import mlrun

    from triptych.config import Settings
    from triptych.contracts import (
        TOPIC_IMAGES_INPUT,
        TOPIC_MINIO_EVENTS,
        TOPIC_MINIO_EVENTS_DURABLE,
        TOPIC_PREDICTIONS,
    )
    from triptych.models.zoo import ARCHITECTURES
    from triptych.runtime.declare import (
        cron_trigger,
        http_trigger,
        kafka_trigger,
        nuclio_function,
    )
    from triptych.sdk import Delivery
    from triptych.security.db_roles import COMPONENT_ENV

    settings = Settings()  # read now, not cached: the declaration follows the current environment
    brokers = settings.kafka_bootstrap or "127.0.0.1:9092"
    project = mlrun.get_or_create_project("triptych", context=str(project_dir), save=False)

    functions = {
        "upload": nuclio_function(
            "upload",
            functions_dir / "upload" / "handler.py",
            min_replicas=1,
            max_replicas=4,
            cpu="500m",
            memory="512Mi",
            triggers={
                "http": http_trigger(port=settings.upload_port, max_body_bytes=settings.max_request_bytes, workers=8)
            },
        ),
        "ingest": nuclio_function(
            "ingest",
            functions_dir / "ingest" / "handler.py",
            min_replicas=1,
            max_replicas=3,
            cpu="500m",
            memory="512Mi",
            triggers={
                "minio-events": kafka_trigger(
                    TOPIC_MINIO_EVENTS,
                    "ingest",
                    brokers,
                    Delivery(batch_size=16, batch_wait_ms=10, max_attempts=5, retry_backoff_ms=200),
                ),
                # The same events from MinIO's on-disk queue: objects whose fast event was
                # lost (Kafka away) are ingested from here, the rest dropped (ingress.reconcile).
                "minio-events-durable": kafka_trigger(
                    TOPIC_MINIO_EVENTS_DURABLE,
                    "ingest-reconcile",
                    brokers,
                    Delivery(batch_size=64, batch_wait_ms=50, max_attempts=5, retry_backoff_ms=500),
                ),
                # Dated keys of our own clients whose events died in a MinIO killed mid-send: ingress.sweep.
                "sweep": cron_trigger(interval="60s", body='{"sweep": true}'),
            },
        ),
        "aggregate": nuclio_function(
            "aggregate",
            functions_dir / "aggregate" / "handler.py",
            min_replicas=1,
            max_replicas=6,
            cpu="500m",
            memory="512Mi",
            triggers={
                "predictions": kafka_trigger(
                    TOPIC_PREDICTIONS, "aggregate", brokers, Delivery(batch_size=64, batch_wait_ms=25, max_attempts=5)
                )
            },
        ),
        "retrain": nuclio_function(
            "retrain",
            functions_dir / "retrain" / "handler.py",
            min_replicas=0,
            max_replicas=1,
            cpu="2",
            memory="4Gi",
            # It trains beside the stream, at the lowest priority. torch's OpenMP threads
            # spin at each barrier while their peer is preempted: 2 threads beside busy
            # processes took 728 ms a step against 211 ms passive (a quiet machine: 95
            # against 155; MobileNetV2, batch 16 at 64 px; issue 37).
            env={"OMP_WAIT_POLICY": "PASSIVE"},
            triggers={
                "http": http_trigger(port=settings.retrain_port, max_body_bytes=2**20, workers=2),
                "weekly": cron_trigger(schedule="0 3 * * 0"),
            },
        ),
    }
    for arch in ARCHITECTURES.values():
        # One source, three deployments: each its own consumer group on the image stream.
        # ResNet50 needs about twice the CPU of the other two together: two replicas let
        # the three keep pace with one another (`triptych bench`, one thread each).
        functions[arch.function] = nuclio_function(
            arch.function,
            functions_dir / "infer" / "handler.py",
            min_replicas=2 if arch.name == "resnet50" else 1,
            max_replicas=6,
            cpu="1",
            memory="2Gi",
            env={"TRIPTYCH_MODEL_NAME": arch.name},
            triggers={
                "images": kafka_trigger(
                    TOPIC_IMAGES_INPUT,
                    arch.function,
                    brokers,
                    Delivery(batch_size=8, batch_wait_ms=20, max_attempts=3, retry_backoff_ms=500),
                )
            },
        )
    # Batches of 8: on two cores, 16 bought no more throughput and doubled the wait of an
    # image for its batch's forward pass (p50 at half load 244 ms vs 811 ms, `triptych bench`).
    # The inference replicas beside the champions, both asleep until they have work, each
    # every model's at once on the live stream, in its own group from the newest offset:
    # - challengers in shadow (a shadow phase judges what arrives from now on), woken when
    #   the workflow makes one, stopped again once the gate has decided;
    # - int8 beside fp32: every champion's int8 export, once `triptych models quantize`
    #   publishes one; the Compare page sets its answers beside fp32's (off by default:
    #   on CPUs without VNNI int8 gains little).
    # At zero otherwise: awake, they would poll every image only to drop it.
    for name, role, wake_when, memory in (
        ("infer-shadow", "shadow", "challenger", "4Gi"),
        ("infer-int8", "int8", "int8", "2Gi"),
    ):
        functions[name] = nuclio_function(
            name,
            functions_dir / "infer" / "handler.py",
            min_replicas=0,
            max_replicas=1,
            cpu="1",
            memory=memory,
            wake_when=wake_when,
            env={"TRIPTYCH_MODEL_ROLE": role},
            triggers={
                "images": kafka_trigger(
                    TOPIC_IMAGES_INPUT,
                    name,
                    brokers,
                    Delivery(batch_size=8, batch_wait_ms=20, max_attempts=3, retry_backoff_ms=500),
                    initial_offset="latest",
                )
            },
        )
    # The scheduled jobs, each also runnable by hand (`triptych jobs run NAME`).
    functions["jobs"] = nuclio_function(
        "jobs",
        functions_dir / "jobs" / "handler.py",
        min_replicas=1,
        max_replicas=1,
        cpu="1",
        memory="2Gi",
        triggers={
            "shadow-gate": cron_trigger(interval="60s", body='{"job": "shadow-gate"}'),
            "drift": cron_trigger(interval="60s", body='{"job": "drift"}'),
            "metrics": cron_trigger(schedule="5 * * * *", body='{"job": "metrics"}'),
            "data-quality": cron_trigger(schedule="30 2 * * *", body='{"job": "data-quality"}'),
        },
    )
    for name, fn in functions.items():
        # Each logs in to PostgreSQL as its component's own role (triptych.security.db_roles).
        fn.set_env(COMPONENT_ENV, "infer" if name.startswith("infer-") else name)
        project.set_function(fn, name=name)
    # MLRun jobs: the workflow's steps and the scheduled jobs (run locally or as pods).
    for name, (path, handler) in JOBS.items():
        job = mlrun.code_to_function(name=name, filename=str(path), kind="job", image="mlrun/mlrun", handler=handler)
        job.spec.build.code_origin = str(path)  # the path, not "<remote>#<commit>", so project.yaml stays stable
        project.set_function(job, name=name)
    project.set_workflow("retrain", str(Path("projects") / "workflows" / "retrain.py"))
    return project


def render(functions_dir: Path = FUNCTIONS) -> str:
    """project.yaml's text, with sorted keys so that a re-render is byte-identical.
    Pass an absolute `functions_dir` for a project file written outside the repository."""
    import yaml

    previous = os.getcwd()
    os.chdir(ROOT)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # MLRun checks that a workflow file exists under the project's context.
            (Path(tmp) / "projects").symlink_to(ROOT / "projects")
            project = declare(Path(tmp), functions_dir)
            project.save(filepath=str(Path(tmp) / "project.yaml"))
            data = yaml.safe_load((Path(tmp) / "project.yaml").read_text())
    finally:
        os.chdir(previous)
    header = "# Written by projects/triptych_project.py: edit the declaration there, not this file.\n"
    return header + yaml.safe_dump(data, sort_keys=True, width=120)


def render_function_files(project_text: str) -> dict[Path, str]:
    """Each function folder's `function.yaml`: the Nuclio config of every function
    declared from it (the infer folder's source serves four), rendered from the
    project text; what `nuctl deploy --file` takes, and what the folder's README describes."""
    import yaml

    from triptych.runtime.deploy import function_config
    from triptych.runtime.spec import nuclio_entries

    by_folder: dict[Path, list[dict]] = {}
    for entry in nuclio_entries(yaml.safe_load(project_text)):
        config = function_config(entry, ROOT)
        source = Path(entry["spec"]["spec"]["build"]["origin_filename"])
        by_folder.setdefault(source.parent, []).append(config)
    header = (
        "# Written by projects/triptych_project.py from the one declaration there: edit it, not this file.\n"
        "# Nuclio function config(s) of this folder's handler (`nuctl deploy --file`, one document each).\n"
    )
    return {
        folder / "function.yaml": header + yaml.safe_dump_all(configs, sort_keys=True, width=120)
        for folder, configs in sorted(by_folder.items())
    }


CHART_FUNCTIONS = Path("infra/helm/triptych/files/functions.yaml")


def render_chart_functions(project_text: str) -> str:
    """The Helm chart's functions (its templates render each as a NuclioFunction and,
    where it scales on lag, a KEDA ScaledObject) from the same project text."""
    import yaml

    from triptych.kube.chart_functions import chart_functions
    from triptych.runtime.spec import nuclio_entries

    header = (
        "# Written by projects/triptych_project.py from the one declaration there: edit it, not this file.\n"
        "# What the chart's templates/functions.yaml and templates/scaledobjects.yaml render.\n"
    )
    return header + yaml.safe_dump(
        chart_functions(nuclio_entries(yaml.safe_load(project_text)), ROOT), sort_keys=True, width=120
    )


def rendered_files() -> dict[Path, str]:
    """Every file the declaration writes, relative to the repository root."""
    text = render()
    return {Path("project.yaml"): text, **render_function_files(text), CHART_FUNCTIONS: render_chart_functions(text)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if project.yaml, a function.yaml or the chart's functions differ from the declaration",
    )
    args = parser.parse_args()
    stale = 0
    for relative, text in rendered_files().items():
        target = ROOT / relative
        current = target.read_text() if target.exists() else ""
        if args.check:
            if current != text:
                sys.stdout.writelines(
                    difflib.unified_diff(current.splitlines(True), text.splitlines(True), str(relative), "declared")
                )
                stale += 1
        elif current != text:
            target.write_text(text)
            print(f"wrote {relative}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
