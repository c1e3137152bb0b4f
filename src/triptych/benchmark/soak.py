"""A soak: the running stack at a steady share of what it sustains, for minutes to
hours, sampled every minute, with a verdict on what grows.

    triptych bench --soak 30m --load 0.8

1. The sustainable rate is measured first (600 images at saturation: a 200-image
   burst, tried first, overstated it by a quarter while the scaler still had
   replicas up from before).
2. Labelled camera-sized JPEGs then go into the bucket at `load` x that rate.
3. Every `sample_s`: each process's RSS and USS, open files and threads; the disk used by
   Kafka, MinIO, Postgres, the logs and Prometheus; the functions' consumer lag
   (from Prometheus); p50/p95 of upload-to-comparison over the last interval;
   images in against images compared.
4. The verdict: memory slope per process (MB/hour, least squares after warm-up),
   disk growth per store (MB/hour), p95 drift (first 5 minutes against the last 5),
   and images lost or compared twice once the stream has drained.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from ..config import Settings
from ..datasets.sources import Item
from ..db.connection import Database
from ..ingress.producers import BucketWriter, Pacer
from ..observe import prometheus
from . import pipeline, resources
from .arithmetic import percentile, rate

DISK_STORES = {"kafka": "kafka", "minio": "minio", "postgres": "postgres", "logs": "logs", "prometheus": "prometheus"}
WARMUP_SHARE = 0.2  # the memory fit starts after this share of the run (caches and pools fill first)
EDGE_S = 300.0  # latency drift: the first 5 minutes against the last 5

_LATENCIES = """
SELECT (extract(epoch FROM c.created_at - i.uploaded_at) * 1000)::float8 AS ms
FROM model_comparisons c JOIN images i USING (image_id)
WHERE i.filename LIKE %s AND c.created_at > to_timestamp(%s) AND c.created_at <= to_timestamp(%s)
"""
_TALLY = """
SELECT count(DISTINCT i.image_id) AS compared, count(*) AS comparisons
FROM model_comparisons c JOIN images i USING (image_id) WHERE i.filename LIKE %s
"""
_REGISTERED = "SELECT count(*) AS n FROM images WHERE filename LIKE %s"


def du_mb(path: Path) -> float:
    """Bytes under `path` in MB. Servers create and delete files and folders while
    it walks (MinIO's .minio.sys/tmp): whatever vanishes is skipped, never raised."""
    total = 0
    for folder, _dirs, files in os.walk(path):  # os.walk ignores folders that vanish
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total / 2**20


def process_sample(tracked: list[resources.Tracked]) -> dict[str, dict]:
    """RSS and USS (MB), open files and threads of each process (a server with its
    children). The memory slope is fitted on USS, the memory only that process holds:
    PostgreSQL's backends come and go and each maps the same shared buffers, so
    their summed RSS jumps with every connection without anything leaking."""
    sample = {}
    for item in tracked:
        family = [item.process] + (item.process.children(recursive=True) if item.with_children else [])
        rss = uss = fds = threads = 0
        for proc in family:
            try:
                with proc.oneshot():
                    memory = proc.memory_full_info()
                    rss += memory.rss
                    uss += memory.uss
                    fds += proc.num_fds()
                    threads += proc.num_threads()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        sample[item.name] = {"rss_mb": rss / 2**20, "uss_mb": uss / 2**20, "fds": fds, "threads": threads}
    return sample


def slope_per_hour(times_s: list[float], values: list[float]) -> float | None:
    """The least-squares slope of values over time, per hour (None with under 3 points)."""
    if len(times_s) < 3 or max(times_s) - min(times_s) <= 0:
        return None
    return float(np.polyfit(np.asarray(times_s) / 3600.0, np.asarray(values, float), 1)[0])


@dataclass
class Stream:
    """Puts images at a fixed rate in a thread until stopped; counts what it put."""

    settings: Settings
    per_s: float
    tag: str
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soak-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        items = pipeline.bench_images(96)
        writer = BucketWriter(self.settings, pipeline.SOURCE)
        pacer = Pacer(self.per_s)
        while not self._stop.is_set():
            pacer.wait()
            item = items[self.sent % len(items)]
            try:
                writer.put(Item(f"{self.tag}-{self.sent:08d}.jpg", item.data, item.label, item.client))
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - a failed put is counted and shown, the soak goes on
                self.failed += 1
                self.errors = (self.errors + [f"{type(exc).__name__}: {exc}"])[-5:]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def measure_sustainable(settings: Settings, db: Database, images: int, timeout_s: float) -> float:
    pipeline.drop(settings, db, pipeline.bench_images(8), timeout=timeout_s)  # models loaded and warm
    drop = pipeline.drop(settings, db, pipeline.bench_images(images), timeout=timeout_s)
    return rate(len(drop.compared_at), drop.started, drop.finished)


def _lag(settings: Settings) -> float | None:
    try:
        return sum(v for _, v in prometheus.instant(settings, "sum(triptych_function_consumer_lag)"))
    except Exception:  # noqa: BLE001 - Prometheus away: the soak goes on without this figure
        return None


def run_soak(
    settings: Settings,
    duration_s: float,
    load: float,
    sample_s: float = 60.0,
    probe_images: int = 600,
    drain_s: float = 300.0,
    report=print,
    partial: Path | None = None,
) -> dict:
    """The soak; with `partial`, the samples so far are written there after each one,
    so that a run stopped early (Ctrl-C, a crash, a full disk) keeps what it measured."""
    db = Database(settings)
    report(f"measuring the sustainable rate ({probe_images} images at saturation)")
    sustainable = measure_sustainable(settings, db, probe_images, timeout_s=600)
    per_s = max(0.2, sustainable * load)
    started = time.time()
    tag = f"soak-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(started))}"
    report(
        f"sustainable {sustainable:.1f} images/s; streaming {per_s:.1f}/s ({load:.0%}) for {duration_s / 60:.0f} min"
    )
    like = f"{tag}-%"
    stream = Stream(settings, per_s, tag)
    stream.start()
    samples: list[dict] = []
    last_at = started
    try:
        while (now := time.time()) < started + duration_s:
            time.sleep(min(sample_s, started + duration_s - now))
            at = time.time()
            samples.append(_sample(settings, db, like, stream, started, last_at, at))
            last_at = at
            if partial is not None:
                partial.write_text(
                    json.dumps(
                        {
                            "kind": "soak",
                            "tag": tag,
                            "started_at": started,
                            "load": load,
                            "offered_per_s": per_s,
                            "samples": samples,
                        },
                        default=str,
                    )
                )
            s = samples[-1]
            report(
                f"{(at - started) / 60:5.1f} min: {s['sent']} in, {s['compared']} compared, "
                f"p95 {s['latency_p95_ms'] or float('nan'):.0f} ms, lag {s['lag']}, "
                f"RSS {sum(p['rss_mb'] for p in s['processes'].values()):.0f} MB, "
                f"disk {sum(s['disk_mb'].values()):.0f} MB"
            )
    finally:
        stream.stop()
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline and _tally(db, like)["compared"] < _registered(db, like):
        time.sleep(2)
    tally = _tally(db, like)
    ended = time.time()
    verdict = _verdict(samples, started, stream.sent, tally, _registered(db, like), duration_s)
    return {
        "kind": "soak",
        "tag": tag,
        "started_at": started,
        "ended_at": ended,
        "duration_s": duration_s,
        "load": load,
        "sustainable_per_s": sustainable,
        "offered_per_s": per_s,
        "sample_s": sample_s,
        "failed_puts": stream.failed,
        "put_errors": stream.errors,
        "samples": samples,
        "verdict": verdict,
    }


def _tally(db: Database, like: str) -> dict:
    return db.transaction(lambda cur: (cur.execute(_TALLY, (like,)), dict(cur.fetchone()))[1])


def _registered(db: Database, like: str) -> int:
    return db.transaction(lambda cur: (cur.execute(_REGISTERED, (like,)), cur.fetchone()["n"])[1])


def _sample(
    settings: Settings, db: Database, like: str, stream: Stream, started: float, since: float, at: float
) -> dict:
    latencies = db.transaction(
        lambda cur: (cur.execute(_LATENCIES, (like, since, at)), [r["ms"] for r in cur.fetchall()])[1]
    )
    tracked = resources.tracked_processes(settings)  # anew each time: a restarted replica has a new pid
    return {
        "t_s": at - started,
        "sent": stream.sent,
        "compared": _tally(db, like)["compared"],
        "lag": _lag(settings),
        "latency_p50_ms": percentile(latencies, 50) if latencies else None,
        "latency_p95_ms": percentile(latencies, 95) if latencies else None,
        "latency_n": len(latencies),
        "processes": process_sample([t for t in tracked if t.name != resources.BENCH_PROCESS]),
        "disk_mb": {store: du_mb(settings.data_dir / folder) for store, folder in DISK_STORES.items()},
    }


def _verdict(samples: list[dict], started: float, sent: int, tally: dict, registered: int, duration_s: float) -> dict:
    after = [s for s in samples if s["t_s"] >= WARMUP_SHARE * duration_s]
    names = sorted({name for s in after for name in s["processes"]})
    memory = {
        name: slope_per_hour(
            [s["t_s"] for s in after if name in s["processes"]],
            [s["processes"][name]["uss_mb"] for s in after if name in s["processes"]],
        )
        for name in names
    }
    stores = sorted({store for s in samples for store in s["disk_mb"]})
    disk = {
        store: slope_per_hour([s["t_s"] for s in samples], [s["disk_mb"][store] for s in samples]) for store in stores
    }
    first = [s["latency_p95_ms"] for s in samples if s["t_s"] <= EDGE_S and s["latency_p95_ms"] is not None]
    last = [s["latency_p95_ms"] for s in samples if s["t_s"] >= duration_s - EDGE_S and s["latency_p95_ms"] is not None]
    drift = (float(np.mean(last)) / float(np.mean(first))) if first and last and np.mean(first) > 0 else None
    return {
        "images": sent,
        "registered": registered,
        "compared": tally["compared"],
        "lost": max(0, sent - tally["compared"]),
        "duplicated": tally["comparisons"] - tally["compared"],
        "memory_slope_mb_per_hour": memory,
        "disk_growth_mb_per_hour": disk,
        "latency_p95_first_5min_ms": float(np.mean(first)) if first else None,
        "latency_p95_last_5min_ms": float(np.mean(last)) if last else None,
        "latency_p95_drift": drift,
        "fds_growth": {
            name: (
                after[-1]["processes"].get(name, {}).get("fds", 0) - after[0]["processes"].get(name, {}).get("fds", 0)
            )
            for name in names
        }
        if after
        else {},
        "threads_growth": {
            name: (
                after[-1]["processes"].get(name, {}).get("threads", 0)
                - after[0]["processes"].get(name, {}).get("threads", 0)
            )
            for name in names
        }
        if after
        else {},
    }


def html_report(result: dict) -> str:
    """One chart per figure, over the run's minutes (plotly, self-contained)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    samples = result["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    names = sorted({n for s in samples for n in s["processes"]})
    stores = sorted({n for s in samples for n in s["disk_mb"]})
    panels = [
        "USS per process (MB: memory only it holds)",
        "open files per process",
        "threads per process",
        "disk per store (MB)",
        "consumer lag (messages)",
        "upload to comparison (ms)",
        "images in and compared",
    ]
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=panels, vertical_spacing=0.035)
    for row, key in enumerate(("uss_mb", "fds", "threads"), start=1):
        for name in names:
            fig.add_trace(
                go.Scatter(
                    x=minutes,
                    y=[s["processes"].get(name, {}).get(key) for s in samples],
                    name=name,
                    legendgroup=name,
                    showlegend=row == 1,
                    mode="lines",
                ),
                row=row,
                col=1,
            )
    for store in stores:
        fig.add_trace(
            go.Scatter(x=minutes, y=[s["disk_mb"][store] for s in samples], name=f"disk: {store}", mode="lines"),
            row=4,
            col=1,
        )
    fig.add_trace(go.Scatter(x=minutes, y=[s["lag"] for s in samples], name="lag", mode="lines"), row=5, col=1)
    for key in ("latency_p50_ms", "latency_p95_ms"):
        fig.add_trace(
            go.Scatter(x=minutes, y=[s[key] for s in samples], name=key.split("_")[1], mode="lines"), row=6, col=1
        )
    for key in ("sent", "compared"):
        fig.add_trace(go.Scatter(x=minutes, y=[s[key] for s in samples], name=key, mode="lines"), row=7, col=1)
    fig.update_xaxes(title_text="minutes", row=len(panels), col=1)
    v = result["verdict"]
    fig.update_layout(
        height=300 * len(panels),
        width=1100,
        template="plotly_white",
        title=f"Soak {result['tag']}: {v['images']} images at {result['offered_per_s']:.1f}/s "
        f"({result['load']:.0%} of {result['sustainable_per_s']:.1f}); lost {v['lost']}, "
        f"duplicated {v['duplicated']}",
    )
    return fig.to_html(include_plotlyjs=True, full_html=True)


def markdown(result: dict) -> str:
    v = result["verdict"]
    lines = [
        f"# Soak {result['tag']}",
        "",
        f"{result['duration_s'] / 60:.0f} min at {result['offered_per_s']:.1f} images/s "
        f"({result['load']:.0%} of the {result['sustainable_per_s']:.1f}/s measured first).",
        "",
        f"- images in {v['images']}, compared {v['compared']}, lost {v['lost']}, duplicated {v['duplicated']}",
        f"- p95 first 5 min {_ms(v['latency_p95_first_5min_ms'])}, last 5 min "
        f"{_ms(v['latency_p95_last_5min_ms'])} (ratio {_num(v['latency_p95_drift'], '{:.2f}')})",
        "",
        "| process | memory slope MB/h (USS) | open files Δ | threads Δ |",
        "|---|---:|---:|---:|",
    ]
    for name, slope in v["memory_slope_mb_per_hour"].items():
        lines.append(
            f"| {name} | {_num(slope, '{:+.1f}')} | {v['fds_growth'].get(name, 0):+d} | "
            f"{v['threads_growth'].get(name, 0):+d} |"
        )
    lines += ["", "| store | growth MB/h |", "|---|---:|"]
    lines += [f"| {store} | {_num(g, '{:+.1f}')} |" for store, g in v["disk_growth_mb_per_hour"].items()]
    return "\n".join(lines) + "\n"


def _ms(value) -> str:
    return f"{value:.0f} ms" if value is not None else "–"


def _num(value, pattern: str) -> str:
    return pattern.format(value) if value is not None else "–"
