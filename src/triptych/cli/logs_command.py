"""`triptych logs [FUNCTION] [--image ID] [--follow]`: the functions' JSON logs,
merged in time order: one image's whole way (ingest, the three inference
functions, aggregate, any retry or dead letter) with one command."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from .. import logs
from ..config import get_settings

console = Console(stderr=True)


def logs_command(
    function: str = typer.Argument(None, help="only this function's lines (e.g. ingest, infer-resnet50)"),
    image: str = typer.Option(None, "--image", help="only the lines about this image id"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new lines as they are written"),
    last: int = typer.Option(200, "--last", min=0, help="without --image: show only the last N lines"),
    as_json: bool = typer.Option(False, "--json", help="the lines as JSON, one a line"),
) -> None:
    """Show the functions' logs, merged in time order; --image follows one image through every function."""
    folder = get_settings().data_dir / "logs" / "functions"

    def show(entry: dict) -> None:
        typer.echo(json.dumps(entry) if as_json else logs.render(entry))

    if not follow:
        entries = logs.read_entries(logs.log_files(folder), function, image)
        if not entries:
            what = f" about image {image}" if image else ""
            console.print(f"no log lines{what} in {folder}" + ("" if folder.exists() else " (no function has run)"))
            raise typer.Exit(1 if image else 0)
        for entry in entries if image else entries[-last:]:
            show(entry)
        return
    try:
        for entry in logs.follow_entries(folder, function, image):
            show(entry)
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command("logs")(logs_command)
