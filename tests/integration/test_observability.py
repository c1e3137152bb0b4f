"""Observability against the real thing: the stack's Prometheus (Debian's
package) scraping real function replicas, the alert rules under promtool and
firing in the running stack, Alertmanager posting to the API's receiver into
`system_events`, and the Grafana dashboard's metrics checked against live scrapes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime

import httpx2 as httpx
import pytest

from triptych.models.bootstrap import QUICK, missing_champions, train_as_mlrun_job
from triptych.observe.replicas import replica_health
from triptych.runtime.declare import cron_trigger
from triptych.stack.services.monitoring import PROMTOOL, RULES_DIR

from .pipeline_helpers import ROOT, start_pipeline
from .runtime_helpers import FUNCTIONS_DIR, query, wait_for, write_project

RUN = {"infer-mobilenet-v2": 1, "aggregate": 1, "jobs": 1}


def prometheus(stack, path: str, **params) -> dict:
    url = f"{stack.prometheus_url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())["data"]


def targets(stack) -> list[dict]:
    return prometheus(stack, "/api/v1/targets", state="active")["activeTargets"]


def up(stack, job: str, **labels) -> list[dict]:
    return [
        t
        for t in targets(stack)
        if t["labels"].get("job") == job
        and t["health"] == "up"
        and all(t["labels"].get(k) == v for k, v in labels.items())
    ]


def alert_events(stack, alertname: str, since: datetime | None = None, **labels) -> list[dict]:
    """Firing reports of an alert in system_events (since a moment: a kept stack has older ones)."""
    rows = query(
        stack,
        "SELECT event_type, details FROM system_events WHERE event_type = 'alert_firing' "
        "AND details->>'alertname' = %s AND created_at >= %s",
        (alertname, since or datetime.min.replace(tzinfo=UTC)),
        dicts=True,
    )
    return [r for r in rows if all(r["details"]["labels"].get(k) == v for k, v in labels.items())]


@pytest.fixture(scope="module")
def observed(stack, tmp_path_factory):
    """Three real functions under a supervisor on the stack's own data dir (where its
    Prometheus finds their targets), and a planted slow model's replica beside them."""
    if "mobilenet_v2" in missing_champions(stack):
        train_as_mlrun_job("mobilenet_v2", QUICK, policy="always")
    folder = tmp_path_factory.mktemp("observed")
    started_at = datetime.now(UTC)
    sup = start_pipeline(folder, RUN, {}, data_dir=stack.data_dir)
    slow_project = write_project(
        folder / "slow",
        {"slow": dict(source=FUNCTIONS_DIR / "slow_model.py", triggers={"tick": cron_trigger(interval="1s")})},
    )
    slow = subprocess.Popen(
        [sys.executable, "-m", "triptych.runtime.replica", "slow", "--project", str(slow_project)],
        env={**os.environ, "TRIPTYCH_DATA_DIR": str(stack.data_dir)},
        stdout=open(folder / "slow.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    yield sup, slow, started_at
    slow.terminate()
    slow.wait(30)
    sup.stop()


def test_the_alert_rules_pass_promtool(stack):
    check = subprocess.run(
        [str(PROMTOOL), "check", "rules", "triptych.yml"], cwd=RULES_DIR, capture_output=True, text=True
    )
    assert check.returncode == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr
    tests = subprocess.run(
        [str(PROMTOOL), "test", "rules", "triptych_test.yml"], cwd=RULES_DIR, capture_output=True, text=True
    )
    assert tests.returncode == 0 and "SUCCESS" in tests.stdout, tests.stdout + tests.stderr


def test_prometheus_scrapes_every_replica_and_follows_a_scale(stack, observed):
    sup, _, _ = observed
    for function in RUN:
        wait_for(lambda f=function: up(stack, "functions", function=f), 60, message=f"{function} scraped")
    for job in ("supervisor", "api", "dashboard", "minio", "prometheus"):
        wait_for(lambda j=job: up(stack, j), 60, message=f"{job} scraped")
    project = sup.process.args[sup.process.args.index("--project") + 1]
    scaled = sup.cli("functions", "scale", "aggregate", "2", "--project", project)
    assert scaled.returncode == 0, scaled.stderr
    wait_for(lambda: len(up(stack, "functions", function="aggregate")) == 2, 90, message="both aggregate replicas up")
    assert {t["labels"]["replica"] for t in up(stack, "functions", function="aggregate")} == {"0", "1"}
    # What the dashboard and /health show, read from Prometheus as on a cluster.
    counted = wait_for(
        lambda: (h := replica_health(stack)).functions.get("aggregate", {}).get("running") == 2 and h,
        60,
        message="two aggregate replicas counted from Prometheus",
    )
    assert counted.functions["infer-mobilenet-v2"]["desired"] == 1 and counted.supervisors_up
    # The supervisor lists its replicas for a Prometheus on another host (HTTP discovery).
    [supervisor] = up(stack, "supervisor")
    with urllib.request.urlopen(f"http://{supervisor['labels']['instance']}/targets", timeout=10) as reply:
        listed = json.loads(reply.read())
    assert {(g["labels"].get("function"), g["labels"].get("replica")) for g in listed} >= {
        ("aggregate", "0"),
        ("aggregate", "1"),
        ("infer-mobilenet-v2", "0"),
        (None, None),
    }
    sup.cli("functions", "scale", "aggregate", "1", "--project", project)
    wait_for(
        lambda: len([t for t in targets(stack) if t["labels"].get("function") == "aggregate"]) == 1,
        90,
        message="the second aggregate target gone after scaling down",
    )


def _scraped_names(stack) -> set[str]:
    """Every metric family and sample name on the /metrics of everything Prometheus scrapes."""
    names = set()
    for target in targets(stack):
        if target["labels"].get("job") not in ("functions", "supervisor", "api", "dashboard"):
            continue
        with urllib.request.urlopen(target["scrapeUrl"], timeout=10) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith("# TYPE "):
                    names.add(line.split()[2])
                elif line and not line.startswith("#"):
                    names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_grafana_dashboard_names_only_metrics_the_stack_exports(stack, observed):
    board = json.loads((ROOT / "infra" / "grafana" / "dashboards" / "triptych.json").read_text())
    referenced = {
        m
        for p in board["panels"]
        for t in p.get("targets", [])
        for m in re.findall(r"\btriptych_[a-z0-9_]+", t["expr"])
    }
    wait_for(lambda: up(stack, "functions", function="jobs") and up(stack, "dashboard"), 60, message="scrapes")
    exported = _scraped_names(stack)
    missing = {m for m in referenced if m not in exported and re.sub(r"_(bucket|sum|count)$", "", m) not in exported}
    assert len(referenced) >= 15 and not missing, f"the dashboard queries metrics nothing exports: {sorted(missing)}"


def test_a_stopped_inference_function_fires_the_no_replica_alert_into_system_events(stack, observed, admin_key):
    sup, _, _ = observed
    pids = [r["pid"] for r in sup.replicas("infer-mobilenet-v2")]
    assert pids and all(pids)
    stopped_at = datetime.now(UTC)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # alive for the supervisor, silent for Prometheus
    try:
        fired = wait_for(
            lambda: alert_events(stack, "FunctionHasNoHealthyReplica", stopped_at, function="infer-mobilenet-v2"),
            180,
            interval=2,
            message="FunctionHasNoHealthyReplica in system_events",
        )
        assert "infer-mobilenet-v2 has no healthy replica" in fired[0]["details"]["annotations"]["summary"]
        listed = httpx.get(f"{stack.api_url}/alerts", headers={"X-API-Key": admin_key}, timeout=10).json()
        assert any(
            a["alertname"] == "FunctionHasNoHealthyReplica" and a["labels"]["function"] == "infer-mobilenet-v2"
            for a in listed
        )
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_a_planted_slow_model_fires_the_latency_alert_into_system_events(stack, observed):
    _, slow, started_at = observed
    assert slow.poll() is None, "the planted replica runs"
    fired = wait_for(
        lambda: alert_events(stack, "ModelInferenceSlow", started_at, model="resnet50"),
        240,
        interval=2,
        message="ModelInferenceSlow in system_events",
    )
    assert "resnet50 p95 inference time" in fired[0]["details"]["annotations"]["summary"]


def test_the_receiver_records_firing_and_resolved_alerts_and_refuses_strangers(stack, admin_key):
    name = f"TestAlert{uuid.uuid4().hex[:8]}"  # a kept stack may hold an earlier run's
    alert = {
        "status": "firing",
        "labels": {"alertname": name, "severity": "warning", "function": "ingest"},
        "annotations": {"summary": "ingest is under test"},
        "startsAt": "2026-11-27T01:00:00Z",
        "fingerprint": uuid.uuid4().hex[:16],
    }
    hook = f"{stack.api_url}/alerts/alertmanager"
    assert httpx.post(hook, json={"status": "firing", "alerts": [alert]}, timeout=10).status_code == 401
    for _ in range(2):  # Alertmanager's reminder within the window is not a second row
        sent = httpx.post(
            hook, json={"status": "firing", "alerts": [alert]}, headers={"X-API-Key": admin_key}, timeout=10
        )
        assert sent.status_code == 204, sent.text
    assert len(alert_events(stack, name)) == 1  # (the name is this run's own)
    listed = httpx.get(f"{stack.api_url}/alerts", headers={"X-API-Key": admin_key}, timeout=10).json()
    assert [a["message"] for a in listed if a["alertname"] == name] == [f"{name} firing: ingest is under test"]
    resolved = httpx.post(
        hook,
        json={"status": "resolved", "alerts": [{**alert, "status": "resolved"}]},
        headers={"X-API-Key": admin_key},
        timeout=10,
    )
    assert resolved.status_code == 204
    listed = httpx.get(f"{stack.api_url}/alerts", headers={"X-API-Key": admin_key}, timeout=10).json()
    assert not [a for a in listed if a["alertname"] == name]
    bad = httpx.post(hook, json={"status": "exploded", "alerts": []}, headers={"X-API-Key": admin_key}, timeout=10)
    assert bad.status_code == 422
