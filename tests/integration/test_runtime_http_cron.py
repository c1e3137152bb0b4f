"""HTTP and cron triggers of the local runner, with two replicas sharing the port."""

from __future__ import annotations

import socket

import httpx2 as httpx

from triptych.runtime.declare import cron_trigger, http_trigger

from .runtime_helpers import FUNCTIONS_DIR, start_supervisor, wait_for, write_project


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_http_and_cron_triggers_call_the_handler(stack, tmp_path):
    port = _free_port()
    cron_file = tmp_path / "cron-ticks"
    project = write_project(
        tmp_path,
        {
            "web": dict(
                source=FUNCTIONS_DIR / "web.py",
                min_replicas=2,
                triggers={"http": http_trigger(port), "tick": cron_trigger(interval="1s")},
            )
        },
    )
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    sup = start_supervisor(project, data_dir, {"WEB_CRON_FILE": str(cron_file)})
    try:
        sup.wait_running("web", 2)
        base = f"http://127.0.0.1:{port}"
        reply = httpx.post(f"{base}/echo?x=1", json={"hello": "world"})
        assert reply.status_code == 200
        assert reply.json()["body"] == {"hello": "world"}  # JSON bodies arrive decoded, as in Nuclio
        assert reply.json()["method"] == "POST" and reply.json()["query"] == {"x": "1"}

        boom = httpx.get(f"{base}/boom")
        assert boom.status_code == 500
        assert boom.json() == {"error": "the handler blew up", "type": "RuntimeError"}
        assert httpx.get(f"{base}/after").status_code == 200, "the replica survives a handler error"

        created = httpx.get(f"{base}/response")
        assert created.status_code == 201 and created.json() == {"created": True}

        pids = {httpx.get(base, headers={"Connection": "close"}).json()["pid"] for _ in range(40)}
        assert len(pids) == 2, "connections are spread over both replicas"

        wait_for(
            lambda: cron_file.exists() and len(cron_file.read_text().splitlines()) >= 2, 10, message="two cron ticks"
        )
        metrics = {r["metrics_port"] for r in sup.replicas("web")}
        scraped = httpx.get(f"http://127.0.0.1:{metrics.pop()}/metrics").text
        assert 'triptych_function_handler_seconds_bucket{function="web"' in scraped
        health = httpx.get(f"http://127.0.0.1:{sup.replicas('web')[0]['metrics_port']}/health")
        assert health.status_code == 200 and health.json()["healthy"] is True
    finally:
        sup.stop()
