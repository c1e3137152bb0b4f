"""Failures during `up` are reported clearly and leave nothing running."""

from __future__ import annotations

import socket

import psutil

from triptych.stack.process import port_is_free

from .conftest import TEST_DATA_DIR, stack_status, triptych

# A second, separate stack on other ports, so the session stack is untouched.
ALT_PORTS = {
    "TRIPTYCH_KAFKA_PORT": "29092",
    "TRIPTYCH_KAFKA_CONTROLLER_PORT": "29093",
    "TRIPTYCH_MINIO_PORT": "29000",
    "TRIPTYCH_MINIO_CONSOLE_PORT": "29001",
    "TRIPTYCH_POSTGRES_PORT": "25432",
    "TRIPTYCH_MLFLOW_PORT": "25000",
    "TRIPTYCH_DASHBOARD_PORT": "28050",
    "TRIPTYCH_API_PORT": "28000",
    "TRIPTYCH_PROMETHEUS_PORT": "29090",
    "TRIPTYCH_ALERTMANAGER_PORT": "29095",
}


def _alt_env(name: str) -> dict[str, str]:
    data_dir = TEST_DATA_DIR.parent / name
    return {**ALT_PORTS, "TRIPTYCH_DATA_DIR": str(data_dir)}


def _nothing_left(env: dict[str, str]) -> None:
    assert all(entry["state"] in ("down", "disabled") and entry["pid"] is None for entry in stack_status(env).values())
    for port in ALT_PORTS.values():
        assert port_is_free("127.0.0.1", int(port)), f"port {port} still bound"
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and env["TRIPTYCH_DATA_DIR"] in " ".join(p.info["cmdline"])
    ]
    assert leftovers == []


def test_taken_port_is_named_with_its_process_and_nothing_starts(stack):
    env = _alt_env("port-taken")
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", int(ALT_PORTS["TRIPTYCH_MLFLOW_PORT"])))
    blocker.listen()
    try:
        proc = triptych("up", env=env)
    finally:
        blocker.close()
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())
    assert "Port 25000" in message and "mlflow" in message
    assert f"pid {psutil.Process().pid}" in message, message
    assert "Traceback" not in proc.stderr
    _nothing_left(env)


def test_service_dying_at_start_stops_the_half_started_stack(stack):
    env = {**_alt_env("half-started"), "TRIPTYCH_KAFKA_HEAP": "not-a-size"}
    proc = triptych("up", env=env)
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())
    assert "kafka exited during start-up" in message
    assert "Invalid maximum heap size" in message, "the tail of Kafka's log must be shown"
    _nothing_left(env)  # postgres, started before kafka, was stopped again
    triptych("down", "--purge", env=env)
