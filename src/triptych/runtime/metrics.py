"""Prometheus metrics and the health/metrics endpoint of one function replica.

Every replica is its own process with its own registry; the endpoint binds an
ephemeral port that the replica reports to the supervisor, which writes the
Prometheus file-based service discovery targets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LABELS = ("function", "trigger")

EVENTS = Counter("triptych_function_events_total", "Events handled successfully", LABELS)
ERRORS = Counter("triptych_function_errors_total", "Handler invocations that raised", LABELS)
RETRIES = Counter("triptych_function_retries_total", "Re-invocations after an error", LABELS)
DEAD_LETTERS = Counter("triptych_function_dead_letters_total", "Events given up on and dead-lettered", LABELS)
SKIPPED = Counter(
    "triptych_function_skipped_total", "Replayed events addressed to another function", LABELS
)
HANDLER_SECONDS = Histogram(
    "triptych_function_handler_seconds",
    "Handler latency per invocation (a batch counts once)",
    LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "triptych_function_batch_size", "Events per handler invocation", LABELS, buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
CONSUMER_LAG = Gauge(
    "triptych_function_consumer_lag", "Messages behind the end of the partition", ("function", "topic", "partition")
)


class AdminServer:
    """`/health` (JSON from a callback) and `/metrics` on 127.0.0.1, in a thread."""

    def __init__(self, health: Callable[[], dict], host: str = "127.0.0.1", port: int = 0):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.startswith("/metrics"):
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
