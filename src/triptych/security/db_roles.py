"""Least privilege in PostgreSQL: each component logs in as its own role.

Which rights each role holds is migration 0011's grants (`db/migrations`); this
module makes each role a login with its own password, and keeps the passwords
(and the components' MinIO keys, triptych.security.bucket_policies): locally one
file each under `<data>/credentials/postgres/` and `.../s3/` (mode 0600, made once
by `triptych up`); on Kubernetes one Secret each, mounted where `triptych provision`
reads them (the chart's `<release>-pg-<component>`, `<release>-s3-<component>`).

A process says which component it is with `TRIPTYCH_COMPONENT` (the declaration
sets it on every function; `triptych up` on the API, the dashboard and the
supervisor); `Settings.postgres_url` then logs in as that component's role. A
process that names none (the CLI, tests, migrations) is the database's owner.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Literal

from psycopg2 import sql

from ..config import COMPONENTS, component_password_path, component_role

COMPONENT_ENV = "TRIPTYCH_COMPONENT"


def ensure_password_files(
    credentials_dir: Path,
    service: Literal["postgres", "s3", "kafka"] = "postgres",
    components: Sequence[str] = COMPONENTS,
) -> dict[str, str]:
    """Each component's password (or MinIO secret key), made (random, 0600) where
    missing; kept after."""
    folder = credentials_dir / service
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    passwords = {}
    for component in components:
        path = component_password_path(credentials_dir, component, service)
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        passwords[component] = path.read_text().strip()
    return passwords


def read_password_files(
    credentials_dir: Path,
    service: Literal["postgres", "s3", "kafka"] = "postgres",
    components: Sequence[str] = COMPONENTS,
) -> dict[str, str]:
    """The passwords that are there (the chart mounts every component's Secret)."""
    found = {}
    for component in components:
        path = component_password_path(credentials_dir, component, service)
        if path.exists():
            found[component] = path.read_text().strip()
    return found


def provision_logins(cur, passwords: dict[str, str]) -> None:
    """Each component's role, made a login with its password (created when missing:
    the caller needs CREATEROLE, as the local superuser and a chart's owner have)."""
    for component, password in passwords.items():
        role = sql.Identifier(component_role(component))
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (component_role(component),))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(role), (password,))


def take_declared_component(environ: MutableMapping[str, str], declared: Mapping[str, str]) -> None:
    """A function's replica is the component its declaration names, never the one of
    the supervisor it inherits its environment from (the supervisor is a component
    of its own): `TRIPTYCH_COMPONENT` set from the declaration, or removed."""
    if COMPONENT_ENV in declared:
        environ[COMPONENT_ENV] = declared[COMPONENT_ENV]
    else:
        environ.pop(COMPONENT_ENV, None)
