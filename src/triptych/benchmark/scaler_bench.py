"""`triptych bench --scaling`: what the scaler buys and what it costs, measured side
by side in one run on the running stack (its supervisor is switched between modes
through the same pins `triptych functions scale` writes, and put back after):

- **idle**: the function replicas' CPU (cores) and memory over `idle_s` with
  nothing to do, *static* (every function at its declared min, 1 where min is 0:
  what ran before the scaler) against *autoscaled* (the scaler owns every
  function whose min and max differ);
- **burst**: `burst` images dropped into the bucket at once, first put to last
  comparison, *static at max* against *autoscaled* (from min, up to the same max)
  and *static at min*;
- **cold start**: a function at zero woken `wakes` times, by an HTTP request held
  on its port (the real `retrain` handler) and by a waiting Kafka message (the
  real `ingest` handler, given an event of an image it already has, so it changes
  nothing), under a supervisor of its own with a short idle period: p50 and p95 of
  event sent → handled (answered; offset committed);
- **flaps**: the scaler's direction reversals over a bursty stream of
  `bursty_minutes` (bursts of `bursty_images` every `bursty_period_s`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from ..bus import GroupLag, admin_client
from ..bus import consumer as make_consumer
from ..bus import producer as make_producer
from ..config import Settings
from ..contracts import TOPIC_MINIO_EVENTS
from ..control import AUTO, desired_path, read_status, replace_desired
from ..db.connection import Database
from ..runtime.nuclio_replica import free_port
from ..runtime.scaler_loop import bounds_of, scalable
from ..runtime.spec import load_functions
from . import arithmetic, pipeline
from .resources import idle_cores, tracked_processes


def _modes(settings: Settings) -> dict[str, dict[str, int | str]]:
    """The pins of each mode, for every declared function."""
    specs = load_functions(settings.project_file)
    runtime = settings.functions_runtime
    static = {
        n: max(1, bounds_of(s, runtime).min_replicas) if scalable(s, runtime) else s.replicas for n, s in specs.items()
    }
    high = {n: bounds_of(s, runtime).ceiling if scalable(s, runtime) else s.replicas for n, s in specs.items()}
    return {
        "static": static,
        "static at max": high,
        "autoscaled": {n: AUTO if scalable(s, runtime) else s.replicas for n, s in specs.items()},
    }


def _set_mode(settings: Settings, pins: dict[str, int | str]) -> None:
    replace_desired(settings, pins)


def _settled(settings: Settings, pins: dict[str, int | str], mins: dict[str, int]) -> bool:
    functions = read_status(settings).get("functions", {})
    for name, pin in pins.items():
        entry = functions.get(name)
        want = mins[name] if pin == AUTO else pin
        if entry is None or entry["desired"] != want or entry.get("draining"):
            return False
        if sum(r["state"] == "running" for r in entry["replicas"]) != want:
            return False
    return True


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout_s:.0f} s")
        time.sleep(1.0)


def _switch(settings: Settings, mode: str, report) -> None:
    pins = _modes(settings)[mode]
    specs = load_functions(settings.project_file)
    mins = {n: bounds_of(s, settings.functions_runtime).min_replicas for n, s in specs.items()}
    _set_mode(settings, pins)
    report(f"  {mode}: waiting for the replicas to settle")
    # Autoscaled, the min-0 functions stop only after the idle period, the rest after the window.
    _wait(
        lambda: _settled(settings, pins, mins),
        settings.scale_idle_to_zero_s + settings.scale_stabilisation_s + 240,
        f"the {mode} replicas",
    )


def _function_rss_mb(settings: Settings) -> float:
    total = 0
    for entry in read_status(settings).get("functions", {}).values():
        for replica in entry["replicas"]:
            try:
                total += psutil.Process(replica["pid"]).memory_info().rss if replica.get("pid") else 0
            except psutil.NoSuchProcess:
                continue
    return round(total / 2**20, 1)


def measure_idle(settings: Settings, idle_s: float) -> dict:
    processes = tracked_processes(settings)
    cores = idle_cores(processes, idle_s)
    functions = sum(v for k, v in cores.items() if "[" in k)
    return {
        "function_cores": round(functions, 3),
        "stack_cores": round(sum(cores.values()), 3),
        "function_rss_mb": _function_rss_mb(settings),
        "replicas": {n: e["desired"] for n, e in read_status(settings).get("functions", {}).items()},
    }


def measure_burst(settings: Settings, db: Database, count: int, timeout_s: float) -> dict:
    """Drop `count` images at once; the peak replicas each function reached meanwhile."""
    peaks: dict[str, int] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            for name, entry in read_status(settings).get("functions", {}).items():
                peaks[name] = max(peaks.get(name, 0), entry["desired"])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        dropped = pipeline.drop(settings, db, pipeline.bench_images(count), timeout_s)
    finally:
        done.set()
        watcher.join()
    return {
        "images": count,
        "drain_s": round(dropped.finished - dropped.started, 1),
        "images_per_s": arithmetic.ratio(count, dropped.finished - dropped.started),
        "peak_replicas": peaks,
    }


def measure_flaps(settings: Settings, db: Database, minutes: float, images: int, period_s: float, report) -> dict:
    before = {n: (e.get("observed") or {}).get("flaps", 0) for n, e in read_status(settings)["functions"].items()}
    started, bursts = time.time(), 0
    while time.time() - started < minutes * 60:
        next_at = time.time() + period_s
        pipeline.drop(settings, db, pipeline.bench_images(images), timeout=period_s * 4)
        bursts += 1
        time.sleep(max(0.0, next_at - time.time()))
    after = {n: (e.get("observed") or {}).get("flaps", 0) for n, e in read_status(settings)["functions"].items()}
    changes = _decisions_since(db, started)
    report(f"  {bursts} bursts of {images}: {sum(changes.values())} scaling decisions")
    return {
        "minutes": minutes,
        "bursts": bursts,
        "images_per_burst": images,
        "period_s": period_s,
        "flaps": {n: after.get(n, 0) - before.get(n, 0) for n in after},
        "decisions": changes,
    }


def _decisions_since(db: Database, since: float) -> dict[str, int]:
    def read(cur):
        cur.execute(
            "SELECT component, count(*) AS n FROM system_events WHERE event_type = 'function_scaled' "
            "AND created_at >= to_timestamp(%s) GROUP BY component",
            (since,),
        )
        return {row["component"]: row["n"] for row in cur.fetchall()}

    return db.transaction(read)


# --- cold starts: a supervisor of the bench's own -----------------------------------------


def _cold_project(folder: Path, settings: Settings, http_port: int, topic: str) -> Path:
    """The real retrain and ingest handlers, at zero, on a port and a topic of the bench's."""
    import mlrun

    from ..runtime.declare import http_trigger, kafka_trigger, nuclio_function

    root = Path(__file__).resolve().parents[3] / "functions"
    project = mlrun.get_or_create_project("triptych-cold-start", context=str(folder), save=False)
    functions = {
        "retrain": nuclio_function(
            "retrain",
            root / "retrain" / "handler.py",
            min_replicas=0,
            max_replicas=1,
            triggers={"http": http_trigger(port=http_port, max_body_bytes=2**20)},
        ),
        "ingest": nuclio_function(
            "ingest",
            root / "ingest" / "handler.py",
            min_replicas=0,
            max_replicas=1,
            # Named as the real one: ingest's init reads its delivery plan by this name.
            triggers={"minio-events": kafka_trigger(topic, f"{topic}-ingest", settings.kafka_url)},
        ),
    }
    for name, fn in functions.items():
        project.set_function(fn, name=name)
    project.save()
    return folder / "project.yaml"


def _one_event(settings: Settings) -> bytes:
    """The newest MinIO event (of the bursts just dropped): its image exists, so the
    woken ingest finds it registered and publishes it once more, which the
    consumers downstream take as the duplicate it is."""
    from kafka import TopicPartition

    consumer = make_consumer(settings)
    try:
        partitions = [TopicPartition(TOPIC_MINIO_EVENTS, p) for p in consumer.partitions_for_topic(TOPIC_MINIO_EVENTS)]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp, end in ends.items():
            if end:
                consumer.seek(tp, end - 1)
                for records in consumer.poll(timeout_ms=10_000).values():
                    if records:
                        return records[-1].value
    finally:
        consumer.close()
    raise RuntimeError(f"no event on {TOPIC_MINIO_EVENTS} to replay: drop an image first")


def measure_cold_starts(settings: Settings, wakes: int, report) -> dict:
    topic = f"bench-cold-{os.getpid()}"
    admin = admin_client(settings)
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    event = _one_event(settings)
    port = free_port("127.0.0.1")
    http_s, kafka_s = [], []
    with tempfile.TemporaryDirectory(prefix="triptych-cold-") as tmp:
        folder = Path(tmp)
        project = _cold_project(folder, settings, port, topic)
        env = {
            **os.environ,
            "TRIPTYCH_DATA_DIR": str(folder / "data"),
            "TRIPTYCH_AUTOSCALE": "true",
            "TRIPTYCH_SCALE_TICK_S": "1",
            "TRIPTYCH_SCALE_IDLE_TO_ZERO_S": "2",
            "TRIPTYCH_SCALE_STABILISATION_S": "2",
            "TRIPTYCH_SUPERVISOR_PORT": "0",
        }
        with open(folder / "supervisor.log", "ab") as log:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "triptych.runtime.supervisor", "--project", str(project)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        cold = settings.model_copy(update={"data_dir": folder / "data"})
        lag = GroupLag(settings, f"{topic}-ingest", topic)
        producer = make_producer(settings)
        try:
            for _ in range(wakes):
                _wait(lambda: _at_zero(cold, ("retrain", "ingest")), 60, "both functions at zero")
                sent = time.perf_counter()
                code = _answer(f"http://127.0.0.1:{port}/retrain")  # any answer (401 without a key) is the handler's
                http_s.append(time.perf_counter() - sent)
                if code >= 500:
                    raise RuntimeError(f"the woken retrain handler answered {code}")
                sent = time.perf_counter()
                producer.send(topic, value=event).get(timeout=10)
                _wait(lambda: lag() == 0, 60, "the replayed event handled")
                kafka_s.append(time.perf_counter() - sent)
        finally:
            producer.close()
            lag.close()
            supervisor.terminate()
            supervisor.wait(timeout=90)
            admin.delete_topics([topic])
            admin.close()
    report(
        f"  cold start over {wakes} wakes: HTTP p50 {arithmetic.percentile(http_s, 50):.2f} s, "
        f"Kafka p50 {arithmetic.percentile(kafka_s, 50):.2f} s"
    )
    return {
        "wakes": wakes,
        "http_retrain_s": {
            "p50": arithmetic.percentile(http_s, 50),
            "p95": arithmetic.percentile(http_s, 95),
            "all": [round(s, 2) for s in http_s],
        },
        "kafka_ingest_s": {
            "p50": arithmetic.percentile(kafka_s, 50),
            "p95": arithmetic.percentile(kafka_s, 95),
            "all": [round(s, 2) for s in kafka_s],
        },
    }


def _answer(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _at_zero(settings: Settings, names: tuple[str, ...]) -> bool:
    functions = read_status(settings).get("functions", {})
    return all(
        n in functions
        and functions[n]["desired"] == 0
        and not functions[n]["replicas"]
        and not functions[n].get("draining")
        for n in names
    )


def run_scaling_bench(
    settings: Settings,
    burst: int = 1500,
    idle_s: float = 60.0,
    wakes: int = 10,
    bursty_minutes: float = 10.0,
    bursty_images: int = 150,
    bursty_period_s: float = 45.0,
    report=print,
) -> dict:
    from .preflight import require_stack
    from .report import commit

    require_stack(settings)
    db = Database(settings)
    path = desired_path(settings)
    saved = json.loads(path.read_text()) if path.exists() else None
    result = {
        "kind": "scaling",
        "started_at": time.time(),
        "commit": commit(),
        "cores": os.cpu_count(),
        "policy": {
            k: getattr(settings, k)
            for k in (
                "scale_tick_s",
                "scale_lag_per_replica",
                "scale_target_busy",
                "scale_stabilisation_s",
                "scale_idle_to_zero_s",
            )
        },
        "idle": {},
        "burst": {},
    }
    try:
        for mode in ("static", "autoscaled") if idle_s > 0 else ():
            _switch(settings, mode, report)
            result["idle"][mode] = measure_idle(settings, idle_s)
            report(
                f"  idle, {mode}: {result['idle'][mode]['function_cores']} cores, "
                f"{result['idle'][mode]['function_rss_mb']} MB in the functions"
            )
        for mode in ("static at max", "autoscaled", "static"):
            _switch(settings, mode, report)
            result["burst"][mode] = measure_burst(settings, db, burst, timeout_s=burst * 2)
            report(f"  burst of {burst}, {mode}: drained in {result['burst'][mode]['drain_s']} s")
        if wakes > 0:
            result["cold_start"] = measure_cold_starts(settings, wakes, report)
        if bursty_minutes > 0:
            _switch(settings, "autoscaled", report)
            result["flaps"] = measure_flaps(settings, db, bursty_minutes, bursty_images, bursty_period_s, report)
    finally:
        replace_desired(settings, saved)  # the pins as they were (None: there were none)
    idle, drained = result["idle"], result["burst"]
    result["ratios"] = {
        "burst_drain_autoscaled_over_static_at_max": arithmetic.ratio(
            drained["autoscaled"]["drain_s"], drained["static at max"]["drain_s"]
        ),
        "burst_drain_autoscaled_over_static": arithmetic.ratio(
            drained["autoscaled"]["drain_s"], drained["static"]["drain_s"]
        ),
    }
    if idle:
        result["ratios"].update(
            {
                "idle_cores_autoscaled_over_static": arithmetic.ratio(
                    idle["autoscaled"]["function_cores"], idle["static"]["function_cores"]
                ),
                "idle_rss_autoscaled_over_static": arithmetic.ratio(
                    idle["autoscaled"]["function_rss_mb"], idle["static"]["function_rss_mb"]
                ),
            }
        )
    result["finished_at"] = time.time()
    return result


def markdown(result: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(result["started_at"]))
    idle, burst, cold = result["idle"], result["burst"], result.get("cold_start", {})
    lines = [
        f"# Triptych scaling bench, {when} UTC, commit {result.get('commit') or 'unknown'}",
        "",
        f"{result['cores']} cores; policy {json.dumps(result['policy'])}",
        "",
    ]
    if idle:
        lines += [
            "| idle, over the window | static | autoscaled | ratio |",
            "|---|---|---|---|",
            f"| function replicas' CPU (cores) | {idle['static']['function_cores']} | "
            f"{idle['autoscaled']['function_cores']} | {result['ratios']['idle_cores_autoscaled_over_static']} |",
            f"| function replicas' memory (MB) | {idle['static']['function_rss_mb']} | "
            f"{idle['autoscaled']['function_rss_mb']} | {result['ratios']['idle_rss_autoscaled_over_static']} |",
            f"| the whole stack's CPU (cores) | {idle['static']['stack_cores']} | "
            f"{idle['autoscaled']['stack_cores']} | |",
            "",
        ]
    lines += ["| burst | drained in (s) | images/s | peak replicas |", "|---|---|---|---|"]
    for mode, run in burst.items():
        peaks = ", ".join(f"{n} {c}" for n, c in sorted(run["peak_replicas"].items()) if c)
        lines.append(f"| {run['images']} images, {mode} | {run['drain_s']} | {run['images_per_s']} | {peaks} |")
    if cold:
        lines += [
            "",
            f"| cold start, {cold['wakes']} wakes | p50 (s) | p95 (s) |",
            "|---|---|---|",
            f"| HTTP request held, `retrain` | {cold['http_retrain_s']['p50']:.2f} | "
            f"{cold['http_retrain_s']['p95']:.2f} |",
            f"| waiting Kafka message, `ingest` | {cold['kafka_ingest_s']['p50']:.2f} | "
            f"{cold['kafka_ingest_s']['p95']:.2f} |",
        ]
    if "flaps" in result:
        f = result["flaps"]
        lines += [
            "",
            f"Bursty stream: {f['bursts']} bursts of {f['images_per_burst']} every {f['period_s']:.0f} s "
            f"over {f['minutes']:.0f} min: flaps {sum(f['flaps'].values())} "
            f"({json.dumps({k: v for k, v in f['flaps'].items() if v})}), "
            f"decisions {json.dumps(f['decisions'])}",
        ]
    return "\n".join(lines) + "\n"
