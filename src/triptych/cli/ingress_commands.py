"""`triptych stream ...` and `triptych upload ...`: putting images into Triptych."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ..config import get_settings

console = Console(stderr=True)
stream_app = typer.Typer(
    help="Stream images into the `images` bucket (and so into the pipeline).", no_args_is_help=True
)

Rate = typer.Option(5.0, "--rate", help="images per second (0 = as fast as possible)")
Count = typer.Option(None, "--count", help="stop after this many images")
Duration = typer.Option(None, "--duration", help="stop after this many seconds")


def _run(items, source: str, rate: float, count: int | None, duration: float | None) -> None:
    from ..ingress.producers import BucketWriter, run_stream

    writer = BucketWriter(get_settings(), source)
    with Progress(
        TextColumn(f"[bold]{source}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[failed]} failed"),
        console=console,
    ) as progress:
        task = progress.add_task(source, total=count, failed=0)
        try:
            summary = run_stream(
                items,
                writer,
                rate=rate,
                count=count,
                duration=duration,
                on_sent=lambda s: progress.update(task, completed=s.sent + s.failed, failed=s.failed),
            )
        except KeyboardInterrupt:
            console.print("stopped")
            return
    console.print(
        f"{source}: sent {summary.sent} image(s), {summary.bytes / 2**20:.1f} MiB in {summary.seconds:.1f}s "
        f"({summary.rate:.1f}/s); {summary.failed} failed"
    )
    for error in summary.errors:
        console.print(f"  [red]{error}")
    if summary.failed:
        raise typer.Exit(1)


@stream_app.command()
def synthetic(
    rate: float = Rate,
    count: int = Count,
    duration: float = Duration,
    split: str = typer.Option("test", help="train or test split of the generated set"),
    start: int = typer.Option(0, help="first image index"),
    fmt: str = typer.Option("png", "--format", help="png or jpeg"),
    shift: str = typer.Option(
        None, help="a shifted copy, to see the drift detectors fire: blur, dark, palette or noise"
    ),
) -> None:
    """The project's generated labelled shapes (works offline)."""
    from ..datasets.sources import synthetic_items
    from ..datasets.synthetic import SHIFTS

    if shift is not None and shift not in SHIFTS:
        raise typer.BadParameter(f"one of {', '.join(SHIFTS)}", param_hint="--shift")
    _run(synthetic_items(split, start, fmt, shift=shift), "synthetic", rate, count, duration)


@stream_app.command()
def cifar10(
    rate: float = Rate,
    count: int = Count,
    duration: float = Duration,
    from_dir: Path = typer.Option(
        None, "--from-dir", help="a local copy (offline): folder holding cifar-10-batches-py"
    ),
) -> None:
    """The CIFAR-10 test set with its labels (downloads once via torchvision when online)."""
    from ..datasets.sources import cifar10_items

    root = from_dir or get_settings().cache_dir / "datasets"
    try:
        items = cifar10_items(root, download=from_dir is None)
        first = next(items)
    except RuntimeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc

    def chained():
        yield first
        yield from items

    _run(chained(), "cifar10", rate, count, duration)


@stream_app.command("dir")
def directory(path: Path, rate: float = Rate, count: int = Count, duration: float = Duration) -> None:
    """Every image under PATH (labels from sub-folder names when present)."""
    from ..datasets.sources import dir_items

    if not path.is_dir():
        console.print(f"[bold red]error:[/] {path} is not a folder")
        raise typer.Exit(2)
    _run(dir_items(path), "dir", rate, count, duration)


@stream_app.command()
def webcam(
    source: str = typer.Option("0", "--source", help="camera index, video file, or rtsp:// URL"),
    fps: float = typer.Option(2.0, help="frames per second to send"),
    width: int = typer.Option(None, help="resize width"),
    height: int = typer.Option(None, help="resize height"),
    quality: int = typer.Option(85, help="JPEG quality"),
    count: int = Count,
    duration: float = Duration,
    queue_size: int = typer.Option(8, help="frames buffered before dropping"),
    policy: str = typer.Option("drop-oldest", help="drop-oldest or drop-newest when the buffer is full"),
    label: str = typer.Option(None, help="ground-truth label for every frame, if known"),
) -> None:
    """Frames from a webcam, video file or RTSP stream; drops (and counts) frames under backpressure."""
    from ..ingress.producers import BucketWriter
    from ..ingress.webcam import WebcamProducer, source_kind

    writer = BucketWriter(get_settings(), source_kind(source))
    producer = WebcamProducer(
        source,
        writer.put,
        fps=fps,
        width=width,
        height=height,
        jpeg_quality=quality,
        queue_size=queue_size,
        policy=policy,
        label=label,
    )
    try:
        summary = producer.run(max_frames=count, duration=duration)
    except RuntimeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(
        f"captured {summary.captured}, sent {summary.sent}, dropped {summary.dropped}, "
        f"failed {summary.failed} in {summary.seconds:.1f}s"
    )


def upload(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="image files"),
    label: str = typer.Option(None, help="ground-truth label for all files"),
    url: str = typer.Option(None, help="upload function URL (default: the local one)"),
) -> None:
    """Upload images through the upload function (HTTP), as a client would."""
    import json

    from ..ingress.upload_client import UploadUnavailable, upload_batch
    from ..security.keys import client_key

    settings = get_settings()
    base = url or settings.upload_url
    try:
        body = upload_batch(
            base,
            [(f.name, f.read_bytes()) for f in files],
            [label] * len(files) if label else None,
            api_key=client_key(settings),
        )
    except UploadUnavailable as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    for result in body["results"]:
        if result["status"] == "rejected":
            console.print(f"[red]rejected[/] {result['filename']}: {result['error']}")
        else:
            console.print(f"{result['status']:9} {result['filename']} -> {result['image_id']}")
    typer.echo(json.dumps(body))
    if body["rejected"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(stream_app, name="stream")
    app.command()(upload)
