"""`triptych kube up | down | status | deploy | env`: a real single-node Kubernetes on
this machine (the node in its own network namespace), and Triptych's chart on it."""

from __future__ import annotations

import json
import shlex

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings
from ..errors import StackError

console = Console(stderr=True)
kube_app = typer.Typer(
    help="A real single-node Kubernetes on this machine, and Triptych deployed on it.", no_args_is_help=True
)


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(1)


def _say(message: str) -> None:
    console.print(f"[dim]kube:[/] {message}", highlight=False)


@kube_app.command()
def up() -> None:
    """Start the node: etcd, the control plane, containerd, the kubelet, kube-proxy, CoreDNS and a
    default StorageClass (binaries built once; a second `up` is a no-op)."""
    from ..kube import node

    try:
        lay = node.up(get_settings(), report=_say)
    except StackError as exc:
        _fail(exc)
    console.print(f"export KUBECONFIG={lay.admin_kubeconfig}")


@kube_app.command()
def down() -> None:
    """Stop the node and remove it: no process, mount, cgroup, namespace or file of it is left."""
    from ..kube import node

    node.down(get_settings(), report=_say)


@kube_app.command()
def status(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """The node, its pods, the deployment's endpoints and the images it holds."""
    from ..kube import status as kube_status

    state = kube_status.collect(get_settings())
    if as_json:
        typer.echo(json.dumps(state, indent=2))
        return
    if not state["nodes"]:
        console.print("no node is up (`triptych kube up`)")
        return
    table = Table(
        title=f"pods on {', '.join(n['name'] + (' (Ready)' if n['ready'] else ' (not ready)') for n in state['nodes'])}"
    )
    for column in ("namespace", "pod", "phase", "ready", "function"):
        table.add_column(column)
    for pod in state["pods"]:
        table.add_row(
            pod["namespace"], pod["name"], pod["phase"], "yes" if pod["ready"] else "no", pod["function"] or ""
        )
    Console().print(table)
    console.print(f"KUBECONFIG={state['kubeconfig']}")
    for key, value in state["endpoints"].items():
        if value:
            console.print(f"{key}: {value}")


@kube_app.command()
def deploy(
    tag: str = typer.Option("dev", "--tag", help="the images' tag; a new one is a rolling upgrade"),
    training: bool = typer.Option(
        False, "--training", help="also build and import the training image (7.5 GB, torch): retrain needs it to train"
    ),
    timeout: float = typer.Option(900, help="seconds to wait for every workload to be ready"),
    kafka_sasl: bool = typer.Option(
        False, "--kafka-sasl", help="Kafka asks every part for its own SCRAM login, with ACLs (kafka.sasl.enabled)"
    ),
) -> None:
    """Build the missing images, import them into the node, install Nuclio's controller, then
    `helm upgrade --install` the chart and wait until the release is ready."""
    from ..kube import deployment

    try:
        images = deployment.deploy(
            get_settings(), tag=tag, training=training, report=_say, timeout_s=timeout, kafka_sasl=kafka_sasl
        )
    except StackError as exc:
        _fail(exc)
    console.print(
        f"deployed {len(images)} images (Triptych's at tag {tag}, the servers' tagged by their contents); "
        "`triptych kube status` shows the pods, "
        '`eval "$(triptych kube env)"` points the other commands at it'
    )


@kube_app.command()
def env() -> None:
    """Shell exports that point every `triptych` command at the deployment on the node."""
    from ..kube.deployment import client_env

    exports = client_env(get_settings())
    if not exports:
        _fail(StackError("nothing is deployed on the node: `triptych kube up`, then `triptych kube deploy`"))
    for key, value in exports.items():
        typer.echo(f"export {key}={shlex.quote(value)}")


def register(app: typer.Typer) -> None:
    app.add_typer(kube_app, name="kube")
