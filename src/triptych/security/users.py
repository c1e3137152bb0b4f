"""Dashboard users (table `dashboard_users`): a name, a role, an argon2 password hash.

`triptych users add|list|remove|passwd` manages them. The local stack's admin,
`local`, has no password: it signs in only through a one-time link that
`triptych demo` (or `triptych users link`) prints, as Jupyter's token link does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .roles import check_role

LOCAL_ADMIN = "local"
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
# Passwords shorter than this are refused outright; there is no upper bound beyond a sane one.
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_hasher = PasswordHasher()
# Verified against when the user does not exist, so that the answer takes as long
# either way and does not tell which names exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone's")


class UserRefused(ValueError):
    """A user request that cannot be honoured (bad name, weak password, unknown user)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    has_password: bool
    created_at: datetime


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UserRefused("a user name is 1 to 64 letters, digits, dots, dashes, underscores or @")
    return name


def hash_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserRefused(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def _user(row) -> User:
    return User(row["name"], row["role"], row["password_hash"] is not None, row["created_at"])


def add_user(cur, name: str, role: str, password: str | None) -> User:
    check_name(name)
    check_role(role)
    digest = hash_password(password) if password is not None else None
    cur.execute(
        """INSERT INTO dashboard_users (name, role, password_hash) VALUES (%s, %s, %s)
                   ON CONFLICT (name) DO NOTHING RETURNING name, role, password_hash, created_at""",
        (name, role, digest),
    )
    row = cur.fetchone()
    if row is None:
        raise UserRefused(f"a user named {name!r} exists; `triptych users passwd` changes a password")
    return _user(row)


def list_users(cur) -> list[User]:
    cur.execute("SELECT name, role, password_hash, created_at FROM dashboard_users ORDER BY name")
    return [_user(r) for r in cur.fetchall()]


def remove_user(cur, name: str) -> None:
    """The user and every session they hold: a removed user is signed out at once."""
    cur.execute("DELETE FROM dashboard_users WHERE name = %s", (name,))
    if cur.rowcount == 0:
        raise UserRefused(f"no user named {name!r}")
    cur.execute("DELETE FROM dashboard_sessions WHERE subject = %s", (name,))


def set_password(cur, name: str, password: str) -> None:
    """A new password; the user's open sessions end (whoever knew the old one is out)."""
    cur.execute(
        "UPDATE dashboard_users SET password_hash = %s, updated_at = now() WHERE name = %s",
        (hash_password(password), name),
    )
    if cur.rowcount == 0:
        raise UserRefused(f"no user named {name!r}")
    cur.execute("DELETE FROM dashboard_sessions WHERE subject = %s", (name,))


def find_user(cur, name: str) -> User | None:
    cur.execute("SELECT name, role, password_hash, created_at FROM dashboard_users WHERE name = %s", (name,))
    row = cur.fetchone()
    return _user(row) if row else None


def verify_password(cur, name: str, password: str) -> User | None:
    """The user when `password` is theirs; None otherwise, in about the same time."""
    cur.execute("SELECT name, role, password_hash, created_at FROM dashboard_users WHERE name = %s", (name,))
    row = cur.fetchone()
    digest = row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH
    try:
        _hasher.verify(digest, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["password_hash"] is None:
        return None
    if _hasher.check_needs_rehash(digest):
        cur.execute("UPDATE dashboard_users SET password_hash = %s WHERE name = %s", (_hasher.hash(password), name))
    return _user(row)


def ensure_local_admin(cur) -> User:
    """The local stack's admin (no password: one-time links only), made once."""
    return find_user(cur, LOCAL_ADMIN) or add_user(cur, LOCAL_ADMIN, "admin", None)
