"""`triptych deploy`: the whole system to Kubernetes, through the Helm chart
(infra/helm/triptych), or the functions alone through MLRun when it runs there."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..config import get_settings
from ..errors import StackError
from .function_commands import ProjectOption

console = Console(stderr=True)


def _split_image(image: str) -> tuple[str, str]:
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:  # no tag, or a registry port (host:5000/name)
        return image, ""
    return repository, tag


def deploy(
    image: str = typer.Option(
        None,
        "--image",
        help="the Triptych image, REPOSITORY:TAG, as the cluster pulls it "
        "(`triptych image build`, then push it); default: the chart's",
    ),
    release: str = typer.Option("triptych", "--release", help="the Helm release's name"),
    namespace: str = typer.Option("triptych", "--namespace", "-n", help="the namespace to install into"),
    values: list[Path] = typer.Option([], "--values", "-f", help="a values file for the chart (repeat it)"),
    sets: list[str] = typer.Option([], "--set", help="one chart value, key=value (repeat it)"),
    kubeconfig: Path = typer.Option(None, "--kubeconfig", help="the cluster (default: KUBECONFIG, ~/.kube/config)"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="print what would be applied, as YAML documents on stdout, and apply nothing"
    ),
    through_mlrun: bool = typer.Option(
        False, "--through-mlrun", help="deploy only the functions, through the MLRun API at MLRUN_DBPATH"
    ),
    nuclio_dashboard: str = typer.Option(
        None, "--nuclio-dashboard", help="with --through-mlrun: the Nuclio dashboard's URL"
    ),
    project: str = ProjectOption,
) -> None:
    """Deploy Triptych to Kubernetes with its Helm chart (functions, API, dashboard, MLflow, servers)."""
    settings = get_settings()
    if through_mlrun:
        _through_mlrun(settings, image, nuclio_dashboard, project)
        return
    from ..kube import chart

    repository, tag = _split_image(image) if image else ("", "")
    image_sets = [f"image.repository={repository}"] * bool(repository) + [f"image.tag={tag}"] * bool(tag)
    target = chart.Release(
        name=release, namespace=namespace, values_files=values, sets=[*image_sets, *sets], kubeconfig=kubeconfig
    )
    try:
        if dry_run:
            typer.echo(chart.template(settings, target), nl=False)
            return
        console.print(chart.upgrade_install(settings, target))
    except StackError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc


def _through_mlrun(settings, image: str | None, nuclio_dashboard: str | None, project: str | None) -> None:
    from ..runtime.deploy import DeployError, deploy_project

    if not image or not nuclio_dashboard:
        console.print(
            "[bold red]error:[/] --through-mlrun needs --image (the pushed Triptych image) and "
            "--nuclio-dashboard (its URL)"
        )
        raise typer.Exit(2)
    try:
        for line in deploy_project(Path(project) if project else settings.project_file, nuclio_dashboard, image):
            console.print(line)
    except DeployError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def register(app: typer.Typer) -> None:
    app.command()(deploy)
