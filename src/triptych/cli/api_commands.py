"""`triptych api` (the query API in the foreground; `triptych up` runs it as the
service `api`) and `triptych keys create|list|revoke|token` (who may write)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from .. import logs
from ..config import get_settings

console = Console(stderr=True)
keys_app = typer.Typer(
    help="API keys: who may upload, label, retrain and clear (stored hashed in Postgres).", no_args_is_help=True
)


def api(
    port: int = typer.Option(None, help="port (default TRIPTYCH_API_PORT, 8000)"),
    host: str = typer.Option(None, help="address to bind (default TRIPTYCH_BIND_HOST)"),
) -> None:
    """Serve the query API: REST (docs at /docs) and GraphQL (/graphql)."""
    from ..api import serve

    settings = get_settings()
    logs.configure()
    host, port = host or settings.bind_host, port or settings.api_port
    # Upload replies link to where this API serves.
    settings = settings.model_copy(update={"api_port": port})
    typer.echo(f"Triptych API on http://{host}:{port} (docs: /docs; Ctrl-C stops it)", err=True)
    serve(settings, host, port)


def _transaction(work):
    from ..db.connection import Database
    from ..security.keys import KeyRefused

    try:
        return Database(get_settings()).transaction(work)
    except KeyRefused as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc


@keys_app.command("create")
def create(
    name: str = typer.Argument(..., help="who or what holds it (unique among active keys)"),
    scope: list[str] = typer.Option(["upload"], "--scope", "-s", help="read, upload, label or admin; repeat"),
    rate: int = typer.Option(None, help="uploads a minute for this key (default TRIPTYCH_UPLOAD_RATE_PER_MINUTE)"),
) -> None:
    """Make a key and print it once: only its hash is stored."""
    from ..security.keys import create_key

    key, plaintext = _transaction(lambda cur: create_key(cur, name, scope, rate))
    console.print(
        f"created key {key.key_id} ({key.name}) with scopes {', '.join(key.scopes)}; "
        "keep it now, it is not shown again:"
    )
    typer.echo(plaintext)


@keys_app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="include revoked keys"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable"),
) -> None:
    """Every active key (never its secret)."""
    from dataclasses import asdict

    from ..security.keys import list_keys

    keys = _transaction(lambda cur: list_keys(cur, all_))
    if as_json:
        typer.echo(json.dumps([asdict(k) for k in keys], default=str, indent=2))
        return
    table = Table(title="API keys")
    for column in ("id", "name", "scopes", "rate/min", "created", "last used", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            k.key_id,
            k.name,
            ", ".join(k.scopes),
            str(k.rate_per_minute or "default"),
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
        )
    Console().print(table)


@keys_app.command("revoke")
def revoke(key: str = typer.Argument(..., help="the key's id or name")) -> None:
    """Revoke a key: every request with it is refused from now on."""
    from ..security.keys import revoke_key

    revoked = _transaction(lambda cur: revoke_key(cur, key))
    console.print(f"revoked key {revoked.key_id} ({revoked.name})")


@keys_app.command("token")
def token(
    subject: str = typer.Argument(..., help="who the token is for (its `sub`)"),
    scope: list[str] = typer.Option(["upload"], "--scope", "-s"),
    ttl: int = typer.Option(3600, help="seconds until it expires"),
) -> None:
    """Sign a JWT with TRIPTYCH_JWT_SECRET (for callers that use tokens, not keys)."""
    from ..security.keys import KeyRefused, check_scopes
    from ..security.tokens import issue_token

    secret = get_settings().jwt_secret
    if secret is None:
        console.print("[bold red]error:[/] set TRIPTYCH_JWT_SECRET (the API must be started with the same one)")
        raise typer.Exit(1)
    try:
        scopes = check_scopes(scope)
    except KeyRefused as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    typer.echo(issue_token(secret.get_secret_value(), subject, list(scopes), ttl))


def register(app: typer.Typer) -> None:
    app.command()(api)
    app.add_typer(keys_app, name="keys")
