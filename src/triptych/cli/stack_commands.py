"""`triptych up | down | status`: the local stack."""

from __future__ import annotations

import json
import time

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings
from ..stack.errors import StackError
from ..stack.manager import Stack

console = Console(stderr=True)


def _fail(exc: StackError) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(1)


def up() -> None:
    """Install (first time only) and start Kafka, MinIO, PostgreSQL and MLflow on 127.0.0.1."""
    stack = Stack(get_settings())
    started_at = time.monotonic()
    try:
        with console.status("starting the stack") as spinner:
            result = stack.up(report=lambda msg: spinner.update(msg))
    except StackError as exc:
        _fail(exc)
    took = time.monotonic() - started_at
    if result.started:
        console.print(f"started {', '.join(result.started)} in {took:.1f}s")
    else:
        console.print(f"everything was already up ({took:.1f}s)")
    if result.external:
        console.print(f"using external {', '.join(result.external)} (URL given in the environment)")
    if result.migrations_applied:
        console.print(f"applied migrations: {', '.join(result.migrations_applied)}")
    if result.topics_created:
        console.print(f"created topics: {', '.join(result.topics_created)}")
    _print_status(stack)
    if stack.service("dashboard").enabled:
        console.print(f"dashboard: {stack.settings.dashboard_url}")
    if stack.service("api").enabled:
        console.print(f"API:       {stack.settings.api_url}/docs")
    if "local" in result.key_files:
        console.print(f"your API key (upload, label, admin) is in {result.key_files['local']}; "
                      "`triptych keys --help` makes more")


def down(purge: bool = typer.Option(False, "--purge", help="Also delete all data (databases, topics, objects).")) -> None:
    """Stop the locally managed servers; data is kept unless --purge."""
    stack = Stack(get_settings())
    with console.status("stopping the stack") as spinner:
        stopped = stack.down(purge=purge, report=lambda msg: spinner.update(msg))
    console.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
    if purge:
        console.print(f"deleted {stack.settings.data_dir}")


def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable: service name -> url, state, ...")) -> None:
    """Show each service: up/down, address, version, data dir, memory."""
    stack = Stack(get_settings())
    if as_json:
        from ..runtime.supervisor import read_status

        report = {s.name: s.as_dict() for s in stack.status()}
        report["functions"]["replicas"] = read_status(stack.settings).get("functions", {})
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    _print_status(stack)


def _print_status(stack: Stack) -> None:
    table = Table(title="Triptych stack")
    for column in ("service", "state", "address", "version", "data dir", "pid", "RSS MB"):
        table.add_column(column, overflow="fold")
    for s in stack.status():
        state = "[green]up[/]" if s.state == "up" else "[red]down[/]"
        table.add_row(
            s.name + ("" if s.managed else " (external)"), state, s.url, s.version,
            s.data_dir or "-", str(s.pid or "-"), f"{s.rss_mb:.0f}" if s.rss_mb else "-",
        )
    Console().print(table)
    if stack.service("functions").enabled:
        from ..runtime.supervisor import read_status
        from .function_commands import print_functions_table

        print_functions_table(read_status(stack.settings))


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
