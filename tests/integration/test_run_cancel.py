"""Cancelling a retraining run, end to end: through the CLI, then through the API.
The training stops at its next progress report, the run and its step end
`cancelled` with who asked, the champion stays as it was, and the retrain
function's slot is free at once for a new run."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from triptych.db import runs
from triptych.db.connection import Database
from triptych.lifecycle.retrain import Retrainer, RetrainRequest
from triptych.models import registry

from .conftest import triptych
from .runtime_helpers import wait_for

MODEL = "mobilenet_v2"


def _training(db: Database, run_id: str) -> bool:
    """The run's training step is under way (it has reported images done)."""
    run = db.transaction(lambda cur: runs.get_run(cur, run_id))
    step = next((s for s in run["steps"] if s["step"] == f"train:{MODEL}"), None)
    return bool(step and step["state"] == "running" and (step["progress"] or {}).get("images_done"))


def _ended(db: Database, run_id: str) -> dict | None:
    run = db.transaction(lambda cur: runs.get_run(cur, run_id))
    return run if run["state"] not in ("queued", "running") else None


@pytest.mark.timeout(900)
def test_a_run_cancelled_by_the_cli_then_one_by_the_api_stop_and_leave_the_champion(stack, admin_key):
    db = Database(stack)
    champion = registry.version_for_alias(MODEL, registry.CHAMPION, stack)
    retrainer = Retrainer(stack, db)  # what the retrain function runs
    first = str(retrainer.start(RetrainRequest(models=[MODEL], quick=True), requested_by="test")["run_id"])
    wait_for(lambda: _training(db, first), 300, interval=1, message="the first run's training to start")

    said = triptych("runs", "cancel", first)
    assert said.returncode == 0, said.stderr
    # The slot is free at once: a new run starts while the first winds down.
    second = str(retrainer.start(RetrainRequest(models=[MODEL], quick=True), requested_by="test")["run_id"])
    run = wait_for(lambda: _ended(db, first), 120, interval=0.5, message="the cancelled run to stop")
    assert run["state"] == "cancelled" and run["error"] is None and run["cancelled_by"].startswith("cli:")
    train = next(s for s in run["steps"] if s["step"] == f"train:{MODEL}")
    assert train["state"] == "cancelled" and not any(s["step"].startswith("gate:") for s in run["steps"])

    wait_for(lambda: _training(db, second), 300, interval=1, message="the second run's training to start")
    reply = httpx.delete(f"{stack.api_url}/retrain/{second}", headers={"X-API-Key": admin_key}, timeout=30)
    assert reply.status_code == 202, reply.text
    assert reply.json()["cancelled_by"].startswith("key:")
    run = wait_for(lambda: _ended(db, second), 120, interval=0.5, message="the second cancelled run to stop")
    assert run["state"] == "cancelled"
    again = httpx.delete(f"{stack.api_url}/retrain/{second}", headers={"X-API-Key": admin_key}, timeout=30)
    assert again.status_code == 409 and again.json()["code"] == "finished"
    assert registry.version_for_alias(MODEL, registry.CHAMPION, stack) == champion, "the champion stays"
    wait_for(lambda: retrainer._running is None, 60, message="the slot to be free once both runs stopped")
