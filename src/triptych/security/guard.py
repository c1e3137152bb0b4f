"""The one check every write goes through, whoever serves it.

`Guard.require(headers, scope)` answers the Principal behind a request's key or
token, or raises AuthError: 401 when there is no valid credential (missing, unknown,
revoked, expired), 403 when the credential lacks the scope. `charge_uploads` applies
the caller's upload rate. Headers are any mapping; names compare case-insensitively
(Starlette lowercases them, Nuclio's processor does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Settings
from ..db.connection import Database
from . import rate_limit
from .keys import find_key, looks_like_key
from .tokens import InvalidToken, verify_token


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="triptych"'} if self.status == 401 else {}


class RateLimited(Exception):
    def __init__(self, retry_after_s: float, limit: int):
        super().__init__(
            f"upload rate limit reached ({limit} images a minute for this key); retry in {retry_after_s:.0f} s"
        )
        self.retry_after_s = retry_after_s
        self.limit = limit

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(int(self.retry_after_s + 0.999))}


@dataclass(frozen=True)
class Principal:
    subject: str  # "key:<id> (<name>)" or "jwt:<sub>"
    scopes: tuple[str, ...]
    caller: str  # what rate limits count against
    rate_per_minute: int | None = None

    def allows(self, scope: str) -> bool:
        # Any credential may read; admin may do everything.
        return scope == "read" or scope in self.scopes or "admin" in self.scopes


def credential_from(headers: Mapping[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("x-api-key"):
        return lowered["x-api-key"].strip()
    scheme, _, value = (lowered.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class Guard:
    def __init__(self, settings: Settings, db: Database | None = None):
        self.settings = settings
        self.db = db or Database(settings)

    def identify(self, headers: Mapping[str, str]) -> Principal | None:
        """The caller, None when the request carries no credential; AuthError for a bad one."""
        credential = credential_from(headers)
        if credential is None:
            return None
        if looks_like_key(credential):
            key = self.db.transaction(lambda cur: find_key(cur, credential))
            if key is None:
                raise AuthError(401, "unknown_key", "this API key is not known")
            if key.revoked_at is not None:
                raise AuthError(
                    401, "revoked_key", f"API key {key.key_id} was revoked at {key.revoked_at:%Y-%m-%d %H:%M} UTC"
                )
            return Principal(f"key:{key.key_id} ({key.name})", key.scopes, f"key:{key.key_id}", key.rate_per_minute)
        if credential.count(".") == 2:
            secret = self.settings.jwt_secret
            if secret is None:
                raise AuthError(401, "jwt_disabled", "JWT bearer tokens are not accepted here (no TRIPTYCH_JWT_SECRET)")
            try:
                subject, scopes = verify_token(secret.get_secret_value(), credential)
            except InvalidToken as exc:
                raise AuthError(401, "invalid_token", str(exc)) from exc
            return Principal(f"jwt:{subject}", scopes, f"jwt:{subject}")
        raise AuthError(
            401,
            "malformed_credential",
            "send an API key (tpk_...) or a JWT as `Authorization: Bearer ...` or `X-API-Key`",
        )

    def require(self, headers: Mapping[str, str], scope: str) -> Principal:
        principal = self.identify(headers)
        if principal is None:
            raise AuthError(
                401,
                "missing_credential",
                f"this needs an API key with the `{scope}` scope (`Authorization: Bearer <key>` or "
                "`X-API-Key: <key>`); create one with `triptych keys create NAME --scope " + scope + "`",
            )
        if not principal.allows(scope):
            raise AuthError(
                403,
                "missing_scope",
                f"{principal.subject} lacks the `{scope}` scope (it has: {', '.join(principal.scopes)})",
            )
        return principal

    def check_read(self, headers: Mapping[str, str]) -> Principal | None:
        """Reads are open unless TRIPTYCH_READ_REQUIRES_KEY; a bad credential is refused either way."""
        if self.settings.read_requires_key:
            return self.require(headers, "read")
        return self.identify(headers)

    def charge_uploads(self, principal: Principal, count: int) -> None:
        limit = principal.rate_per_minute or self.settings.upload_rate_per_minute
        wait = self.db.transaction(lambda cur: rate_limit.charge(cur, principal.caller, count, limit))
        if wait is not None:
            raise RateLimited(wait, limit)
