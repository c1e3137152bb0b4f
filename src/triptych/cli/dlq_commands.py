"""`triptych dlq list | replay`: the dead letters the functions gave up on."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings

console = Console(stderr=True)
dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)


@dlq_app.command("list")
def dlq_list(
    function: str = typer.Option(None, help="only this function's dead letters"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Dead letters, oldest first: origin, function, attempts, error, replayed or not."""
    from ..runtime.dlq import read_dead_letters

    items = read_dead_letters(get_settings(), function)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "ref": i.ref,
                        "replayed": i.replayed,
                        **json.loads(i.letter.model_dump_json(exclude={"value_b64"})),
                    }
                    for i in items
                ],
                indent=2,
            )
        )
        return
    table = Table(title=f"{len(items)} dead letter(s)")
    for column in ("ref", "function", "origin", "attempts", "error", "replayed", "at"):
        table.add_column(column, overflow="fold")
    for i in items:
        o = i.letter.origin
        table.add_row(
            i.ref,
            i.letter.function,
            f"{o.topic}[{o.partition}]@{o.offset}",
            str(i.letter.attempts),
            f"{i.letter.error_type}: {i.letter.error[:120]}",
            "yes" if i.replayed else "no",
            i.letter.dead_lettered_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    Console().print(table)


@dlq_app.command("replay")
def dlq_replay(
    refs: list[str] = typer.Argument(
        None, help="PARTITION:OFFSET of dead letters to resend (default: all not yet replayed)"
    ),
    function: str = typer.Option(None, help="only this function's dead letters"),
    include_replayed: bool = typer.Option(False, help="also resend ones already replayed"),
) -> None:
    """Resend dead letters to their origin topic, for the function that failed on them."""
    from ..runtime.dlq import read_dead_letters, replay

    settings = get_settings()
    items = read_dead_letters(settings, function)
    if refs:
        wanted = set(refs)
        unknown = wanted - {i.ref for i in items}
        if unknown:
            console.print(f"[bold red]error:[/] no dead letter {', '.join(sorted(unknown))}")
            raise typer.Exit(2)
        items = [i for i in items if i.ref in wanted]
    elif not include_replayed:
        items = [i for i in items if not i.replayed]
    count = replay(settings, items)
    console.print(f"replayed {count} dead letter(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
