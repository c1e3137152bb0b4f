"""`triptych dashboard`: the Dash app in the foreground (`triptych up` runs it as the service `dashboard`)."""

from __future__ import annotations

import typer

from .. import logs
from ..config import get_settings


def dashboard(
    port: int = typer.Option(None, help="port (default TRIPTYCH_DASHBOARD_PORT, 8050)"),
    host: str = typer.Option(None, help="address to bind (default TRIPTYCH_BIND_HOST)"),
) -> None:
    """Serve the live dashboard: Live, Upload, Image, Compare, History, Review and Models pages."""
    from dash_app.app import serve

    settings = get_settings()
    logs.configure()
    host, port = host or settings.bind_host, port or settings.dashboard_port
    typer.echo(f"Triptych dashboard on http://{host}:{port} (Ctrl-C stops it)", err=True)
    serve(host, port)


def register(app: typer.Typer) -> None:
    app.command()(dashboard)
