"""The retrain function's HTTP surface (`triptych.lifecycle.retrain.Retrainer.handle`)
with the key check, the runs table and the training replaced by fakes: who may
start or cancel a run, what a bad request or a busy function answers, and the
status of a run. tests/integration/test_lifecycle.py and test_run_cancel.py run
it against the real stack."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from triptych.config import Settings
from triptych.lifecycle import retrain as retrain_module
from triptych.lifecycle.retrain import Busy, Retrainer
from triptych.security.guard import AuthError

RUN = str(uuid.uuid4())
ADMIN = {"x-api-key": "admin-key"}


class FakeGuard:
    """Only the key "admin-key" holds the admin scope; reads are open."""

    def check_read(self, headers):
        return None

    def require(self, headers, scope):
        if headers.get("x-api-key") != "admin-key":
            raise AuthError(401, "missing_credential", "send an API key with the admin scope")
        return SimpleNamespace(subject="key:admin")


@pytest.fixture()
def runs(monkeypatch):
    table = {RUN: {"run_id": RUN, "state": "running", "steps": []}}

    def request_cancel(cur, run_id, by):
        run = table.get(run_id)
        return None if run is None else {**run, "cancel_requested_by": by}

    monkeypatch.setattr(retrain_module.runs, "get_run", lambda cur, run_id: table.get(run_id))
    monkeypatch.setattr(retrain_module.runs, "request_cancel", request_cancel)
    monkeypatch.setattr(retrain_module.runs, "recent_runs", lambda cur: list(table.values()))
    return table


@pytest.fixture()
def retrainer(db, runs, monkeypatch):
    started = []
    retrainer = Retrainer(Settings(), db=db, guard=FakeGuard())

    def start(request, requested_by, wait=False):
        if started:
            raise Busy(RUN)
        started.append((request, requested_by))
        return {"run_id": RUN, "state": "queued"}

    monkeypatch.setattr(retrainer, "start", start)
    retrainer.started = started
    return retrainer


def test_an_admin_starts_a_run_and_gets_its_status_path(retrainer):
    status, body, _ = retrainer.handle(
        "/retrain", "POST", json.dumps({"models": ["mobilenet_v2"], "quick": True}), ADMIN
    )
    assert status == 202 and body == {"run_id": RUN, "state": "queued", "status_path": f"/retrain/{RUN}"}
    [(request, by)] = retrainer.started
    assert request.models == ["mobilenet_v2"] and request.quick and by == "key:admin"
    busy, body, _ = retrainer.handle("/retrain", "POST", b"{}", ADMIN)
    assert busy == 409 and body["code"] == "busy" and body["run_id"] == RUN


def test_without_the_admin_key_nothing_starts_or_stops(retrainer):
    status, body, headers = retrainer.handle("/retrain", "POST", b"{}", {})
    assert status == 401 and body["code"] == "missing_credential" and "WWW-Authenticate" in headers
    assert retrainer.handle(f"/retrain/{RUN}", "DELETE", None, {})[0] == 401
    assert retrainer.started == []


@pytest.mark.parametrize("body, reason", [(b"{not json", "must be JSON"), (b'{"models": 3}', "models")])
def test_a_bad_request_says_why(retrainer, body, reason):
    status, reply, _ = retrainer.handle("/retrain", "POST", body, ADMIN)
    assert status == 400 and reply["code"] == "bad_request" and reason in reply["error"]


def test_status_cancel_and_unknown_routes(retrainer, runs):
    status, body, _ = retrainer.handle(f"/retrain/{RUN}", "GET", None, {})
    assert status == 200 and body["state"] == "running"
    assert retrainer.handle("/retrain/not-a-run", "GET", None, {})[0] == 404
    assert retrainer.handle(f"/retrain/{uuid.uuid4()}", "GET", None, {})[0] == 404
    status, body, _ = retrainer.handle(f"/retrain/{RUN}", "DELETE", None, ADMIN)
    assert status == 202 and body["cancel_requested_by"] == "key:admin"
    runs[RUN]["state"] = "succeeded"
    status, body, _ = retrainer.handle(f"/retrain/{RUN}", "DELETE", None, ADMIN)
    assert status == 409 and body["code"] == "finished"
    assert retrainer.handle("/retrain", "PUT", None, ADMIN)[0] == 405
    assert retrainer.handle("/elsewhere", "GET", None, {})[0] == 404
    listed = retrainer.handle("/retrain", "GET", None, {})
    assert listed[0] == 200 and [r["run_id"] for r in listed[1]["runs"]] == [RUN]
