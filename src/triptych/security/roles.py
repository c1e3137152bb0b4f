"""The dashboard's three roles, each allowed what the one before it may do and more.

- `viewer`: every read page.
- `labeller`: also the Review page's labels, the webcam and uploads.
- `admin`: also retraining, cancelling, promotion and the dead-letter actions.

An API key signs in with the role its scopes give it (`role_for_scopes`); a group
name from an authenticating proxy maps to a role through
TRIPTYCH_DASHBOARD_PROXY_GROUPS.
"""

from __future__ import annotations

ROLES = ("viewer", "labeller", "admin")


class Forbidden(PermissionError):
    """The signed-in user's role does not allow this action (HTTP 403)."""

    def __init__(self, role: str, needed: str, action: str):
        super().__init__(f"{action} needs the {needed} role; you are signed in as {role}")
        self.role, self.needed, self.action = role, needed, action


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"a role is one of {', '.join(ROLES)} (got {role!r})")
    return role


def allows(role: str, needed: str) -> bool:
    """True when `role` may do what `needed` may (roles are ordered)."""
    return ROLES.index(check_role(role)) >= ROLES.index(check_role(needed))


def role_for_scopes(scopes: tuple[str, ...] | list[str]) -> str:
    """An API key's dashboard role: `admin` scope -> admin; `label` or `upload` -> labeller; else viewer."""
    if "admin" in scopes:
        return "admin"
    if "label" in scopes or "upload" in scopes:
        return "labeller"
    return "viewer"


def role_for_groups(groups: list[str], mapping: dict[str, str]) -> str | None:
    """The highest role any of a proxy's groups maps to; None when none maps (no access)."""
    roles = [check_role(mapping[g]) for g in groups if g in mapping]
    return max(roles, key=ROLES.index) if roles else None
