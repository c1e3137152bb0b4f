"""Carrying champions into another deployment says at once what it needs: with the
source MLflow down (`triptych down`, then `triptych cluster up`), it fails within
seconds and names the address, instead of MLflow's client retrying in silence."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from triptych.config import Settings
from triptych.errors import StackError
from triptych.models.carry import carry_champions, mlflow_answers


class _EmptyMlflow(BaseHTTPRequestHandler):
    """An MLflow that answers and has no registered model at all."""

    def do_GET(self):  # noqa: N802 - the name http.server calls
        if self.path == "/health":
            body, status = b"OK", 200
        else:
            body, status = json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "none"}).encode(), 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def empty_mlflow():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmptyMlflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_dead_source_mlflow_is_named_at_once(empty_mlflow):
    dead = f"http://127.0.0.1:{_closed_port()}"
    source = Settings(_env_file=None, mlflow_tracking_uri=dead)
    target = Settings(_env_file=None, mlflow_tracking_uri=empty_mlflow)
    assert mlflow_answers(target) and not mlflow_answers(source)
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(StackError) as failed:
        carry_champions(source, target, {}, "cluster", said.append)
    assert time.monotonic() - started < 15
    assert dead in str(failed.value) and "`triptych up`" in str(failed.value)


def test_a_dead_target_mlflow_is_named_at_once():
    dead = f"http://127.0.0.1:{_closed_port()}"
    target = Settings(_env_file=None, mlflow_tracking_uri=dead)
    with pytest.raises(StackError) as failed:
        carry_champions(Settings(_env_file=None), target, {}, "node")
    assert dead in str(failed.value)
