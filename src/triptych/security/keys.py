"""API keys: made here, shown once, stored only as a hash (table `api_keys`).

A key reads `tpk_<key id>_<secret>`: the id lets `triptych keys list|revoke` name a
key without its secret, and the prefix lets a leaked key be recognised by secret
scanners. The secret is 256 random bits, so a plain sha256 is a safe digest (there
is nothing to brute-force, unlike a password).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..config import Settings

SCOPES = ("read", "upload", "label", "admin")
PREFIX = "tpk"
_KEY_SHAPE = re.compile(rf"^{PREFIX}_([0-9a-f]{{12}})_[A-Za-z0-9_-]{{43}}$")


class KeyRefused(ValueError):
    """A key request that cannot be honoured (unknown scope, name in use, unknown key)."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    rate_per_minute: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> ApiKey:
        return cls(
            row["key_id"],
            row["name"],
            tuple(row["scopes"]),
            row["rate_per_minute"],
            row["created_at"],
            row["last_used_at"],
            row["revoked_at"],
        )


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def looks_like_key(text: str) -> bool:
    return bool(_KEY_SHAPE.match(text))


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeyRefused(f"scopes must be some of {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})")
    return tuple(s for s in SCOPES if s in scopes)


_COLUMNS = "key_id, name, scopes, rate_per_minute, created_at, last_used_at, revoked_at"


def create_key(
    cur, name: str, scopes: list[str] | tuple[str, ...], rate_per_minute: int | None = None
) -> tuple[ApiKey, str]:
    """A new key: (its record, the plaintext, which is never stored and shown only now)."""
    scopes = check_scopes(scopes)
    if not 1 <= len(name) <= 100:
        raise KeyRefused("a key's name is 1 to 100 characters")
    cur.execute("SELECT 1 FROM api_keys WHERE name = %s AND revoked_at IS NULL", (name,))
    if cur.fetchone():
        raise KeyRefused(f"an active key is already named {name!r}; revoke it first or pick another name")
    key_id = secrets.token_hex(6)
    plaintext = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    cur.execute(
        f"""INSERT INTO api_keys (key_id, name, key_hash, scopes, rate_per_minute) VALUES (%s, %s, %s, %s, %s)
            RETURNING {_COLUMNS}""",
        (key_id, name, hash_key(plaintext), list(scopes), rate_per_minute),
    )
    return ApiKey.from_row(cur.fetchone()), plaintext


def list_keys(cur, include_revoked: bool = False) -> list[ApiKey]:
    cur.execute(
        f"SELECT {_COLUMNS} FROM api_keys"
        + ("" if include_revoked else " WHERE revoked_at IS NULL")
        + " ORDER BY created_at"
    )
    return [ApiKey.from_row(r) for r in cur.fetchall()]


def revoke_key(cur, id_or_name: str) -> ApiKey:
    cur.execute(
        f"""UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL AND (key_id = %s OR name = %s)
            RETURNING {_COLUMNS}""",
        (id_or_name, id_or_name),
    )
    row = cur.fetchone()
    if row is None:
        raise KeyRefused(f"no active key with id or name {id_or_name!r}")
    return ApiKey.from_row(row)


def find_key(cur, plaintext: str) -> ApiKey | None:
    """The key these bytes are, revoked or not; None for a key that never existed.
    Marks it used (at most once a minute, so reads stay cheap)."""
    if not looks_like_key(plaintext):
        return None
    cur.execute(
        f"""UPDATE api_keys SET last_used_at = now()
            WHERE key_hash = %s AND revoked_at IS NULL AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
            RETURNING {_COLUMNS}""",
        (hash_key(plaintext),),
    )
    row = cur.fetchone()
    if row is None:
        cur.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = %s", (hash_key(plaintext),))
        row = cur.fetchone()
    return ApiKey.from_row(row) if row else None


# --- the local stack's own keys ---------------------------------------------------
#
# `triptych up` makes one key for the person at the keyboard (the CLI, curl) and one
# for the dashboard, and keeps each in a file only its owner can read.

LOCAL_KEYS = {"local": ("upload", "label", "admin"), "dashboard": ("upload", "label")}
# The owner's own keys on their own machine: a bound against runaway loops, not a quota.
LOCAL_RATE_PER_MINUTE = 60_000


def key_file(settings: Settings, name: str) -> Path:
    return settings.data_dir / "keys" / f"{name}.key"


def client_key(settings: Settings, name: str = "local") -> str | None:
    """The key this process presents: TRIPTYCH_API_KEY (the dashboard's:
    TRIPTYCH_DASHBOARD_API_KEY first), else the local stack's key file."""
    if name == "dashboard" and settings.dashboard_api_key:
        return settings.dashboard_api_key.get_secret_value()
    if settings.api_key:
        return settings.api_key.get_secret_value()
    try:
        return key_file(settings, name).read_text().strip() or None
    except OSError:
        return None


def adopt_key(cur, name: str, plaintext: str) -> bool:
    """Register a key made elsewhere (the chart's generated Secret) under `name`, with
    that local key's scopes, unless it is already active; True when it was added.
    An earlier active key of that name is revoked: the Secret is the one truth."""
    shape = _KEY_SHAPE.match(plaintext)
    if not shape:
        raise KeyRefused(f"the {name} key is not a Triptych key ({PREFIX}_<12 hex>_<43 characters>)")
    existing = find_key(cur, plaintext)
    if existing is not None and existing.revoked_at is None:
        return False
    if existing is not None:
        raise KeyRefused(
            f"the {name} key given was revoked; give a new one (on Kubernetes: delete its Secret "
            "and upgrade the release, which makes another)"
        )
    cur.execute("UPDATE api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,))
    cur.execute(
        "INSERT INTO api_keys (key_id, name, key_hash, scopes, rate_per_minute) VALUES (%s, %s, %s, %s, %s)",
        (shape.group(1), name, hash_key(plaintext), list(LOCAL_KEYS[name]), LOCAL_RATE_PER_MINUTE),
    )
    return True


def ensure_local_key(cur, settings: Settings, name: str) -> Path:
    """Make the named local key unless its file holds a key that still works."""
    path = key_file(settings, name)
    try:
        existing = find_key(cur, path.read_text().strip())
    except OSError:
        existing = None
    if existing is not None and existing.revoked_at is None:
        return path
    cur.execute("UPDATE api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,))
    _, plaintext = create_key(cur, name, list(LOCAL_KEYS[name]), LOCAL_RATE_PER_MINUTE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(plaintext + "\n")
    os.replace(path.with_suffix(".tmp"), path)
    return path
