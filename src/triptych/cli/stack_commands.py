"""`triptych up | down | status`: the local stack."""

from __future__ import annotations

import json
import os
import time

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings
from ..errors import StackError
from ..stack.manager import ROLE_SERVICES, Stack

console = Console(stderr=True)


def _fail(exc: StackError) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(1)


def up(
    runtime: str = typer.Option(
        None,
        "--runtime",
        help="run the functions under the local runner (`local`, the fast path) or Nuclio 1.14's "
        "own processor (`nuclio`, built from its Go module on first use); default: the "
        "`functions_runtime` setting",
    ),
    role: list[str] = typer.Option(
        None,
        "--role",
        help="run only these servers on this host (repeat it): kafka, minio, postgres, mlflow, web "
        "(API, dashboard), monitoring, worker (the functions); default: all of them "
        "(TRIPTYCH_ROLES)",
    ),
) -> None:
    """Install (first time only) and start Kafka, MinIO, PostgreSQL, MLflow, the API, the dashboard and the functions."""
    if role:
        known = set(ROLE_SERVICES) | {"all"}
        if unknown := [r for r in role if r not in known]:
            console.print(f"[bold red]error:[/] unknown role {', '.join(unknown)}; one of {', '.join(sorted(known))}")
            raise typer.Exit(2)
        os.environ["TRIPTYCH_ROLES"] = json.dumps(role)  # the supervisor started below inherits it
        get_settings.cache_clear()
    if runtime is not None:
        if runtime not in ("local", "nuclio"):
            console.print(f"[bold red]error:[/] --runtime must be `local` or `nuclio`, not {runtime!r}")
            raise typer.Exit(2)
        # The supervisor started below inherits it.
        os.environ["TRIPTYCH_FUNCTIONS_RUNTIME"] = runtime
        get_settings.cache_clear()
    stack = Stack(get_settings())
    _refuse_other_runtime(stack.settings)
    if stack.settings.functions_runtime == "nuclio" and stack.service("functions").enabled:
        from ..runtime.nuclio_processor import install_processor

        try:
            with console.status("building Nuclio's processor from its Go module (first time only: minutes)"):
                install_processor(stack.settings)
        except StackError as exc:
            _fail(exc)
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
        sign_in = "  (sign in: `triptych users link` prints a one-time link)" if stack.settings.dashboard_login else ""
        console.print(f"dashboard: {stack.settings.dashboard_url}{sign_in}")
    if stack.service("api").enabled:
        console.print(f"API:       {stack.settings.api_url}/docs")
    if stack.service("prometheus").enabled:
        console.print(f"metrics:   {stack.settings.prometheus_url} (alerts: {stack.settings.alertmanager_url})")
    if "local" in result.key_files:
        console.print(
            f"your API key (upload, label, admin) is in {result.key_files['local']}; `triptych keys --help` makes more"
        )


def _refuse_other_runtime(settings) -> None:
    """Functions already running under the other runtime are not switched silently."""
    from ..control import read_status

    running = read_status(settings).get("runtime")
    if running and running != settings.functions_runtime and Stack(settings).service("functions").running():
        console.print(
            f"[bold red]error:[/] the functions run under the {running} runtime; "
            f"`triptych down` first to switch to {settings.functions_runtime}"
        )
        raise typer.Exit(2)


def down(
    purge: bool = typer.Option(False, "--purge", help="Also delete all data (databases, topics, objects)."),
) -> None:
    """Stop the locally managed servers; data is kept unless --purge."""
    stack = Stack(get_settings())
    if purge:
        # The Kubernetes node of `triptych kube up` keeps its files in this data folder:
        # it goes down first, rather than run on with them deleted.
        from ..kube import node

        if node.is_up(stack.settings) or node.layout(stack.settings).root.exists():
            node.down(stack.settings, report=lambda msg: console.print(msg))
    with console.status("stopping the stack") as spinner:
        stopped = stack.down(purge=purge, report=lambda msg: spinner.update(msg))
    console.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
    if purge:
        console.print(f"deleted {stack.settings.data_dir}")


def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable: service name -> url, state, ..."),
) -> None:
    """Show each service: up/down, address, version, data dir, memory."""
    stack = Stack(get_settings())
    if as_json:
        from ..control import read_status

        report = {s.name: s.as_dict() for s in stack.status()}
        report["functions"]["replicas"] = read_status(stack.settings).get("functions", {})
        if stack.settings.prometheus_endpoint:  # a cluster's: the replicas of every host
            report["functions"]["all_hosts"] = _replicas_everywhere(stack.settings)
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    _print_status(stack)
    if stack.settings.prometheus_endpoint:
        replicas = _replicas_everywhere(stack.settings)
        Console().print(
            "replicas on every host (Prometheus): "
            + (
                ", ".join(f"{name} {f['running']}/{f['desired']}" for name, f in replicas.get("functions", {}).items())
                or replicas.get("error", "none")
            )
        )


def _replicas_everywhere(settings) -> dict:
    from ..observe.prometheus import PrometheusUnavailable
    from ..observe.replicas import replica_health

    try:
        health = replica_health(settings)
    except PrometheusUnavailable as exc:
        return {"error": str(exc)}
    return {
        "functions": health.functions,
        "supervisors_up": health.supervisors_up,
        "supervisors_down": health.supervisors_down,
    }


def _print_status(stack: Stack) -> None:
    table = Table(title="Triptych stack")
    for column in ("service", "state", "address", "version", "data dir", "pid", "RSS MB"):
        table.add_column(column, overflow="fold")
    for s in stack.status():
        state = "[green]up[/]" if s.state == "up" else "[red]down[/]"
        table.add_row(
            s.name + ("" if s.managed else " (external)"),
            state,
            s.url,
            s.version,
            s.data_dir or "-",
            str(s.pid or "-"),
            f"{s.rss_mb:.0f}" if s.rss_mb else "-",
        )
    Console().print(table)
    if stack.service("functions").enabled:
        from ..control import read_status
        from .function_commands import print_functions_table

        print_functions_table(read_status(stack.settings))


def provision(
    timeout: float = typer.Option(300, "--timeout", help="seconds to wait for servers still starting"),
) -> None:
    """Set up servers started elsewhere (a cluster's): schema, MLflow's database, topics, buckets, notifications."""
    from ..stack.provision import provision_servers

    try:
        done = provision_servers(get_settings(), timeout)
    except StackError as exc:
        _fail(exc)
    console.print(f"migrations applied: {', '.join(done['migrations']) or 'none (up to date)'}")
    console.print(f"topics created: {', '.join(done['topics']) or 'none (all there)'}")
    console.print("buckets and the images bucket's Kafka notifications: set")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
    app.command()(provision)
