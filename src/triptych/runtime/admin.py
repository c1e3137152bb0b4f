"""The health/metrics endpoint of one function replica (the metrics themselves
are `triptych.sdk.metrics`).

Every replica is its own process with its own registry; the endpoint binds an
ephemeral port that the replica reports to the supervisor, which writes the
Prometheus file-based service discovery targets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class AdminServer:
    """`/health` (JSON from a callback) and `/metrics` on 127.0.0.1, in a thread."""

    def __init__(
        self,
        health: Callable[[], dict],
        host: str = "127.0.0.1",
        port: int = 0,
        routes: dict[str, Callable[[], object]] | None = None,
    ):
        extra = routes or {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if path in extra:
                    body, ctype, status = json.dumps(extra[path]()).encode(), "application/json", 200
                elif self.path.startswith("/metrics"):
                    body, ctype, status = generate_latest(), CONTENT_TYPE_LATEST, 200
                elif self.path.startswith("/health"):
                    state = health()
                    body, ctype = json.dumps(state).encode(), "application/json"
                    status = 200 if state.get("healthy") else 503
                else:
                    body, ctype, status = b"not found", "text/plain", 404
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # scrapes every few seconds would flood the log
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="admin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
