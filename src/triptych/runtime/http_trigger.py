"""The HTTP trigger: every request becomes a Nuclio event for the handler.

Under a supervisor, replicas accept from the listening socket it owns and hands
them (`listeners`), so a request that comes while the function is at zero waits
for the first replica instead of being refused. Started alone, a replica binds the
port with SO_REUSEPORT. Either way the kernel spreads connections across replicas
as a Nuclio service would. A handler exception
becomes a 500 with a JSON error body; the replica keeps serving. A body larger than
the trigger's `maxRequestBodySize` is refused with 413 while it streams in, so an
oversized request never sits in a replica's memory.
"""

from __future__ import annotations

import asyncio
import threading
import time

import nuclio_sdk
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..sdk import metrics
from .listeners import bind_listener, inherited_listener
from .nuclio_compat import LoadedHandler, decode_body, response_parts, trigger_context
from .spec import HttpTriggerSpec

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


def build_app(function: str, trigger: HttpTriggerSpec, handler: LoadedHandler, base_context) -> Starlette:
    context = trigger_context(base_context, "http", trigger.name)
    labels = {"function": function, "trigger": trigger.name}

    async def endpoint(request: Request) -> Response:
        body = await read_body(request, trigger.max_body_bytes)
        if isinstance(body, Response):
            return body
        content_type = request.headers.get("content-type")
        event = nuclio_sdk.Event(
            body=decode_body(body, content_type),
            content_type=content_type,
            trigger=nuclio_sdk.TriggerInfo("http", trigger.name),
            headers=dict(request.headers),
            fields=dict(request.query_params),
            method=request.method,
            path=request.url.path,
            size=len(body),
            url=str(request.url),
        )
        started = time.perf_counter()
        try:
            output = await run_in_threadpool(handler.handler, context, event)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the replica lives on
            metrics.ERRORS.labels(**labels).inc()
            context.logger.error_with("handler raised", path=request.url.path, error=repr(exc))
            return JSONResponse({"error": str(exc) or type(exc).__name__, "type": type(exc).__name__}, status_code=500)
        finally:
            metrics.HANDLER_SECONDS.labels(**labels).observe(time.perf_counter() - started)
        metrics.EVENTS.labels(**labels).inc()
        status, content, ctype, headers = response_parts(output)
        return Response(content, status_code=status, media_type=ctype, headers=headers)

    routes = [Route("/", endpoint, methods=METHODS), Route("/{path:path}", endpoint, methods=METHODS)]
    return Starlette(routes=routes)


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes | Response:
    """The request body, or the refusal to send when it is larger than `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            return _refusal(400, "bad_content_length", f"Content-Length {declared[:40]!r} is not a number")
        if int(declared) > limit:
            return _refusal(413, "body_too_large", f"the request body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # a chunked body that never said its length
            return _refusal(413, "body_too_large", f"the request body exceeds the limit of {limit} bytes")
    return bytes(body)


class HttpTriggerRunner:
    def __init__(
        self,
        function: str,
        trigger: HttpTriggerSpec,
        handler: LoadedHandler,
        stop: threading.Event,
        context,
        host: str = "127.0.0.1",
    ):
        self.app = build_app(function, trigger, handler, context)
        self.sock = inherited_listener(trigger.name) or bind_listener(host, trigger.port)
        self.port = self.sock.getsockname()[1]
        self.stop = stop
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", limit_concurrency=max(trigger.workers * 16, 64)
        )
        self.server = uvicorn.Server(config)

    def run(self) -> None:
        watcher = threading.Thread(target=self._stop_when_asked, daemon=True)
        watcher.start()
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def _stop_when_asked(self) -> None:
        self.stop.wait()
        self.server.should_exit = True  # uvicorn finishes in-flight requests, then returns
