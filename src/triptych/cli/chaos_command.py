"""`triptych chaos`: faults at random on the multi-host cluster, overlapping, from a
seeded schedule, while a labelled stream runs; then the checker's verdict (every
image compared exactly once). Starts the cluster when none is up."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from ..config import get_settings

console = Console(stderr=True)


def chaos(
    minutes: float = typer.Option(30.0, min=1, help="how long faults are injected (then a drain)"),
    seed: int = typer.Option(1, help="the schedule's seed: the same seed, the same faults"),
    rate: float = typer.Option(2.0, min=0.1, help="images a second in the labelled stream (about half of sustainable)"),
    replay: Path = typer.Option(None, help="a chaos-*.json: run its schedule again (its seed and length too)"),
    workers: int = typer.Option(2, min=1, help="worker hosts, if the cluster must be started"),
    out: Path = typer.Option(None, help="folder for chaos-*.json and .html (default: <data dir>/bench)"),
) -> None:
    """Seeded overlapping faults on the cluster under a labelled stream, then the verdict."""
    from ..chaos.run import load_replay, run_chaos
    from ..cluster.manager import Cluster
    from ..errors import StackError

    settings = get_settings()
    manager = Cluster(settings)
    schedule = None
    if replay is not None:
        seed, minutes, schedule = load_replay(replay)
        console.print(f"replaying {replay}: seed {seed}, {minutes:g} min, {len(schedule)} faults")
    try:
        if manager.topology() is None:
            with console.status("starting the cluster") as spinner:

                def step(msg: str) -> None:
                    console.print(f"- {msg}", highlight=False)
                    spinner.update(msg)

                manager.up(workers, report=step)
        result = run_chaos(
            manager,
            minutes,
            seed,
            rate,
            out or settings.data_dir / "bench",
            schedule,
            report=lambda msg: console.print(msg, highlight=False),
        )
    except (StackError, RuntimeError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(result["verdict"], indent=2, default=str))
    console.print(f"reports: {' and '.join(result['files'])}")
    if not result["verdict"]["passed"]:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command()(chaos)
