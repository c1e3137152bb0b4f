"""The Triptych dashboard: a multi-page Dash app over Postgres (results) and MinIO
(image bytes). `triptych dashboard` serves it in the foreground; `triptych up`
starts it as the service `dashboard`.

Pages are registered here, in navigation order, from one module each under
`pages/`; each module has `PATH`, `NAME`, `TITLE`, `layout(**query)` and its callbacks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html
from flask import g, has_request_context

from .auth import install as install_auth
from .media import register_routes
from .metrics import register_metrics
from .webcam_relay import register_webcam_routes

ASSETS = Path(__file__).resolve().parent / "assets"
log = logging.getLogger("triptych.dashboard")


def _pages():
    from .pages import compare, history, image, live, models, review, upload, webcam

    return [live, upload, webcam, image, compare, history, review, models]


def navbar(pages) -> dbc.Navbar:
    links = [
        dbc.NavItem(
            dbc.NavLink(p.NAME, href=p.PATH, active="exact" if p.PATH == "/" else "partial", id=f"nav-{p.NAME.lower()}")
        )
        for p in pages
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                html.A(
                    [html.Span("▮▮▮", className="brand-mark"), html.Span("Triptych", className="brand-name")],
                    href="/",
                    className="navbar-brand d-flex align-items-center gap-2",
                ),
                dbc.Nav(links, navbar=True, className="gap-1"),
                html.Span("three models, one stream", className="navbar-text d-none d-lg-inline small"),
                _who(),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        className="mb-3",
    )


def _who():
    """Who is signed in, their role, and the sign-out button (a form: it posts the CSRF token)."""
    visitor = g.get("visitor") if has_request_context() else None
    if visitor is None or visitor.how == "open":
        return html.Span()
    signed_in = html.Span(
        [visitor.subject.removeprefix("key:"), " · ", html.Strong(visitor.role)],
        className="navbar-text small me-2",
        id="nav-user",
    )
    if visitor.how == "proxy":  # the proxy signs people out, not us
        return html.Div(signed_in, className="ms-auto d-flex align-items-center")
    return html.Form(
        [
            signed_in,
            dcc.Input(type="hidden", name="csrf_token", value=visitor.csrf_token),
            html.Button("Sign out", type="submit", className="btn btn-sm btn-outline-light", id="nav-logout"),
        ],
        action="/logout",
        method="POST",
        className="ms-auto d-flex align-items-center",
    )


def create_app() -> Dash:
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",  # pages are registered below, not discovered from a folder
        assets_folder=str(ASSETS),
        title="Triptych",
        update_title="",  # no "Updating..." flicker in the tab title every refresh
        suppress_callback_exceptions=True,  # each page's components exist only while it is shown
    )
    pages = _pages()
    for order, page in enumerate(pages):
        dash.register_page(
            page.__name__,
            path=page.PATH,
            name=page.NAME,
            title=f"{page.TITLE} · Triptych",
            layout=page.layout,
            order=order,
            path_template=getattr(page, "PATH_TEMPLATE", None),
        )
    # A function, so that the bar names whoever asked for the page.
    app.layout = lambda: html.Div([navbar(pages), dbc.Container(dash.page_container, fluid="xxl", className="pb-5")])
    install_auth(app.server)  # first: its gate runs before every other route and callback
    register_routes(app.server)
    register_metrics(app.server)
    register_webcam_routes(app.server)
    return app


def serve(host: str, port: int, threads: int = 8) -> None:
    """Serve with waitress (a production WSGI server: several requests at once,
    no development-server warning)."""
    from waitress import serve as waitress_serve

    app = create_app()
    log.info("dashboard on http://%s:%s", host, port)
    waitress_serve(app.server, host=host, port=port, threads=threads, ident="triptych-dashboard")
