"""`triptych demo`: the main job, end to end, on one laptop.

Brings up the stack and the functions, gives every model a champion if the
registry has none (trained offline on the generated set), streams the labelled
set through the pipeline and shows the live comparison. Ctrl-C stops the stream
cleanly and leaves the stack running (`triptych down` stops it).
"""

from __future__ import annotations

import threading
import time

import typer
from rich.console import Console
from rich.live import Live

from ..config import get_settings

console = Console(stderr=True)


def demo(rate: float = typer.Option(4.0, help="images per second streamed"),
         quick: bool = typer.Option(False, "--quick", help="tiny training budget (a smoke run, low accuracy)"),
         window: int = typer.Option(300, help="seconds of history in the view")) -> None:
    """Stack up, models bootstrapped if needed, the labelled stream in, the live view on."""
    from ..db.connection import Database
    from ..ingress.producers import BucketWriter, run_stream, synthetic_items
    from ..models.bootstrap import FULL, QUICK, missing_champions, train_as_mlrun_job
    from ..stack.errors import StackError
    from ..stack.manager import Stack
    from .watch_command import fetch, render_view

    settings = get_settings()
    try:
        with console.status("starting the stack and the functions"):
            result = Stack(settings).up()
    except StackError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    if settings.dashboard_autostart:
        console.print(f"[bold]dashboard:[/] {settings.dashboard_url}  (open it to watch training, then the stream)")
    if settings.api_autostart:
        console.print(f"[bold]API:[/]       {settings.api_url}/docs")
    if "local" in result.key_files:
        console.print(f"[bold]your API key[/] (upload, label, admin) is kept in {result.key_files['local']}")
    missing = missing_champions(settings)
    if missing:
        console.print(f"training champions for {', '.join(missing)} on the generated set "
                      f"({'quick' if quick else 'full budget: several minutes each on 2 cores'}) ...")
        for name in missing:
            with console.status(f"training {name}"):
                outcome = train_as_mlrun_job(name, QUICK if quick else FULL, policy="if-better")
            console.print(f"  {name} v{outcome['version']}: held-out accuracy {outcome['accuracy']:.3f} "
                          f"({outcome['train_seconds']:.0f}s)")
        console.print("the waiting inference functions load their champions within about 10 s")

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


def register(app: typer.Typer) -> None:
    app.command()(demo)
