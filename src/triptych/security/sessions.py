"""Dashboard sessions and one-time login links (tables `dashboard_sessions`,
`dashboard_login_links`), kept on the server so that logout, a removed user or a
changed password ends a session at once, which a self-contained signed cookie cannot.

The cookie carries the session id: 256 random bits, stored only as its sha256. Each
session has its own CSRF token, which every write must echo in a header; a new
login is a new id and a new token (no fixation, no replay across sessions).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from .roles import check_role


@dataclass(frozen=True)
class Session:
    subject: str
    role: str
    csrf_token: str
    how: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_session(cur, subject: str, role: str, how: str, lifetime: timedelta) -> tuple[str, Session]:
    """A new session: (the id for the cookie, shown only now; the session)."""
    check_role(role)
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    cur.execute(
        """INSERT INTO dashboard_sessions (session_hash, subject, role, csrf_token, how, expires_at)
                   VALUES (%s, %s, %s, %s, %s, now() + %s)""",
        (_digest(session_id), subject, role, csrf, how, lifetime),
    )
    # Expired sessions are dropped by the writers, now and then (no cron needed).
    if secrets.randbelow(50) == 0:
        cur.execute("DELETE FROM dashboard_sessions WHERE expires_at < now()")
    return session_id, Session(subject, role, csrf, how)


def find_session(cur, session_id: str) -> Session | None:
    """The live session this id opens; None for an unknown, ended or expired one."""
    if not session_id or len(session_id) > 100:
        return None
    cur.execute(
        """SELECT subject, role, csrf_token, how FROM dashboard_sessions
                   WHERE session_hash = %s AND expires_at > now()""",
        (_digest(session_id),),
    )
    row = cur.fetchone()
    return Session(row["subject"], row["role"], row["csrf_token"], row["how"]) if row else None


def end_session(cur, session_id: str) -> None:
    cur.execute("DELETE FROM dashboard_sessions WHERE session_hash = %s", (_digest(session_id),))


def make_login_link(cur, user_name: str, lifetime: timedelta) -> str:
    """A one-time secret that signs `user_name` in once, within `lifetime`."""
    secret = secrets.token_urlsafe(32)
    cur.execute(
        "INSERT INTO dashboard_login_links (link_hash, user_name, expires_at) VALUES (%s, %s, now() + %s)",
        (_digest(secret), user_name, lifetime),
    )
    cur.execute("DELETE FROM dashboard_login_links WHERE expires_at < now() - interval '1 day'")
    return secret


def redeem_login_link(cur, secret: str) -> tuple[str, str] | None:
    """(user, role) for a link used now for the first time and still in time; else None."""
    if not secret or len(secret) > 100:
        return None
    cur.execute(
        """UPDATE dashboard_login_links l SET used_at = now() FROM dashboard_users u
                   WHERE l.link_hash = %s AND l.used_at IS NULL AND l.expires_at > now() AND u.name = l.user_name
                   RETURNING u.name, u.role""",
        (_digest(secret),),
    )
    row = cur.fetchone()
    return (row["name"], row["role"]) if row else None
