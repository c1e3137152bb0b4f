"""What endpoints depend on, as `Annotated` aliases: the shared services (one per
app, built in `create_app`) and the caller's credentials."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from minio import Minio

from ..config import Settings
from ..db.connection import Database
from ..explain.explainer import Explainer
from ..ingress.upload import Uploader
from ..models.classes import KnownClasses
from ..security import Guard, Principal
from .errors import ApiError

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    db: Database
    s3: Minio
    guard: Guard
    uploader: Uploader
    known_classes: KnownClasses
    explainer: Explainer

    def read(self, query: Callable[..., T], *args, **kwargs) -> T:
        """One read-side query in its own transaction (endpoints are sync: a thread each)."""
        return self.db.transaction(lambda cur: query(cur, *args, **kwargs))


def _services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(_services)]


def _reader(request: Request, svc: Svc) -> Principal | None:
    return svc.guard.check_read(request.headers)


# Declared for the OpenAPI document (the docs' "Authorize" button, generated
# clients); the guard itself reads the headers, so either scheme works everywhere.
_key_header = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    auto_error=False,
    description="an API key (tpk_...): `triptych keys create NAME --scope SCOPE`",
)
_bearer = HTTPBearer(
    scheme_name="Bearer", auto_error=False, description="an API key, or a JWT signed with the server's secret"
)


def require(scope: str):
    def dependency(
        request: Request,
        svc: Svc,
        _key: Annotated[str | None, Security(_key_header)],
        _token: Annotated[object, Security(_bearer)],
    ) -> Principal:
        return svc.guard.require(request.headers, scope)

    return Depends(dependency)


Reader = Annotated[Principal | None, Depends(_reader)]
Uploading = Annotated[Principal, require("upload")]
Labelling = Annotated[Principal, require("label")]
Admin = Annotated[Principal, require("admin")]

# --- cursors -----------------------------------------------------------------------
#
# A cursor is the (timestamp, id) of the last row a page showed, base64url-encoded:
# opaque to clients, stable while new rows arrive.

CursorParam = Annotated[str | None, Query(description="`next_cursor` of the previous page", max_length=200)]


def encode_cursor(at: datetime, row_id) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, id_type: type = uuid.UUID) -> tuple[datetime, object] | None:
    if not cursor:
        return None
    try:
        at, _, row_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
        value = id_type(row_id)  # validated here, so a forged cursor is a 400, not a database error
        return datetime.fromisoformat(at), str(value) if isinstance(value, uuid.UUID) else value
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(
            400, "bad_cursor", "this cursor was not made by this API; pass a `next_cursor` as it came"
        ) from exc


def next_cursor(rows: list[dict], limit: int, at_field: str, id_field: str) -> str | None:
    if len(rows) < limit:
        return None
    return encode_cursor(rows[-1][at_field], rows[-1][id_field])
