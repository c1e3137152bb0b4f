"""`triptych deploy`: every function to a real Nuclio, through MLRun."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..config import get_settings
from .function_commands import ProjectOption

console = Console(stderr=True)


def deploy(
    nuclio_dashboard: str = typer.Option(..., "--nuclio-dashboard", help="URL of the Nuclio dashboard"),
    project: str = ProjectOption,
) -> None:
    """Deploy every function to a real Nuclio through MLRun (needs an MLRun API: MLRUN_DBPATH)."""
    from ..runtime.deploy import DeployError, deploy_project

    settings = get_settings()
    try:
        for line in deploy_project(Path(project) if project else settings.project_file, nuclio_dashboard):
            console.print(line)
    except DeployError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def register(app: typer.Typer) -> None:
    app.command()(deploy)
