"""A chaos run as a page: throughput and p95 latency over time with each fault
drawn as a band over them, and the recovery times per kind of fault. One HTML file
with an inline SVG: no script, nothing fetched."""

from __future__ import annotations

from html import escape
from typing import Any

from .checker import percentile

WIDTH, HEIGHT, PAD = 960, 220, 40
COLOURS = {
    "worker-host": "#d62728",
    "replica": "#ff7f0e",
    "worker-supervisor": "#e377c2",
    "worker-slow-link": "#bcbd22",
    "broker": "#1f77b4",
    "broker-link": "#17becf",
    "minio-node": "#9467bd",
    "postgres": "#8c564b",
}


def _chart(samples: list[dict[str, Any]], faults: list[dict[str, Any]], field: str, label: str, end_s: float) -> str:
    top = max([s.get(field, 0.0) for s in samples] + [1e-9])

    def x(t: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * t / max(end_s, 1.0)

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top

    bands = "".join(
        f'<rect x="{x(f["injected_at_s"]):.1f}" y="{PAD}" '
        f'width="{max(1.0, x(f.get("healed_at_s", f["injected_at_s"] + f["duration_s"])) - x(f["injected_at_s"])):.1f}" '
        f'height="{HEIGHT - 2 * PAD}" fill="{COLOURS.get(f["kind"], "#999")}" opacity="0.18">'
        f"<title>{escape(f['kind'])} on {escape(f['host'])}</title></rect>"
        for f in faults
    )
    points = " ".join(f"{x(s['t_s']):.1f},{y(s.get(field, 0.0)):.1f}" for s in samples)
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}">{bands}'
        f'<polyline fill="none" stroke="#333" stroke-width="1.5" points="{points}"/>'
        f'<text x="{PAD}" y="{PAD - 10}" font-size="13">{escape(label)} (max {top:.2f})</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" font-size="11" text-anchor="end">{end_s:.0f} s</text></svg>'
    )


def html_report(result: dict[str, Any]) -> str:
    history, verdict = result["history"], result["verdict"]
    samples, faults = history["samples"], history["faults"]
    end_s = max([s["t_s"] for s in samples] + [result["minutes"] * 60])
    by_kind: dict[str, list[float]] = {}
    for name, seconds in result["recovery_s"].items():
        by_kind.setdefault(name.split("@")[0], []).append(seconds)
    rows = "".join(
        f"<tr><td>{escape(kind)}</td><td>{len(times)}</td><td>{percentile(times, 50)}</td>"
        f"<td>{percentile(times, 99)}</td><td>{max(times)}</td></tr>"
        for kind, times in sorted(by_kind.items())
    )
    legend = " ".join(
        f'<span style="background:{c};opacity:.5;padding:0 .4em">&nbsp;</span> {escape(k)}' for k, c in COLOURS.items()
    )
    status = "passed" if verdict["passed"] else "FAILED"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Triptych chaos, seed {result["seed"]}: {status}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>Chaos run, seed {result["seed"]}, {result["minutes"]:g} min: {status}</h1>
<p>{verdict["images"]} images put, {verdict["compared_once"]} compared exactly once, {verdict["lost"]} lost,
{verdict["doubled"]} doubled, {verdict["mixed_versions"]} with mixed versions; {verdict["faults"]} faults,
{verdict["overlapping"]} of them overlapping another; recovery p99 {verdict["recovery_p99_s"]} s after a heal.</p>
<p>{legend}</p>
{_chart(samples, faults, "per_s", "comparisons per second", end_s)}
{_chart(samples, faults, "p95_s", "p95 seconds from upload to comparison", end_s)}
<h2>Recovery after each heal, by kind of fault (seconds to the next comparison)</h2>
<table><tr><th>fault</th><th>count</th><th>p50</th><th>p99</th><th>max</th></tr>{rows}</table>
<h2>First broken rule</h2><pre>{escape(str(verdict["first_broken"] or "none"))}</pre>
</body></html>
"""
