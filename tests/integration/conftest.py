"""The real stack for integration tests, started by the test session itself.

It runs on its own ports and data dir, so a developer's own stack (default ports)
is never touched. Installs are cached in ~/.cache/triptych like any other stack.
Set TRIPTYCH_TEST_KEEP_STACK=1 to leave it running between runs (faster locally).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from triptych.config import Settings

TEST_DATA_DIR = Path(os.environ.get("TRIPTYCH_TEST_DATA_DIR", "/tmp/triptych-test/stack"))

TEST_ENV = {
    "TRIPTYCH_DATA_DIR": str(TEST_DATA_DIR),
    # Function tests run supervisors with data folders of their own: their replicas log in
    # to the stack's PostgreSQL as their components, with the passwords `up` made here.
    "TRIPTYCH_CREDENTIALS_DIR": str(TEST_DATA_DIR / "credentials"),
    "TRIPTYCH_KAFKA_PORT": "19092",
    "TRIPTYCH_KAFKA_CONTROLLER_PORT": "19093",
    "TRIPTYCH_MINIO_PORT": "19000",
    "TRIPTYCH_MINIO_CONSOLE_PORT": "19001",
    "TRIPTYCH_POSTGRES_PORT": "15432",
    "TRIPTYCH_MLFLOW_PORT": "15000",
    "TRIPTYCH_DASHBOARD_PORT": "18050",
    "TRIPTYCH_API_PORT": "18000",
    "TRIPTYCH_PROMETHEUS_PORT": "19090",
    "TRIPTYCH_ALERTMANAGER_PORT": "19095",
    # Function tests run their own supervisors on test projects.
    "TRIPTYCH_FUNCTIONS_AUTOSTART": "false",
    # Each function at its declared min (1 where min is 0), so the pipeline tests see
    # fixed replicas; test_autoscaling turns the scaler on for its own supervisors.
    "TRIPTYCH_AUTOSCALE": "false",
    # The champions train in this process (nice 19) while replicas and the node's
    # prebuild keep the cores busy: torch's OpenMP threads then spin at every barrier
    # while their peer waits for a core, 728 ms a step against 211 ms passive; a fresh
    # machine's first training ran past its 600 s twice. Read when torch loads.
    "OMP_WAIT_POLICY": "PASSIVE",
}
# A URL given in the caller's environment would make the tests skip starting
# that server; the test stack must be self-contained.
for _name in ("KAFKA_BOOTSTRAP", "S3_ENDPOINT", "DATABASE_URL", "MLFLOW_TRACKING_URI"):
    os.environ.pop(f"TRIPTYCH_{_name}", None)
os.environ.update(TEST_ENV)

CLI = [sys.executable, "-m", "triptych.cli"]


def triptych(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def stack_status(env: dict[str, str] | None = None) -> dict:
    proc = triptych("status", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def pytest_collection_modifyitems(config, items):
    """Every test under tests/integration and tests/e2e needs the real stack:
    marked so, `pytest -m "not integration"` runs only what needs none."""
    for item in items:
        if any(part in ("integration", "e2e") for part in item.path.parts):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def stack(stack_settings: Settings):
    TEST_DATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    TEST_DATA_DIR.parent.chmod(0o755)  # the postgres user must traverse it
    started = time.monotonic()
    proc = triptych("up")
    assert proc.returncode == 0, f"triptych up failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"\n[stack] up in {time.monotonic() - started:.1f}s\n{proc.stderr}")
    # The champions first, alone: on a fresh machine the node's compiles beside them
    # took one of the two cores (the e2e pipeline's setup: 443 s of its 600).
    from .pipeline_helpers import train_missing_champions

    train_missing_champions(stack_settings)
    _prebuild_kube_node()
    yield stack_settings
    if os.environ.get("TRIPTYCH_TEST_KEEP_STACK") != "1":
        triptych("down", "--purge")


def _prebuild_kube_node() -> None:
    """The Kubernetes node's binaries and images (test_kube_node.py deploys at tag
    `test`) build at the lowest CPU priority while the tests before it run: most of
    an hour on a fresh machine, a minute on a warm one (triptych.kube.prebuild)."""
    if os.geteuid() != 0:
        return  # the node's tests need root and are skipped without it
    log = TEST_DATA_DIR.parent / "kube-prebuild.log"
    # SCHED_IDLE, not only nice 19: a training in the test process lowers that process
    # to nice 19 for good (models.priority), and two fresh-machine runs then shared the
    # cores half and half with these compiles; the e2e pipeline's champion training ran
    # past its 600 s and every browser test errored. Idle-class work runs only when
    # nothing else wants the core.
    idle = ["chrt", "--idle", "0"] if shutil.which("chrt") else []
    subprocess.Popen(
        [*idle, "nice", "-n", "19", *CLI[:1], "-m", "triptych.kube.prebuild", "--images", "test"],
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def make_key(stack, scopes: list[str], rate: int | None = None) -> str:
    """A fresh API key in the test stack's database (the plaintext)."""
    import uuid

    from triptych.db.connection import Database
    from triptych.security.keys import create_key

    db = Database(stack)
    try:
        return db.transaction(lambda cur: create_key(cur, f"test-{uuid.uuid4().hex[:8]}", scopes, rate))[1]
    finally:
        db.close()


@pytest.fixture(scope="session")
def admin_key(stack) -> str:
    # A high rate: the whole session uploads with it, and rate limits have their own test.
    return make_key(stack, ["upload", "label", "admin"], rate=100_000)


@pytest.fixture(scope="module")
def ingress(stack, tmp_path_factory):
    """The real upload and ingest functions, under the real supervisor; yields the upload URL."""
    from .pipeline_helpers import (
        MAX_BYTES,
        MAX_REQUEST_BYTES,
        free_port,
        start_pipeline,
    )

    port = free_port()
    sup = start_pipeline(
        tmp_path_factory.mktemp("ingress"),
        {"upload": 1, "ingest": 1},
        {
            "TRIPTYCH_UPLOAD_PORT": str(port),
            "TRIPTYCH_MAX_IMAGE_BYTES": str(MAX_BYTES),
            "TRIPTYCH_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
            "TRIPTYCH_DUPLICATE_POLICY": "reuse",
        },
    )
    yield f"http://127.0.0.1:{port}"
    sup.stop()
