"""The bench's report: the JSON as measured, and a Markdown summary of it."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from pathlib import Path

from ..models.backends import available_cores
from .arithmetic import STAGES


def commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def report_header(models: list[str], batch: int, threads: int | None, width: int, height: int) -> dict:
    """What every report starts with: when, which code, which machine, what was run."""
    return {
        "started_at": time.time(),
        "commit": commit(),
        "cores": available_cores(),
        "machine": platform.machine(),
        "models": models,
        "batch": batch,
        "threads": threads,
        "image": {"width": width, "height": height, "format": "jpeg"},
        "pipeline": [],
    }


def _num(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def markdown(result: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(result["started_at"]))
    lines = [
        f"# Triptych bench, {when} UTC, commit {result.get('commit') or 'unknown'}",
        "",
        f"{result['cores']} cores; models {', '.join(result['models'])}; functions' batch {result['batch']}, "
        f"threads per replica {result['threads'] or 'library default'}; "
        f"images {result['image']['width']}x{result['image']['height']} {result['image']['format']}.",
        "",
        "## Ceiling: the three champions' forward passes alone, all three at once",
        "",
        "| backend | threads | batch | images/s (all three) | forward ms/image (sum of the three) |",
        "|---|---|---|---|---|",
    ]
    for c in result["ceiling"]:
        lines.append(
            f"| {c['backend']} | {c['threads'] or 'default'} | {c['batch']} | {_num(c['images_per_s'])} | "
            f"{_num(c['forward_ms_per_image'], 2)} |"
        )
    for run in result["pipeline"]:
        lat = run["latency"]
        null = run.get("null_models")
        title = (
            "## Pipeline with NULL MODELS (each forward pass a fixed answer; bench only)"
            if null
            else (f"## Pipeline, backend {run['backend']}")
        )
        ratio = (
            f"| null models / ceiling (the pipeline's own capacity) | **{_num(run.get('null_over_ceiling'), 2)}** |"
            if null
            else f"| pipeline / ceiling | {_num(run['pipeline_over_ceiling'], 2)} |"
        )
        steady = run.get("steady_seconds")
        lines += [
            "",
            title,
            "",
            "| figure | value |",
            "|---|---|",
            f"| sustained images/s ({run.get('compared_in_steady_state', run['compared'])} compared in "
            f"{_num(steady if steady is not None else run['seconds'])} s of steady state; "
            f"{run['compared']} of {run['images']} in all) | **{_num(run['images_per_s'])}** |",
            f"| ceiling images/s, same backend and batch | {_num(run['ceiling_images_per_s'])} |",
            ratio,
            f"| CPU ms per image, all processes | {_num(run['cpu_ms_per_image_total'])} |",
            f"| CPU ms per image, inference functions | {_num(run['inference_cpu_ms_per_image'])} |",
            f"| inference CPU / bare forward time | {_num(run['inference_cpu_over_forward'], 2)} |",
            f"| cores busy under load | {_num(run['cores_busy'], 2)} of {result['cores']} |",
            f"| latency at {_num(lat['offered_per_s'])} images/s offered: p50 / p95 / p99 ms "
            f"({lat['timed']} timed) | {_num(lat['total_ms']['p50'], 0)} / {_num(lat['total_ms']['p95'], 0)} / "
            f"{_num(lat['total_ms']['p99'], 0)} |",
            "",
            f"Latency by stage (ms, along each image's last answer; its batch held "
            f"{_num(lat['batch_size']['p50'], 0)} images at p50, {_num(lat['batch_size']['p95'], 0)} at p95):",
            "",
            "| stage | p50 | p95 |",
            "|---|---|---|",
        ]
        for stage in STAGES:
            s = lat["stages_ms"][stage]
            lines.append(f"| {stage.replace('_', ' ')} | {_num(s['p50'])} | {_num(s['p95'])} |")
        lines += [
            "",
            "CPU per image and peak memory, per process:",
            "",
            "| process | CPU ms/image | peak RSS MB |",
            "|---|---|---|",
        ]
        for name in sorted(set(run["cpu_ms_per_image"]) | set(run["peak_rss_mb"])):
            lines.append(
                f"| {name} | {_num(run['cpu_ms_per_image'].get(name), 2)} | {_num(run['peak_rss_mb'].get(name), 0)} |"
            )
    if result.get("inprocess"):
        lines += [
            "",
            "## In-process: bytes to comparison in one process (no Kafka, MinIO or database)",
            "",
            "| device | backend | threads | batch | GPU decode | images/s | decode ms/image | "
            "forward ms/image (three) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in result["inprocess"]:
            lines.append(
                f"| {r['device']} | {r['backend']} | {r.get('threads') or 'default'} | {r['batch']} | "
                f"{'yes' if r['gpu_decode'] else 'no'} | {_num(r['images_per_s'])} | "
                f"{_num(r['decode_ms_per_image'], 2)} | {_num(r['forward_ms_per_image'], 2)} |"
            )
    return "\n".join(lines) + "\n"


def write(result: dict, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(result["started_at"]))
    json_path, md_path = folder / f"bench-{stamp}.json", folder / f"bench-{stamp}.md"
    json_path.write_text(json.dumps(result, indent=2, default=str))
    md_path.write_text(markdown(result))
    return json_path, md_path
