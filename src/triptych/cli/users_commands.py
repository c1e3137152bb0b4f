"""`triptych users add|list|remove|passwd|link`: who may sign in to the dashboard, and
with which role (viewer, labeller, admin). Stored in Postgres; passwords as argon2
hashes. A password is read from standard input when it is not a terminal
(`echo "$PW" | triptych users add ana --role labeller`), else asked for twice."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import timedelta

import typer
from rich.console import Console
from rich.table import Table

from ..config import get_settings

console = Console(stderr=True)
users_app = typer.Typer(help="Dashboard users and their roles: viewer, labeller, admin.", no_args_is_help=True)
LINK_MINUTES = 15


def _transaction(work):
    from ..db.connection import Database
    from ..security.users import UserRefused

    try:
        return Database(get_settings()).transaction(work)
    except (UserRefused, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc


def _password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        console.print("[bold red]error:[/] the two passwords differ")
        raise typer.Exit(1)
    return first


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="the name they sign in with"),
    role: str = typer.Option("viewer", "--role", help="viewer, labeller or admin"),
) -> None:
    """Add a user with a password (from standard input, or asked for)."""
    from ..security.users import add_user

    password = _password()
    user = _transaction(lambda cur: add_user(cur, name, role, password))
    console.print(f"added {user.name} ({user.role})")


@users_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Every user and their role (never a password hash)."""
    from ..security.users import list_users

    users = _transaction(list_users)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"name": u.name, "role": u.role, "password": u.has_password, "created_at": u.created_at.isoformat()}
                    for u in users
                ],
                indent=2,
            )
        )
        return
    table = Table(title="dashboard users")
    for column in ("name", "role", "password", "created"):
        table.add_column(column)
    for u in users:
        table.add_row(u.name, u.role, "yes" if u.has_password else "no (links only)", f"{u.created_at:%Y-%m-%d %H:%M}")
    Console().print(table)


@users_app.command("remove")
def remove(name: str = typer.Argument(...)) -> None:
    """Remove a user; their sessions end at once."""
    from ..security.users import remove_user

    _transaction(lambda cur: remove_user(cur, name))
    console.print(f"removed {name}; their sessions have ended")


@users_app.command("passwd")
def passwd(name: str = typer.Argument(...)) -> None:
    """Set a user's password (from standard input, or asked for); their sessions end."""
    from ..security.users import set_password

    password = _password()
    _transaction(lambda cur: set_password(cur, name, password))
    console.print(f"password of {name} changed; their open sessions have ended")


def login_link(settings, user: str | None = None, minutes: int = LINK_MINUTES) -> str:
    """A one-time sign-in link to the dashboard for `user` (default: the local admin, made if missing)."""
    from ..db.connection import Database
    from ..security.sessions import make_login_link
    from ..security.users import LOCAL_ADMIN, ensure_local_admin, find_user

    def work(cur):
        if user is None or user == LOCAL_ADMIN:
            ensure_local_admin(cur)
        elif find_user(cur, user) is None:
            from ..security.users import UserRefused

            raise UserRefused(f"no user named {user!r}")
        return make_login_link(cur, user or LOCAL_ADMIN, timedelta(minutes=minutes))

    db = Database(settings)
    try:
        secret = db.transaction(work)
    finally:
        db.close()
    return f"{settings.dashboard_url}/login?token={secret}"


@users_app.command("link")
def link(
    user: str = typer.Argument(None, help="whom it signs in (default: the local admin, `local`)"),
    minutes: int = typer.Option(LINK_MINUTES, help="minutes it stays valid (it works once)"),
) -> None:
    """Print a one-time sign-in link (as Jupyter's token link): for your own machine."""
    from ..security.users import UserRefused

    try:
        typer.echo(login_link(get_settings(), user, minutes))
    except UserRefused as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
