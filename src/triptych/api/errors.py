"""Every error the API answers is JSON `{"code", "error"}` (see schemas.ErrorBody),
whatever raised it: our own ApiError, FastAPI's validation, Starlette's 404/405,
the guard's 401/403/429, or an unexpected exception (500, logged, no trace leaked)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..security import AuthError, RateLimited
from .schemas import ErrorBody

log = logging.getLogger("triptych.api")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, error: str, details=None, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status = status
        self.code = code
        self.details = details
        self.headers = headers or {}


def error_response(status: int, code: str, error: str, details=None, headers=None) -> JSONResponse:
    body = ErrorBody(code=code, error=error, details=details).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an operation may answer."""
    return {s: {"model": ErrorBody, "description": STATUS_CODES.get(s, "error")} for s in statuses}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.code, str(exc), exc.details, exc.headers)

    @app.exception_handler(AuthError)
    async def _auth_error(_: Request, exc: AuthError):
        return error_response(exc.status, exc.code, str(exc), headers=exc.headers)

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited):
        return error_response(429, "rate_limited", str(exc), {"retry_after_s": exc.retry_after_s}, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        problems = [{"where": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{p['where']}: {p['problem']}" for p in problems[:5])
        return error_response(422, "invalid_request", summary or "invalid request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the first route matching the path; name every method the path takes.
            headers["Allow"] = ", ".join(
                sorted(
                    {
                        m
                        for r in request.app.routes
                        if isinstance(r, APIRoute) and r.path_regex.match(request.url.path)
                        for m in r.methods or ()
                    }
                )
            )
        return error_response(
            exc.status_code, STATUS_CODES.get(exc.status_code, "error"), str(exc.detail), headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"{type(exc).__name__}: the server failed; see its log")
