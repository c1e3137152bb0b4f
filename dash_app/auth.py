"""Sign-in and roles for the dashboard, checked on the server for every request.

- **Who.** A session cookie (`triptych_session`, HttpOnly, SameSite=Lax, bounded
  lifetime, kept server-side in `dashboard_sessions`), opened at `/login` with a
  user name and password, an API key, or a one-time link (`/login?token=...`, which
  `triptych demo` prints for the local admin). Or, when the request comes from an
  address in TRIPTYCH_DASHBOARD_TRUSTED_PROXIES, an authenticating proxy's
  `X-Forwarded-User` / `X-Forwarded-Groups` (groups mapped to roles by
  TRIPTYCH_DASHBOARD_PROXY_GROUPS). From any other address those headers are ignored.
- **Without a session:** a page gets a redirect to `/login?next=...`; anything else 401.
- **Every write** (any method but GET/HEAD) must echo the session's CSRF token in
  `X-CSRFToken`. Dash's renderer sends the `_csrf_token` cookie's value in that
  header by itself; the webcam script does the same.
- **Roles.** A Dash callback that writes is declared with `write_callback(role,
  ...)`; its outputs are registered here, and a request to run it from a lower
  role gets 403 before the callback runs. The callback's own write goes through
  `data.write_as`, which checks the role again and records the user in
  `system_events`. Routes declare theirs with `@needs(role)`.

`/health`, `/metrics` and the static assets stay open: probes and scrapers carry no
session, and none of them shows an image, a label or a result.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

import dash
from flask import Flask, Response, g, jsonify, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse  # what flask.redirect makes

from triptych.security import login_limit
from triptych.security.keys import find_key
from triptych.security.network import address_in
from triptych.security.roles import ROLES, Forbidden, allows, role_for_groups, role_for_scopes
from triptych.security.sessions import end_session, find_session, open_session, redeem_login_link
from triptych.security.users import verify_password

from . import data
from .login_page import login_page

log = logging.getLogger("triptych.dashboard.auth")

SESSION_COOKIE = "triptych_session"
CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads and echoes as X-CSRFToken
CSRF_HEADER = "X-CSRFToken"
OPEN_PATHS = ("/health", "/metrics", "/_favicon.ico")
OPEN_PREFIXES = ("/assets/",)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# Output component id (or pattern type) -> the role its callback needs.
_CALLBACK_ROLES: dict[str, str] = {}


@dataclass(frozen=True)
class Visitor:
    subject: str
    role: str
    how: str  # password, key, link, proxy, or open (sign-in turned off)
    csrf_token: str | None


def write_callback(role: str, *args, **kwargs):
    """`dash.callback`, for a callback that writes: only `role` and above may run it."""
    for output in args:
        if isinstance(output, dash.Output):
            _CALLBACK_ROLES[_component_key(output.component_id)] = role
    return dash.callback(*args, **kwargs)


def _component_key(component_id) -> str:
    return component_id.get("type", "") if isinstance(component_id, dict) else str(component_id)


def callback_role(body: dict) -> str:
    """The role a `/_dash-update-component` request needs: the highest its outputs ask for."""
    outputs = body.get("outputs")
    outputs = outputs if isinstance(outputs, list) else [outputs] if outputs else []
    needed = [
        _CALLBACK_ROLES[key]
        for o in outputs
        if isinstance(o, dict)
        for key in [_component_key(o.get("id"))]
        if key in _CALLBACK_ROLES
    ]
    return max(needed, key=ROLES.index) if needed else "viewer"


def current() -> Visitor:
    """Who this request is from (set by the gate before any page, callback or route runs)."""
    return g.visitor


def may(role: str) -> bool:
    """Whether the visitor's role allows `role`: for layouts, to disable what they may not do
    (the server refuses it anyway)."""
    visitor = g.get("visitor")
    return visitor is not None and allows(visitor.role, role)


def require(role: str, action: str) -> Visitor:
    """The visitor, when their role allows `role`; else Forbidden (the callbacks' own check)."""
    visitor = current()
    if not allows(visitor.role, role):
        raise Forbidden(visitor.role, role, action)
    return visitor


def write_as(role: str, action: str, work, *args, image_id: str | None = None, **kwargs):
    """Run `work(cur, ...)` for the signed-in visitor: Forbidden below `role`; else in
    one transaction with its `system_events` line naming who did it."""
    visitor = require(role, action)

    def audited(cur):
        result = work(cur, *args, **kwargs)
        data.record_event(
            cur,
            f"dashboard_{action}",
            f"{visitor.subject} ({visitor.role}): {action}",
            visitor.subject,
            {"how": visitor.how},
            "info",
            image_id,
        )
        return result

    return data.write(audited)


def needs(role: str):
    """Decorate a route: 403 (JSON) unless the visitor's role allows `role`."""

    def wrap(view):
        @wraps(view)
        def checked(*args, **kwargs):
            if not allows(current().role, role):
                return _refuse(403, "forbidden", f"this needs the {role} role; you are signed in as {current().role}")
            return view(*args, **kwargs)

        return checked

    return wrap


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _refuse(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"code": code, "error": message}), status


def _is_page_request() -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("Accept", "")


def _from_proxy(settings) -> Visitor | None:
    user = request.headers.get("X-Forwarded-User")
    if not user or not address_in(request.remote_addr, settings.dashboard_trusted_proxies):
        return None  # headers from anyone else are ignored, never believed
    groups = [g.strip() for g in request.headers.get("X-Forwarded-Groups", "").split(",") if g.strip()]
    role = role_for_groups(groups, settings.dashboard_proxy_groups)
    if role is None:
        return None
    # The proxy holds the browser's session; the CSRF token is the cookie's, checked as a double submit.
    return Visitor(f"proxy:{user}", role, "proxy", request.cookies.get(CSRF_COOKIE) or None)


def _from_session() -> Visitor | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    session = data.read(find_session, session_id)
    return Visitor(session.subject, session.role, session.how, session.csrf_token) if session else None


def _gate():
    settings = data.settings()
    if not settings.dashboard_login:
        g.visitor = Visitor("anonymous", "admin", "open", None)
        return None
    path = request.path
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or path in ("/login", "/logout"):
        return None
    visitor = _from_proxy(settings) or _from_session()
    if visitor is None:
        if _is_page_request():
            return redirect(f"/login?next={request.full_path.rstrip('?')}")
        return _refuse(401, "not_signed_in", "sign in first: /login")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not visitor.csrf_token or not hmac.compare_digest(sent, visitor.csrf_token):
            return _refuse(403, "csrf", "this write did not carry the session's CSRF token; reload the page")
    if path == "/_dash-update-component":
        # Flask keeps the parsed body: Dash reads the same one, not a second parse.
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _refuse(400, "bad_callback", "the callback request is not a JSON object")
        needed = callback_role(body)
        if not allows(visitor.role, needed):
            return _refuse(403, "forbidden", f"this needs the {needed} role; you are signed in as {visitor.role}")
    g.visitor = visitor
    return None


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _limits(settings, user: str) -> dict[str, int]:
    """The failure counts a sign-in as `user` from this address is held to."""
    return {
        f"user:{user}": settings.dashboard_login_attempts_per_user,
        f"address:{_client_address()}": settings.dashboard_login_attempts_per_address,
    }


def _refused(settings, user: str, target: str, message: str) -> Response:
    data.write(login_limit.record_failure, list(_limits(settings, user)))
    data.audit(
        "dashboard_login_refused",
        f"a sign-in as {user!r} was refused",
        None,
        {"address": _client_address()},
        severity="warning",
    )
    return _login_form(message, 401, target)


def _signed_in(subject: str, role: str, how: str, target: str) -> WerkzeugResponse:
    """A new session (always a new id: no fixation) and its cookies; then on to `target`."""
    settings = data.settings()
    lifetime = timedelta(hours=settings.dashboard_session_hours)
    session_id, session = data.write(open_session, subject, role, how, lifetime)
    data.audit("dashboard_login", f"{subject} signed in ({how}) as {role}", subject)
    response = redirect(safe_next(target), code=303)
    seconds = int(lifetime.total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=seconds,
        httponly=True,
        samesite="Lax",
        secure=settings.dashboard_cookie_secure,
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        session.csrf_token,
        max_age=seconds,
        httponly=False,
        samesite="Strict",
        secure=settings.dashboard_cookie_secure,
        path="/",
    )
    return response


def _login_form(error: str | None = None, status: int = 200, target: str = "/") -> Response:
    # The form's own CSRF token: a double submit of a cookie set with the form.
    token = secrets.token_urlsafe(24)
    response = Response(
        login_page(error=error, next_path=safe_next(target), form_token=token), status=status, mimetype="text/html"
    )
    response.set_cookie(
        "_login_token",
        token,
        max_age=3600,
        httponly=True,
        samesite="Strict",
        secure=data.settings().dashboard_cookie_secure,
        path="/login",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def login():
    if request.method == "GET":
        token = request.args.get("token")
        if token:  # a one-time link
            redeemed = data.write(redeem_login_link, token)
            if redeemed is None:
                return _login_form(
                    "That sign-in link was used already or has expired. `triptych users link` prints a new one.", 401
                )
            return _signed_in(redeemed[0], redeemed[1], "link", request.args.get("next", "/"))
        return _login_form(target=request.args.get("next", "/"))
    form = request.form
    target = form.get("next", "/")
    sent, kept = form.get("form_token", ""), request.cookies.get("_login_token", "")
    if not sent or not hmac.compare_digest(sent, kept):
        return _login_form("The form expired; please sign in again.", 403, target)
    settings = data.settings()
    key = form.get("key", "").strip()
    user = form.get("username", "").strip()
    subject = user or f"key:{key[:16]}"
    wait = data.read(login_limit.wait_before_trying, _limits(settings, subject))
    if wait is not None:
        response = _login_form(f"Too many attempts; try again in {int(wait)} s.", 429, target)
        response.headers["Retry-After"] = str(int(wait))
        return response
    if key:
        found = data.read(find_key, key)
        if found is None or found.revoked_at is not None:
            return _refused(settings, subject, target, "That API key is not valid.")
        return _signed_in(f"key:{found.key_id}", role_for_scopes(found.scopes), "key", target)
    found_user = data.write(verify_password, user, form.get("password", "")) if user else None
    if found_user is None:
        return _refused(settings, subject, target, "Unknown user name or wrong password.")
    return _signed_in(found_user.name, found_user.role, "password", target)


def logout():
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        session = data.read(find_session, session_id)
        sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token", "")
        if session is None or not hmac.compare_digest(sent, session.csrf_token):
            return _refuse(403, "csrf", "sign out from the dashboard's own button")
        data.write(end_session, session_id)
        data.audit("dashboard_logout", f"{session.subject} signed out", session.subject)
    response = redirect("/login", code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


def install(server: Flask) -> None:
    """The gate before every request, and the /login and /logout routes."""
    server.before_request(_gate)
    server.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", logout, methods=["POST"])
