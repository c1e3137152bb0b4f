"""A request body limit for the whole API (ASGI middleware): a declared length over
the limit is refused before a byte is read, and a chunked body that grows past it
is cut off, so no request can make the server buffer more than the limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException

from .errors import error_response


class BodyTooLarge(HTTPException):
    """An HTTPException, so whichever layer reads the body (FastAPI's own parsing,
    an endpoint) answers 413 through the app's error handlers."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"the request body exceeds the limit of {max_bytes} bytes")


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if b"%00" in scope.get("query_string", b""):
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail in a query.
            return await error_response(400, "bad_request", "a query parameter contains a NUL character")(
                scope, receive, send
            )
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await error_response(400, "bad_content_length", "Content-Length is not a number")(
                    scope, receive, send
                )
            if int(declared) > self.max_bytes:
                return await self._refuse(scope, receive, send, int(declared))
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send, None)

    async def _refuse(self, scope, receive, send, declared: int | None):
        size = f"{declared} bytes" if declared is not None else f"over {self.max_bytes} bytes"
        await error_response(413, "body_too_large", f"the request body is {size}; the limit is {self.max_bytes}")(
            scope, receive, send
        )
