"""`triptych models ...`: the registry's view of the three competitors."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings

console = Console(stderr=True)
models_app = typer.Typer(help="Train, register, promote and list the models.", no_args_is_help=True)


def _names(models: str | None) -> list[str]:
    from ..models.zoo import ARCHITECTURES, architecture

    names = [m.strip() for m in models.split(",")] if models else list(ARCHITECTURES)
    for name in names:
        try:
            architecture(name)
        except ValueError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from exc
    return names


@models_app.command()
def bootstrap(
    train: bool = typer.Option(False, "--train", help="train on a labelled set in MinIO (offline, MLRun jobs)"),
    pretrained: bool = typer.Option(False, "--pretrained", help="torchvision ImageNet weights (online)"),
    quick: bool = typer.Option(False, "--quick", help="a tiny training budget, for smoke tests"),
    models: str = typer.Option(None, help="comma-separated subset, e.g. mobilenet_v2"),
    only_missing: bool = typer.Option(False, "--only-missing", help="skip models that already have a champion"),
    dataset: str = typer.Option(
        None,
        help="a data set published with `triptych datasets publish` "
        "(default: the generated set, published when missing)",
    ),
) -> None:
    """Give each model a champion in the MLflow registry."""
    from ..models.bootstrap import (
        FULL,
        QUICK,
        missing_champions,
        register_pretrained,
        train_as_mlrun_job,
    )

    if train == pretrained:
        console.print("[bold red]error:[/] choose one of --train or --pretrained")
        raise typer.Exit(2)
    settings = get_settings()
    names = _names(models)
    if only_missing:
        names = missing_champions(settings, names)
        if not names:
            console.print("every model already has a champion")
            return
    results = []
    for name in names:
        console.print(f"[bold]{name}[/]: {'training' if train else 'fetching ImageNet weights'} ...")
        try:
            if train:
                overrides = {"dataset_id": dataset} if dataset else {}
                outcome = train_as_mlrun_job(name, QUICK if quick else FULL, policy="if-better", **overrides)
                console.print(
                    f"  v{outcome['version']}: held-out accuracy {outcome['accuracy']:.3f} in "
                    f"{outcome['train_seconds']:.0f}s; {outcome['decision']} ({outcome['reason']})"
                )
                results.append(outcome)
            else:
                version = register_pretrained(name, settings)
                console.print(f"  v{version}: champion")
        except RuntimeError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc
    if results:
        typer.echo(json.dumps(results, indent=2))


@models_app.command("list")
def list_models() -> None:
    """Each model's champion and challenger (in shadow), with their held-out accuracy."""
    from ..models import registry

    settings = get_settings()
    table = Table(title="models")
    for column in ("model", "champion", "accuracy", "challenger", "accuracy "):
        table.add_column(column)
    for name in _names(None):
        row = [name]
        for alias in (registry.CHAMPION, registry.CHALLENGER):
            version = registry.version_for_alias(name, alias, settings)
            metric = registry.metric_of(name, version, settings=settings) if version else None
            row += [f"v{version}" if version else "-", f"{metric:.3f}" if metric is not None else "-"]
        table.add_row(*row)
    Console().print(table)


@models_app.command()
def promote(model: str, version: str, reason: str = typer.Option("promoted by hand")) -> None:
    """Make VERSION the champion of MODEL now; inference functions hot-swap to it."""
    from ..models.champion_alias import promote as do_promote

    _names(model)
    do_promote(model, version, reason, get_settings())
    console.print(f"{model} v{version} is champion")


@models_app.command()
def quantize(
    model: str,
    version: str | None = typer.Option(None, help="default: the champion"),
    publish: bool = typer.Option(True, help="add the int8 model to the version when it passes the gate"),
    held_out: int = typer.Option(500, min=50, help="held-out images for agreement and accuracy"),
    calibration: int = typer.Option(256, min=16, help="training images to calibrate activation ranges"),
    min_agreement: float = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="the gate, 0.99 by default; lower it to watch a version that misses "
        "it answer live beside fp32 (the Compare page) before deciding",
    ),
) -> None:
    """int8 (ONNX Runtime static quantisation, QDQ): fp32 against int8 side by side, speed
    and top-1 agreement. Once published, the int8 twin (infer-int8) answers the live stream
    beside fp32, and replicas may serve it with TRIPTYCH_INFER_BACKEND=onnx-int8."""
    from ..lifecycle.int8 import quantize_version
    from ..models import registry
    from ..models.quantize import MIN_AGREEMENT

    _names(model)
    settings = get_settings()
    version = version or registry.version_for_alias(model, registry.CHAMPION, settings)
    if version is None:
        console.print(f"[bold red]error:[/] {model} has no champion: give --version")
        raise typer.Exit(1)
    gate = MIN_AGREEMENT if min_agreement is None else min_agreement
    r = quantize_version(
        model,
        version,
        settings,
        calibration_count=calibration,
        held_out_count=held_out,
        publish=publish,
        min_agreement=gate,
    )
    console.print(
        f"{model} v{version}: int8 {r['int8_ms_per_image']:.2f} ms/image against fp32 "
        f"{r['fp32_ms_per_image']:.2f} (x{r['speedup']:.2f}, {r['threads']} thread, batch {r['batch']}, "
        f"CPU {' '.join(r['cpu_flags']) or '?'}); top-1 agreement {r['agreement']:.1%} on "
        f"{r['held_out']} held-out images; accuracy fp32 {r['fp32_accuracy']:.1%}, int8 {r['int8_accuracy']:.1%}"
    )
    if not r["passes"]:
        console.print(f"[bold yellow]not published:[/] agreement below {gate:.0%}")
        raise typer.Exit(1)
    console.print(f"published: {r['published']}" if r.get("published") else "passes the gate (not published)")


@models_app.command("export")
def export(
    to: Path = typer.Option(..., "--to", help="folder to write <model>/ folders into"),
    models: str = typer.Option(None, help="comma-separated; default: every model"),
) -> None:
    """Download every champion (weights, ONNX export, card), to import elsewhere."""
    from ..models.transfer import export_champions

    exported = export_champions(to, get_settings(), _names(models) if models else None)
    if not exported:
        console.print("[bold red]error:[/] no champion to export: `triptych models bootstrap` first")
        raise typer.Exit(1)
    for name, folder in exported.items():
        console.print(f"{name}: {folder}")


@models_app.command("import")
def import_(
    folders: list[Path] = typer.Argument(..., help="folders written by `triptych models export`"),
    champion: bool = typer.Option(True, help="make each imported version its model's champion"),
) -> None:
    """Register exported versions in this stack's MLflow (a cluster's, say) without training."""
    from ..models.transfer import import_version

    for folder in folders:
        registered = import_version(folder, get_settings(), champion)
        console.print(f"{registered.model_name} v{registered.version}" + (" is champion" if champion else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
