"""`triptych watch`: the live comparison in the terminal, until Ctrl-C."""

from __future__ import annotations

import time

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from ..config import get_settings


def _fmt(value, pattern="{:.1f}", empty="-"):
    return pattern.format(value) if value is not None else empty


def render_view(summary: dict, models: list[dict], window: int, extra: str = "") -> Group:
    head = Table.grid(padding=(0, 3))
    head.add_row(
        f"images in: [bold]{summary['images_in']}[/]",
        f"compared: [bold]{summary['compared']}[/]",
        f"all agree: [bold]{_fmt(summary['agreement_rate'] and summary['agreement_rate'] * 100, '{:.0f}%')}[/]",
        f"consensus correct: [bold]{_fmt(summary['consensus_accuracy'] and summary['consensus_accuracy'] * 100, '{:.0f}%')}[/]",
        f"quarantined: {summary['quarantined']}",
        f"dead letters: {summary['dead_letters']}",
    )
    table = Table(expand=True)
    for column in ("model", "version", "predictions", "p50 ms", "p95 ms", "p50 total ms", "confidence", "accuracy"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for m in models:
        table.add_row(
            m["model_name"],
            m["versions"],
            str(m["predictions"]),
            _fmt(m["p50_inference_ms"]),
            _fmt(m["p95_inference_ms"]),
            _fmt(m["p50_total_ms"]),
            _fmt(m["mean_confidence"], "{:.2f}"),
            _fmt(m["accuracy"] and m["accuracy"] * 100, "{:.1f}%"),
        )
    return Group(Panel(head, title=f"Triptych — last {window // 60} min{extra}"), table)


def fetch(db, window: int) -> tuple[dict, list[dict]]:
    from ..db.queries import live_summary, per_model

    return db.transaction(lambda cur: (live_summary(cur, window), per_model(cur, window)))


def watch(
    window: int = typer.Option(300, help="seconds of history to summarise"),
    interval: float = typer.Option(1.0, help="refresh period in seconds"),
    once: bool = typer.Option(False, "--once", help="print one view and exit"),
) -> None:
    """A live view: images in, predictions per model, p50/p95 latency, agreement and accuracy."""
    from ..db.connection import Database

    db = Database(get_settings())
    if once:
        from rich.console import Console

        Console().print(render_view(*fetch(db, window), window))
        return
    try:
        with Live(render_view(*fetch(db, window), window), refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                live.update(render_view(*fetch(db, window), window))
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command()(watch)
