"""`triptych datasets ...`: labelled training sets in MinIO (see triptych.datasets.bucket)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings

console = Console(stderr=True)
datasets_app = typer.Typer(help="Publish and list the labelled training sets kept in MinIO.", no_args_is_help=True)
publish_app = typer.Typer(
    help="Publish a labelled set to s3://datasets/<id>/ for `models bootstrap --train`.", no_args_is_help=True
)
datasets_app.add_typer(publish_app, name="publish")


def _report(publish) -> None:
    from ..datasets.bucket import DatasetError

    try:
        with console.status("publishing"):
            manifest = publish()
    except (DatasetError, RuntimeError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    counts = ", ".join(f"{split} {n}" for split, n in manifest.counts.items())
    console.print(f"{manifest.dataset_id}: {len(manifest.classes)} classes, {counts}; {manifest.skipped} skipped")
    for example in manifest.skipped_examples[:10]:
        console.print(f"  [yellow]skipped[/] {example}")


@publish_app.command()
def synthetic(
    train_count: int = typer.Option(12000, help="training images"),
    test_count: int = typer.Option(1000, help="held-out images"),
) -> None:
    """The project's generated shapes (offline); a no-op when already there with these counts."""
    from ..datasets.bucket import publish_synthetic

    _report(lambda: publish_synthetic(train_count, test_count, settings=get_settings()))


@publish_app.command()
def cifar10(
    from_dir: Path = typer.Option(
        None, "--from-dir", help="a local copy (offline): folder holding cifar-10-batches-py"
    ),
) -> None:
    """CIFAR-10, both splits (downloads once via torchvision when online)."""
    from ..datasets.bucket import publish
    from ..datasets.sources import cifar10_items

    root = from_dir or get_settings().cache_dir / "datasets"
    download = from_dir is None
    _report(
        lambda: publish(
            "cifar10",
            {"train": cifar10_items(root, download, train=True), "test": cifar10_items(root, download, train=False)},
            source="cifar10",
        )
    )


@publish_app.command("dir")
def folder(
    path: Path = typer.Argument(..., help="folder/<label>/<image>, or folder/{train,test}/<label>/<image>"),
    dataset_id: str = typer.Option(..., "--id", help="the data set's name, e.g. flowers-v1"),
) -> None:
    """An image folder: labels from sub-folder names; without train/ and test/ a stable 10 % is held out."""
    from ..datasets.bucket import folder_splits, publish
    from ..datasets.sources import dir_items

    _report(lambda: publish(dataset_id, folder_splits(dir_items(path, only_images=False)), source=f"folder {path}"))


@datasets_app.command("list")
def list_datasets() -> None:
    """Every published set with its classes and counts."""
    from ..datasets.bucket import list_datasets as published

    table = Table("id", "classes", "train", "test", "skipped", "source")
    for m in published(get_settings()):
        table.add_row(
            m.dataset_id,
            str(len(m.classes)),
            str(m.counts.get("train", 0)),
            str(m.counts.get("test", 0)),
            str(m.skipped),
            m.source,
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
