"""`triptych cluster up | status | down | env`: several hosts on this machine, as
network namespaces (root and iproute2), each running `triptych up --role ...`."""

from __future__ import annotations

import json
import os
import shlex

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings
from ..errors import StackError

console = Console(stderr=True)
cluster_app = typer.Typer(
    help="Several hosts on this machine (network namespaces): Kafka x3, MinIO x4, PostgreSQL, workers.",
    no_args_is_help=True,
)


def _cluster():
    from ..cluster.manager import Cluster

    return Cluster(get_settings())


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(1)


@cluster_app.command()
def up(
    workers: int = typer.Option(2, min=1, max=8, help="worker hosts, each running the function supervisor"),
    runtime: str = typer.Option(
        "local",
        "--runtime",
        help="what runs each replica on the workers: `local` (the local runner) or `nuclio` (Nuclio's processor)",
    ),
) -> None:
    """Make the hosts and start three brokers, four MinIO nodes, PostgreSQL with MLflow and the workers;
    the champions of the stack this CLI points at are carried into the cluster's MLflow."""
    if runtime not in ("local", "nuclio"):
        raise typer.BadParameter(f"--runtime is local or nuclio, not {runtime!r}")
    cluster = _cluster()
    try:
        with console.status("starting the cluster") as spinner:

            def step(msg: str) -> None:  # each step stays on screen; the spinner shows the one under way
                console.print(f"- {msg}", highlight=False)
                spinner.update(msg)

            cluster.up(workers, functions_runtime=runtime, report=step)
    except StackError as exc:
        _fail(exc)
    _print(cluster.status())
    console.print(
        "while it is up, `triptych status`, `stream`, `upload`, `bench` ... use it; to point any other "
        'program at it: eval "$(triptych cluster env)"'
    )


@cluster_app.command()
def status(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Each host: namespace, address, roles, processes, and the replicas a worker runs."""
    state = _cluster().status()
    if as_json:
        typer.echo(json.dumps(state, indent=2))
    else:
        _print(state)


@cluster_app.command()
def env() -> None:
    """Shell exports that point every `triptych` command at the cluster."""
    state = _cluster().status()
    if not state["up"]:
        _fail(StackError("no cluster is up: `triptych cluster up` first"))
    for key, value in state["env"].items():
        typer.echo(f"export {key}={shlex.quote(value)}")


@cluster_app.command()
def down(purge: bool = typer.Option(False, help="also delete every host's data")) -> None:
    """Stop every host (`triptych down` in each, workers first) and remove the namespaces."""
    with console.status("stopping the cluster") as spinner:
        _cluster().down(purge, report=lambda msg: spinner.update(msg))
    console.print("cluster down")


def _print(state: dict) -> None:
    if not state["up"]:
        console.print("no cluster is up")
        return
    table = Table(title="Triptych cluster")
    for column in ("host", "address", "roles", "processes", "replicas"):
        table.add_column(column)
    for host in state["hosts"]:
        replicas = ", ".join(
            f"{n} {f['running']}/{f['desired']}" for n, f in host.get("functions", {}).items() if f["desired"]
        )
        table.add_row(host["name"], host["address"], "+".join(host["roles"]), str(len(host["pids"])), replicas)
    Console().print(table)
    console.print(f"Kafka {state['kafka_bootstrap']}   S3 {state['s3_endpoint']}   MLflow {state['mlflow']}")


# Commands that use the cluster, when one is up, instead of this host's own stack.
# (Not `up`, `api` or `dashboard`: `up` starts those servers for this host's own stack.)
FOLLOWERS = frozenset({"status", "stream", "upload", "bench", "functions", "watch", "dlq", "label"})
# Set by the user, these choose the servers: the CLI then follows nothing.
CHOSEN_SERVERS = ("TRIPTYCH_KAFKA_BOOTSTRAP", "TRIPTYCH_DATABASE_URL", "TRIPTYCH_S3_ENDPOINT")


def follow_if_up(command: str | None) -> None:
    """While `triptych cluster up` holds, `status`, `stream`, `upload`, `bench`,
    `functions` ... talk to the cluster (its client settings go into this process's
    environment), unless the environment already names servers or says
    TRIPTYCH_FOLLOW_CLUSTER=false. `up`, `down` and the rest keep to this host."""
    if command not in FOLLOWERS or any(os.environ.get(k) for k in CHOSEN_SERVERS):
        return
    if os.environ.get("TRIPTYCH_FOLLOW_CLUSTER", "true").lower() in ("0", "false", "no"):
        return
    from ..cluster.manager import Cluster

    settings = get_settings()
    topology = Cluster(settings).topology()
    if topology is None:
        return
    os.environ.update(topology.client_env(settings))
    get_settings.cache_clear()  # read before: every later call sees the cluster
    console.print(
        f"[dim]using the cluster ({len(topology.hosts)} hosts; `triptych cluster status`). "
        "TRIPTYCH_FOLLOW_CLUSTER=false uses this host's own stack.[/]",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
