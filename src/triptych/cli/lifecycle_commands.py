"""`triptych retrain`, `triptych runs ...`, `triptych review ...`, `triptych label`
and `triptych jobs ...`: the model lifecycle from the terminal."""

from __future__ import annotations

import json
import threading
import time
import uuid

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings
from ..lifecycle.steps import describe_step

console = Console(stderr=True)
runs_app = typer.Typer(help="Workflow runs (retraining, scheduled jobs) and their steps.", no_args_is_help=True)
review_app = typer.Typer(help="Images the champions disagree on, waiting for a person's label.", no_args_is_help=True)
jobs_app = typer.Typer(
    help="The scheduled lifecycle jobs (data quality, metrics, shadow gate), run by hand.", no_args_is_help=True
)


def _db():
    from ..db.connection import Database

    return Database(get_settings())


def _json(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _ago(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def follow(run_id: str, done: threading.Event | None = None, interval: float = 2.0) -> dict:
    """Print each step's changes until the run ends (or `done` is set); returns the run."""
    from ..db import runs

    db = _db()
    seen: dict[str, str] = {}
    while True:
        run = db.transaction(lambda cur: runs.get_run(cur, run_id))
        for step in run["steps"]:
            line = f"{step['state']:9} {step['step']:24} {describe_step(step)}"
            if seen.get(step["step"]) != line:
                seen[step["step"]] = line
                console.print(line)
        if run["state"] in ("succeeded", "failed") or (done is not None and done.is_set()):
            return db.transaction(lambda cur: runs.get_run(cur, run_id))
        time.sleep(interval)


def retrain(
    models: str = typer.Option(None, help="comma-separated, default every model"),
    dataset: str = typer.Option(None, "--dataset", help="base data set in MinIO (default: the champions')"),
    quick: bool = typer.Option(False, "--quick", help="a smoke budget (minutes) instead of the full one"),
    policy: str = typer.Option("if-better", help="if-better (gate and shadow), always, never"),
    wait: bool = typer.Option(False, "--wait", help="follow the run to its end, step by step"),
    status: str = typer.Option(None, "--status", metavar="RUN", help="show a run's steps instead"),
) -> None:
    """Run the retrain workflow: on the retrain function when it runs (returns at once), else here."""
    from ..lifecycle.retrain import parse_request

    if status:
        show(status)
        return
    settings = get_settings()
    try:
        fields = {"quick": quick, "policy": policy, "dataset_id": dataset}
        if models:
            fields["models"] = [m.strip() for m in models.split(",")]
        request = parse_request(fields)
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    run_id = start_on_function(settings, request)
    if run_id is None:  # no retrain function: run the workflow in this process, to its end
        console.print("the retrain function is not running: the workflow runs here")
        run = run_here(request, "cli")
        if run["state"] != "succeeded":
            raise typer.Exit(1)
        return
    console.print(f"retraining run [bold]{run_id}[/] started (`triptych retrain --status {run_id}`)")
    if wait:
        run = follow(run_id)
        console.print(f"run {run_id}: [bold]{run['state']}[/]" + (f": {run['error']}" if run["error"] else ""))
        if run["state"] != "succeeded":
            raise typer.Exit(1)
    else:
        typer.echo(run_id)


def run_here(request, requested_by: str) -> dict:
    """Run the workflow in this process, printing each step as it goes; returns the finished run."""
    from ..lifecycle.retrain import Retrainer

    run = Retrainer(get_settings()).start(request, requested_by=requested_by, wait=False)
    console.print(f"retraining run [bold]{run['run_id']}[/] (`triptych runs show {run['run_id']}`)")
    run = follow(str(run["run_id"]))
    console.print(f"run {run['run_id']}: [bold]{run['state']}[/]" + (f": {run['error']}" if run["error"] else ""))
    return run


def start_on_function(settings, request) -> str | None:
    """The run id the retrain function gave, or None when it does not answer."""
    import httpx2 as httpx

    from ..security.keys import client_key

    try:
        reply = httpx.post(
            f"{settings.retrain_url}/retrain",
            json=request.model_dump(),
            timeout=30,
            headers={"X-API-Key": client_key(settings) or ""},
        )
    except httpx.HTTPError:
        return None
    if reply.status_code != 202:
        console.print(f"[bold red]error:[/] the retrain function answered {reply.status_code}: {reply.text[:300]}")
        raise typer.Exit(1)
    return reply.json()["run_id"]


@runs_app.command("list")
def list_runs(
    workflow: str = typer.Option(None, help="retrain, data-quality or metrics"),
    limit: int = typer.Option(20, min=1, max=500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The newest runs, newest first."""
    from ..db import runs

    rows = _db().transaction(lambda cur: runs.recent_runs(cur, limit, workflow, with_steps=True))
    if as_json:
        _json(rows)
        return
    table = Table(title="runs")
    for column in ("run", "workflow", "state", "by", "created", "took", "steps"):
        table.add_column(column)
    for r in rows:
        took = f"{(r['ended_at'] - r['started_at']).total_seconds():.0f}s" if r["ended_at"] and r["started_at"] else "-"
        done = sum(s["state"] == "succeeded" for s in r["steps"])
        table.add_row(
            str(r["run_id"]),
            r["workflow"],
            r["state"],
            r["requested_by"] or "-",
            _ago(r["created_at"]),
            took,
            f"{done}/{len(r['steps'])}",
        )
    Console().print(table)


@runs_app.command("cancel")
def cancel(run_id: str) -> None:
    """Cancel a run: its training stops at the next progress report, the champion stays, a new run may start."""
    import getpass
    import socket

    from ..db import runs

    try:
        run_id = str(uuid.UUID(run_id))
    except ValueError:
        console.print(f"[bold red]error:[/] {run_id!r} is not a run id (`triptych runs list` shows them)")
        raise typer.Exit(2) from None
    by = f"cli:{getpass.getuser()}@{socket.gethostname()}"
    db = _db()
    try:
        run = db.transaction(lambda cur: runs.request_cancel(cur, run_id, by))
    finally:
        db.close()
    if run is None:
        console.print(f"[bold red]error:[/] no run {run_id}")
        raise typer.Exit(1)
    if run["state"] not in ("queued", "running"):
        console.print(f"[bold red]error:[/] run {run_id} already ended {run['state']}")
        raise typer.Exit(1)
    console.print(
        f"run {run_id}: cancel asked by {run['cancelled_by']}; it stops at its next progress report "
        f"(`triptych runs show {run_id}`)"
    )


@runs_app.command("show")
def show(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A run with each step: state, times, progress or outcome, MLflow run."""
    from ..db import runs

    try:
        run_id = str(uuid.UUID(run_id))
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {run_id!r} is not a run id")
        raise typer.Exit(2) from exc
    run = _db().transaction(lambda cur: runs.get_run(cur, run_id))
    if run is None:
        console.print(f"[bold red]error:[/] no run {run_id}")
        raise typer.Exit(1)
    if as_json:
        _json(run)
        return
    console.print(
        f"[bold]{run['workflow']}[/] run {run_id}: [bold]{run['state']}[/] (by {run['requested_by']}, "
        f"created {_ago(run['created_at'])})" + (f"\n[red]{run['error']}[/]" if run["error"] else "")
    )
    table = Table()
    for column in ("step", "state", "started", "ended", "detail", "mlflow run"):
        table.add_column(column)
    for s in run["steps"]:
        table.add_row(
            s["step"],
            s["state"],
            _ago(s["started_at"]),
            _ago(s["ended_at"]),
            describe_step(s),
            s["mlflow_run_id"] or "-",
        )
    Console().print(table)


@review_app.command("list")
def review_list(limit: int = typer.Option(20, min=1, max=500), as_json: bool = typer.Option(False, "--json")) -> None:
    """Disagreements, newest first: label one with `triptych label IMAGE_ID CLASS`."""
    from ..db import queries

    rows, total = _db().transaction(lambda cur: queries.review_queue(cur, limit))
    if as_json:
        _json({"total": total, "images": rows})
        return
    table = Table(title=f"review queue: {total} images the champions disagree on")
    for column in ("image", "uploaded", "file", "answers", "consensus", "label"):
        table.add_column(column)
    for r in rows:
        answers = ", ".join(f"{m} {v.get('class')}" for m, v in sorted((r["per_model"] or {}).items()))
        table.add_row(
            str(r["image_id"]),
            _ago(r["uploaded_at"]),
            r["filename"],
            answers,
            r["consensus_class"] or "-",
            r["ground_truth_label"] or "-",
        )
    Console().print(table)


def label(image_id: str, cls: str = typer.Argument(..., metavar="CLASS")) -> None:
    """Set an image's true class: its correctness is recomputed, and the next retraining learns from it."""
    from ..aggregation.labels import LabelRejected, set_ground_truth
    from ..models.classes import KnownClasses

    try:
        image_id = str(uuid.UUID(image_id))
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {image_id!r} is not an image id")
        raise typer.Exit(2) from exc
    db = _db()
    known = KnownClasses(get_settings(), db)()
    try:
        result = db.transaction(lambda cur: set_ground_truth(cur, image_id, cls, set(known), who="cli"))
    except LabelRejected as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    right = ", ".join(f"{m} {'right' if ok else 'wrong'}" for m, ok in sorted(result["per_model_correct"].items()))
    console.print(f"image {image_id} labelled {cls!r}" + (f": {right}" if right else ""))


@jobs_app.command("run")
def run_job(
    name: str = typer.Argument(..., help="data-quality, metrics or shadow-gate"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run a scheduled job now, as its cron trigger would."""
    from ..lifecycle.jobs import UnknownJob
    from ..lifecycle.jobs import run_job as run

    try:
        with console.status(f"running {name}"):
            result = run(name, get_settings(), requested_by="cli")
    except UnknownJob as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        _json(result)
    else:
        console.print(
            f"{name}: [bold]{result['state']}[/]" + (f" (run {result['run_id']})" if result["run_id"] else "")
        )
        for key, value in result["result"].items():
            console.print(f"  {key}: {json.dumps(value, default=str)[:300]}")
    if result["state"] != "succeeded":
        if not as_json:
            console.print(f"[red]{result['error']}[/]")
        raise typer.Exit(1)


@jobs_app.command("list")
def list_jobs() -> None:
    """The jobs and when each runs."""
    from ..lifecycle.jobs import SCHEDULES

    for name, schedule in SCHEDULES.items():
        typer.echo(f"{name:14} {schedule}")


def register(app: typer.Typer) -> None:
    app.command()(retrain)
    app.command()(label)
    app.add_typer(runs_app, name="runs")
    app.add_typer(review_app, name="review")
    app.add_typer(jobs_app, name="jobs")
