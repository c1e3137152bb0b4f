"""`triptych image`: build the one Triptych image (infra/image/Containerfile) and push it."""

from __future__ import annotations

import subprocess

import typer
from rich.console import Console

from ..config import get_settings
from ..errors import StackError

console = Console(stderr=True)
image_app = typer.Typer(
    help="The Triptych image every function and application runs from on Kubernetes.", no_args_is_help=True
)


@image_app.command("build")
def build(
    tag: str = typer.Option("localhost/triptych:dev", "--tag", "-t", help="the image's name"),
    base: str = typer.Option(
        None, "--base", help="the base image (default: the Containerfile's, python:3.11-slim-bookworm)"
    ),
    debootstrap: bool = typer.Option(
        False, "--debootstrap", help="make the base from Debian's packages (where no registry can be reached)"
    ),
    role: str = typer.Option(
        "training",
        "--role",
        help="serving (no torch: every function but retrain, the "
        "API, the dashboard), training (everything), or mlflow "
        "(MLflow's tracking server)",
    ),
) -> None:
    """Build the image with buildah (or podman, docker): the first build takes minutes, later ones seconds."""
    from ..kube.image import build_image

    try:
        with console.status(f"building {tag}"):
            built = build_image(get_settings(), tag, base=base, debootstrap=debootstrap, role=role)
    except (StackError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"built {built}; push it with `triptych image push {built} REGISTRY/triptych:TAG`")


@image_app.command("push")
def push(
    tag: str = typer.Argument(..., help="the built image"),
    destination: str = typer.Argument(..., help="where the cluster pulls from: REGISTRY/triptych:TAG"),
) -> None:
    """Push the built image to a registry (with the builder that built it)."""
    from ..kube.image import builder

    tool = builder(get_settings())
    if tool[0] in ("buildah", "podman"):
        argv = [*tool, "push", tag, f"docker://{destination}"]
    else:  # docker pushes by name: tag it first
        subprocess.run([*tool, "tag", tag, destination], check=True)
        argv = [*tool, "push", destination]
    raise typer.Exit(subprocess.run(argv).returncode)


def register(app: typer.Typer) -> None:
    app.add_typer(image_app, name="image")
