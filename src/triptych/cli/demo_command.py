"""`triptych demo`: the main job, end to end, on one laptop.

Brings up the stack and the functions; on a fresh registry, trains quick
champions first (minutes, the three in parallel, as one `retrain` workflow run),
streams the labelled set through the pipeline and shows the live comparison, and
hands the full training to the retrain function as a second workflow run: as
each full model beats its quick champion it enters shadow and is promoted on the
live labelled stream, so accuracy climbs and versions change while you watch.
Ctrl-C stops the stream cleanly and leaves the stack (and a training) running
(`triptych down` stops it).
"""

from __future__ import annotations

import threading
import time

import typer
from rich.console import Console
from rich.live import Live

from ..config import get_settings

console = Console(stderr=True)


def demo(
    rate: float = typer.Option(4.0, help="images per second streamed"),
    quick: bool = typer.Option(False, "--quick", help="quick champions only: no full training afterwards"),
    window: int = typer.Option(300, help="seconds of history in the view"),
) -> None:
    """Stack up, quick champions if needed, the labelled stream in, full training behind it, the live view on."""
    from ..datasets.sources import synthetic_items
    from ..db.connection import Database
    from ..errors import StackError
    from ..ingress.producers import BucketWriter, run_stream
    from ..lifecycle.retrain import RetrainRequest
    from ..models.bootstrap import missing_champions
    from ..stack.manager import Stack
    from .lifecycle_commands import run_here
    from .users_commands import login_link
    from .watch_command import fetch, render_view

    settings = get_settings()
    try:
        with console.status("starting the stack and the functions") as spinner:
            result = Stack(settings).up(report=spinner.update)
    except StackError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    if settings.dashboard_autostart:
        where = settings.dashboard_url
        if settings.dashboard_login:  # one-time, for the local admin: open it once, then the session holds
            where = login_link(settings)
        console.print(f"[bold]dashboard:[/] {where}  (open it to watch training, then the stream)", soft_wrap=True)
    if settings.api_autostart:
        console.print(f"[bold]API:[/]       {settings.api_url}/docs")
    if "local" in result.key_files:
        console.print(f"[bold]your API key[/] (upload, label, admin) is kept in {result.key_files['local']}")
    missing = missing_champions(settings)
    if missing:
        console.print(
            f"training quick champions for {', '.join(missing)} on the generated set, in parallel "
            "(a few minutes on 2 cores) ..."
        )
        run = run_here(RetrainRequest(models=missing, quick=True, policy="always"), requested_by="demo")
        if run["state"] != "succeeded":
            console.print(f"[bold red]error:[/] the quick training failed: {run['error']}")
            raise typer.Exit(1)
        console.print("the waiting inference functions load their champions within about 10 s")
        if not quick:
            full = hand_full_training(settings, missing)
            if full:
                console.print(
                    f"full training runs in the background (run {full}); better models enter shadow and "
                    "are promoted on the live stream: `triptych runs show " + full + "`"
                )

    stop = threading.Event()
    sent = {"n": 0}

    def produce() -> None:
        writer = BucketWriter(settings, "synthetic")

        def items():
            for item in synthetic_items("test", start=int(time.time()) % 100_000):
                if stop.is_set():
                    return
                yield item

        run_stream(items(), writer, rate=rate, on_sent=lambda s: sent.__setitem__("n", s.sent))

    producer = threading.Thread(target=produce, name="demo-stream", daemon=True)
    producer.start()
    db = Database(settings)
    try:
        with Live(render_view(*fetch(db, window), window), refresh_per_second=4) as live:
            while True:
                time.sleep(1)
                live.update(render_view(*fetch(db, window), window, extra=f" — streamed {sent['n']} (Ctrl-C stops)"))
    except KeyboardInterrupt:
        stop.set()
        producer.join(timeout=10)
        console.print(f"stream stopped after {sent['n']} images; the stack keeps running (`triptych down` stops it)")


def hand_full_training(settings, models: list[str]) -> str | None:
    """The full-budget workflow run on the retrain function (it outlives this command)."""
    from ..lifecycle.retrain import RetrainRequest
    from .lifecycle_commands import start_on_function

    run_id = start_on_function(settings, RetrainRequest(models=models))
    if run_id is None:
        console.print("the retrain function is not running: start the full training later with `triptych retrain`")
    return run_id


def register(app: typer.Typer) -> None:
    app.command()(demo)
