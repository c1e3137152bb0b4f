"""The supervisor's scaler against real Kafka, Postgres and MLflow: a burst scales a
function up to its max and back to its min with every message handled once, even
with replicas stopped in the middle of a batch; a function at zero wakes on a
waiting message, on an HTTP request (which is held, not refused) and on its
declared condition (a challenger, for infer-shadow); two hosts share one function.

Each test runs its own supervisor on a test project, with a fast policy (ticks of
1 s, a window of 8 s, idle to zero after 4 s) so that a minute shows every phase."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx2 as httpx
import pytest

from triptych.bus import producer as make_producer
from triptych.models import registry
from triptych.models.zoo import architecture
from triptych.runtime.declare import http_trigger
from triptych.runtime.wake import challenger_exists
from triptych.sdk import Delivery

from .pipeline_helpers import free_port
from .runtime_helpers import (
    FUNCTIONS_DIR,
    query,
    send_json,
    start_sink,
    start_supervisor,
    wait_for,
    write_project,
)

# The host-CPU hold is off: how busy the test machine is is not the test's to choose (a unit test covers it).
SCALING = {
    "TRIPTYCH_AUTOSCALE": "true",
    "TRIPTYCH_SCALE_TICK_S": "1",
    "TRIPTYCH_SCALE_STABILISATION_S": "8",
    "TRIPTYCH_SCALE_IDLE_TO_ZERO_S": "4",
    "TRIPTYCH_SCALE_LAG_PER_REPLICA": "100",
    "TRIPTYCH_SCALE_MAX_HOST_BUSY": "1.01",
}
BATCHES = Delivery(batch_size=8, batch_wait_ms=20, max_attempts=3, retry_backoff_ms=50)


def _entry(sup, function: str = "sink") -> dict:
    return sup.status().get(function, {})


def _count(stack, table: str) -> int:
    return query(stack, f"SELECT count(*) FROM {table}")[0][0]


def _project_of(sup) -> str:
    return sup.process.args[sup.process.args.index("--project") + 1]


def _scale_events(stack, function: str, since: datetime) -> list[dict]:
    rows = query(
        stack,
        "SELECT details FROM system_events WHERE event_type = 'function_scaled' AND component = %s "
        "AND created_at >= %s ORDER BY event_id",
        (function, since),
    )
    return [row[0] for row in rows]


def _burst(stack, topic: str, count: int, prefix: str) -> None:
    producer = make_producer(stack)
    send_json(producer, topic, [{"id": f"{prefix}{i:05d}", "sent_at": time.time()} for i in range(count)])
    producer.close()


def test_a_burst_scales_up_to_max_and_back_to_min_and_a_scale_down_mid_batch_loses_nothing(stack, tmp_path):
    since = datetime.now(UTC)
    sup, topic, table = start_sink(
        stack,
        tmp_path,
        1,
        max_replicas=4,
        partitions=6,
        handler="batch",
        delivery=BATCHES,
        env={**SCALING, "SINK_DELAY_MS": "30"},
    )
    try:
        sup.wait_running("sink", 1)
        assert _entry(sup)["mode"] == "auto" and (_entry(sup)["min"], _entry(sup)["max"]) == (1, 4)
        _burst(stack, topic, 1500, "b")
        wait_for(lambda: _entry(sup)["desired"] == 4, 60, message="the burst to scale sink to its max, 4")
        up = _entry(sup)["reason"]
        assert "lag" in up, up
        sup.wait_running("sink", 4)
        assert _count(stack, table) < 1500, "the burst outlasts the scale-up (else nothing is stopped mid-batch)"

        # Pinned at 1 mid-burst: three replicas stop in the middle of their batches and drain.
        pinned = sup.cli("functions", "scale", "sink", "1", "--project", _project_of(sup))
        assert pinned.returncode == 0, pinned.stderr
        wait_for(
            lambda: (
                _entry(sup)["mode"] == "pinned" and len(_entry(sup)["replicas"]) == 1 and _entry(sup)["draining"] == 0
            ),
            90,
            message="three replicas drained and gone",
        )
        handed = sup.cli("functions", "scale", "sink", "auto", "--project", _project_of(sup))
        assert handed.returncode == 0, handed.stderr

        wait_for(lambda: _count(stack, table) == 1500, 180, message="all 1,500 messages handled")
        wait_for(
            lambda: _entry(sup)["desired"] == 1 and len(_entry(sup)["replicas"]) == 1,
            90,
            message="back to min 1 once the window has passed",
        )
        assert query(stack, f"SELECT count(*) FROM {table} WHERE deliveries > 1")[0][0] == 0, "a message handled twice"
        events = _scale_events(stack, "sink", since)
        assert any(e["to"] == 4 and "lag" in e["reason"] for e in events), events
        assert events[-1]["to"] == 1 and events[-1]["from"] > 1, events
        listed = json.loads(sup.cli("functions", "list", "--json", "--project", _project_of(sup)).stdout)
        assert (
            listed
            == [
                {
                    "name": "sink",
                    "desired": 1,
                    "running": 1,
                    "min": 1,
                    "max": 4,
                    "mode": "auto",
                    "reason": listed[0]["reason"],
                }
            ]
            and "→ 1" in listed[0]["reason"]
        )
    finally:
        sup.stop()


def test_a_function_at_zero_wakes_on_a_waiting_message_handles_it_once_and_sleeps_again(stack, tmp_path):
    sup, topic, table = start_sink(stack, tmp_path, 0, max_replicas=2, env=SCALING)
    try:
        wait_for(lambda: _entry(sup).get("mode") == "auto" and _entry(sup)["desired"] == 0, 30, message="sink at zero")
        assert _entry(sup)["replicas"] == []
        colds = []
        for round_ in range(3):
            sent = time.time()
            _burst(stack, topic, 1, f"wake{round_}-")
            wait_for(lambda round_=round_: _count(stack, table) == round_ + 1, 60, message=f"wake {round_} handled")
            colds.append(query(stack, f"SELECT max(processed_at) FROM {table}")[0][0] - sent)
            wait_for(
                lambda: _entry(sup)["desired"] == 0 and _entry(sup)["replicas"] == [] and not _entry(sup)["draining"],
                60,
                message="back to zero after the idle period",
            )
        assert query(stack, f"SELECT count(*) FROM {table} WHERE deliveries > 1")[0][0] == 0
        print(f"\ncold start (message sent -> handled), 3 wakes: {', '.join(f'{c:.2f} s' for c in colds)}")
    finally:
        sup.stop()


def test_an_http_request_to_a_function_at_zero_is_held_and_answered(stack, tmp_path):
    port = free_port()
    project = write_project(
        tmp_path,
        {
            "web": dict(
                source=FUNCTIONS_DIR / "web.py", min_replicas=0, max_replicas=2, triggers={"http": http_trigger(port)}
            )
        },
    )
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    sup = start_supervisor(project, data_dir, {**SCALING, "WEB_CRON_FILE": str(tmp_path / "none")})
    try:
        wait_for(lambda: _entry(sup, "web").get("desired") == 0, 30, message="web at zero")
        base = f"http://127.0.0.1:{port}"
        for _round in range(2):
            assert _entry(sup, "web")["replicas"] == []
            with ThreadPoolExecutor(5) as pool:
                replies = list(pool.map(lambda i: httpx.post(f"{base}/held/{i}", json={"n": i}, timeout=60), range(5)))
            assert [r.status_code for r in replies] == [200] * 5, [r.text for r in replies]
            assert sorted(r.json()["body"]["n"] for r in replies) == list(range(5))
            assert "request held" in _entry(sup, "web")["reason"]
            wait_for(
                lambda: _entry(sup, "web")["desired"] == 0 and _entry(sup, "web")["replicas"] == [],
                60,
                message="web back to zero",
            )
    finally:
        sup.stop()


@pytest.fixture()
def challenger(stack):
    """Sets a `challenger` alias on mobilenet_v2 when called (its champion's version, or a
    bare version made here when no champion was trained yet); everything undone after."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    assert not challenger_exists(stack), "the test stack has a challenger already"
    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    name = architecture("mobilenet_v2").registered_name
    made_model = made_version = None
    version = registry.version_for_alias("mobilenet_v2", registry.CHAMPION, stack)
    if version is None:
        try:
            client.create_registered_model(name)
            made_model = name
        except MlflowException:
            pass  # it exists, with no champion
        version = made_version = client.create_model_version(
            name, source="s3://mlflow/triptych-autoscaling-test"
        ).version
    yield SimpleNamespace(
        set=lambda: client.set_registered_model_alias(name, registry.CHALLENGER, version),
        remove=lambda: remove_challenger(client, name),
    )
    remove_challenger(client, name)
    if made_version:
        client.delete_model_version(name, made_version)
    if made_model:
        client.delete_registered_model(made_model)


def remove_challenger(client, name: str) -> None:
    """What the gate does when it promotes or rejects: the alias goes."""
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model_alias(name, registry.CHALLENGER)
    except MlflowException:
        pass


def test_a_shadow_function_sleeps_without_a_challenger_and_wakes_to_judge_only_what_comes_after(
    stack, tmp_path, challenger
):
    sup, topic, table = start_sink(
        stack, tmp_path, 0, max_replicas=1, partitions=1, env=SCALING, wake_when="challenger", initial_offset="latest"
    )
    try:
        wait_for(lambda: _entry(sup).get("desired") == 0, 30, message="the shadow function at zero")
        _burst(stack, topic, 20, "before-")
        # The scaler sees the lag, and the missing challenger keeps the function asleep.
        seen = wait_for(
            lambda: (_entry(sup).get("observed") or {}).get("condition"), 30, message="a tick that read the condition"
        )
        assert seen == {"challenger": False} and _entry(sup)["desired"] == 0 and _entry(sup)["replicas"] == []

        challenger.set()
        sup.wait_running("sink", 1, timeout=60)
        _burst(stack, topic, 5, "after-")
        wait_for(lambda: _count(stack, table) == 5, 60, message="the five messages after the wake")
        assert query(stack, f"SELECT count(*) FROM {table} WHERE id LIKE 'before-%%'")[0][0] == 0, (
            "a shadow phase judges what arrives from its start, not what waited"
        )

        challenger.remove()
        wait_for(
            lambda: _entry(sup)["desired"] == 0 and _entry(sup)["replicas"] == [] and not _entry(sup)["draining"],
            60,
            message="asleep again once the challenger is gone",
        )
    finally:
        sup.stop()


def test_two_hosts_share_a_function_within_its_max_and_one_takes_all_when_the_other_goes(stack, tmp_path):
    ports = [free_port(), free_port()]
    peers = json.dumps([f"127.0.0.1:{p}" for p in ports])
    env = {**SCALING, "SINK_DELAY_MS": "30", "TRIPTYCH_SCALE_PEERS": peers}
    (tmp_path / "a").mkdir()
    first, topic, table = start_sink(
        stack,
        tmp_path / "a",
        1,
        max_replicas=4,
        partitions=6,
        handler="batch",
        delivery=BATCHES,
        env={**env, "TRIPTYCH_SUPERVISOR_PORT": str(ports[0])},
    )
    (tmp_path / "b").mkdir()
    second = start_supervisor(
        Path(_project_of(first)),
        tmp_path / "b",
        {**env, "SINK_TABLE": table, "TRIPTYCH_SUPERVISOR_PORT": str(ports[1])},
    )
    try:
        first.wait_running("sink", 1)
        second.wait_running("sink", 1)
        _burst(stack, topic, 2000, "h")
        wait_for(
            lambda: _entry(first)["desired"] == 2 and _entry(second)["desired"] == 2,
            60,
            message="each host at its half of max 4",
        )
        assert "on each of 2 hosts" in (_entry(first)["reason"] + _entry(second)["reason"])
        assert _count(stack, table) < 2000
        second.stop()
        wait_for(lambda: _entry(first)["desired"] > 2, 60, message="the survivor takes the whole ceiling")
        wait_for(lambda: _count(stack, table) == 2000, 180, message="all 2,000 handled")
        assert query(stack, f"SELECT count(*) FROM {table} WHERE deliveries > 1")[0][0] == 0
    finally:
        first.stop()
        second.stop()
