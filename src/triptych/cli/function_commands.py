"""`triptych functions ...`: the functions of the MLRun project, run locally by
the supervisor (under the local runner or Nuclio's processor)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings
from ..runtime import wake
from ..runtime.spec import SpecError, load_functions

console = Console(stderr=True)
functions_app = typer.Typer(help="Run, scale and inspect the project's functions locally.", no_args_is_help=True)


def load_project(project: str | None) -> tuple[dict, Path]:
    path = Path(project) if project else get_settings().project_file
    try:
        return load_functions(path), path
    except SpecError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def one_function(functions: dict, name: str):
    if name not in functions:
        console.print(f"[bold red]error:[/] no function {name!r}; the project declares: {', '.join(sorted(functions))}")
        raise typer.Exit(2)
    return functions[name]


ProjectOption = typer.Option(None, "--project", help="project.yaml to read (default: TRIPTYCH_PROJECT_FILE)")


@functions_app.command("list")
def list_functions(
    project: str = ProjectOption,
    as_json: bool = typer.Option(
        False, "--json", help="a list of objects: name, desired, running, min, max, mode (auto/pinned/fixed), reason"
    ),
) -> None:
    """The declared functions, their triggers and replicas."""
    functions, path = load_project(project)
    if as_json:
        from ..control import read_status

        running = read_status(get_settings()).get("functions", {})
        typer.echo(
            json.dumps(
                [
                    {
                        "name": name,
                        "desired": running.get(name, {}).get("desired", spec.replicas),
                        "running": sum(r["state"] == "running" for r in running.get(name, {}).get("replicas", [])),
                        "min": spec.replicas,
                        "max": spec.max_replicas or spec.replicas,
                        "mode": running.get(name, {}).get(
                            "mode", "fixed" if not spec.max_replicas or spec.max_replicas == spec.replicas else "auto"
                        ),
                        "reason": running.get(name, {}).get("reason"),
                    }
                    for name, spec in functions.items()
                ],
                indent=2,
            )
        )
        return
    table = Table(title=f"functions in {path}")
    for column in ("function", "replicas (min-max)", "triggers", "handler"):
        table.add_column(column, overflow="fold")
    for spec in functions.values():
        triggers = ", ".join(f"{type(t).__name__.removesuffix('TriggerSpec').lower()}:{t.name}" for t in spec.triggers)
        high = spec.max_replicas or spec.replicas
        bounds = str(spec.replicas) if high == spec.replicas else f"{spec.replicas}-{high}"
        if spec.wake_when:
            bounds += f" (wakes on {wake.DESCRIPTIONS.get(spec.wake_when, spec.wake_when)})"
        table.add_row(spec.name, bounds, triggers, f"{spec.source.name}:{spec.handler}")
    Console().print(table)


@functions_app.command()
def serve(name: str, replica: int = typer.Option(0, help="replica index"), project: str = ProjectOption) -> None:
    """Run one replica of a function in the foreground (Ctrl-C drains and stops it)."""
    from .. import logs
    from ..runtime.replica import serve_replica

    logs.configure()
    functions, _ = load_project(project)
    raise typer.Exit(serve_replica(one_function(functions, name), replica))


@functions_app.command()
def supervise(project: str = ProjectOption) -> None:
    """Run the supervisor in the foreground: every function at its replica count."""
    from .. import logs
    from ..runtime.supervisor import Supervisor

    logs.configure()
    functions, path = load_project(project)
    Supervisor(functions, get_settings(), path.resolve()).run()


@functions_app.command()
def scale(
    name: str,
    replicas: str = typer.Argument(
        ..., help="N to pin the function at N replicas, or `auto` to hand it back to the scaler"
    ),
    project: str = ProjectOption,
) -> None:
    """Pin a function at N replicas, or hand it back to the scaler (`auto`); the running
    supervisor applies it within a second."""
    from ..control import AUTO, set_desired_replicas

    functions, _ = load_project(project)
    spec = one_function(functions, name)
    if replicas == AUTO:
        set_desired_replicas(get_settings(), name, AUTO)
        console.print(f"{name}: scaled automatically between {spec.replicas} and {spec.max_replicas or spec.replicas}")
        return
    if not replicas.isdigit():
        raise typer.BadParameter(f"a number of replicas (0 or more) or `auto`, not {replicas!r}")
    set_desired_replicas(get_settings(), name, int(replicas))
    console.print(f"{name}: pinned at {int(replicas)} replica(s) (`triptych functions scale {name} auto` undoes it)")


@functions_app.command("status")
def functions_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Replicas of every function: pid, state, restarts, metrics port."""
    from ..control import read_status

    status = read_status(get_settings())
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    print_functions_table(status)


def print_functions_table(status: dict) -> None:
    functions = status.get("functions", {})
    if not functions:
        Console().print("no functions running (start them with `triptych up` or `triptych functions supervise`)")
        return
    table = Table(title="functions")
    for column in ("function", "replica", "state", "pid", "restarts", "metrics"):
        table.add_column(column)
    for name, entry in functions.items():
        for r in entry["replicas"]:
            port = r.get("metrics_port")
            table.add_row(
                name,
                f"{r['index'] + 1}/{entry['desired']}",
                r["state"],
                str(r["pid"] or "-"),
                str(r["restarts"]),
                f":{port}/metrics" if port else "-",
            )
        if not entry["replicas"]:
            table.add_row(name, "0", "at zero", "-", "-", "-")
    Console().print(table)
    scaled = {name: e for name, e in functions.items() if e.get("mode") in ("auto", "pinned")}
    for name, entry in scaled.items():
        line = f"{name}: {entry['mode']}, {entry.get('min')}-{entry.get('max')}"
        Console().print(line + (f"; last change {entry['reason']}" if entry.get("reason") else ""))


@functions_app.command("nuclio-config")
def nuclio_config(name: str, project: str = ProjectOption) -> None:
    """Print the Nuclio function config (YAML) that a deploy of NAME would use."""
    import yaml

    from ..runtime.deploy import nuclio_function_config

    functions, path = load_project(project)
    one_function(functions, name)
    typer.echo(yaml.safe_dump(nuclio_function_config(path, name), sort_keys=False))


@functions_app.command("scaling")
def scaling_config(
    name: str = typer.Argument(None, help="one function (default: all)"), project: str = ProjectOption
) -> None:
    """How a function scales on Kubernetes: its NuclioFunction's replica fields and
    the KEDA ScaledObject on its consumer lag, if any (YAML)."""
    import yaml

    from ..runtime.kube_scaling import scaling_manifests

    functions, _ = load_project(project)
    chosen = [one_function(functions, name)] if name else list(functions.values())
    typer.echo(yaml.safe_dump_all([scaling_manifests(spec, get_settings()) for spec in chosen], sort_keys=False))


def register(app: typer.Typer) -> None:
    app.add_typer(functions_app, name="functions")
