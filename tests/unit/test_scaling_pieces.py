"""The scaler's inputs that need no server: declared bounds under each runtime, the
cron lead, and the supervisor's HTTP sockets (real sockets on loopback)."""

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from triptych.contracts import TOPIC_IMAGES_INPUT, TOPICS
from triptych.runtime.listeners import LISTEN_FDS_ENV, Listeners, inherited_listener
from triptych.runtime.scaler_loop import bounds_of
from triptych.runtime.spec import CronTriggerSpec, FunctionSpec, HttpTriggerSpec, KafkaTriggerSpec
from triptych.runtime.wake import cron_due
from triptych.sdk import Delivery


def spec(*triggers, low=0, high=4):
    return FunctionSpec(
        name="f", source=Path("f.py"), handler="handler", replicas=low, triggers=triggers, max_replicas=high
    )


def kafka(topic):
    return KafkaTriggerSpec(
        name="in", topics=(topic,), consumer_group="g", initial_offset="earliest", delivery=Delivery()
    )


def http(port=0):
    return HttpTriggerSpec(name="http", port=port, max_body_bytes=1024, workers=1)


def test_max_is_capped_by_the_partitions_of_a_project_topic_and_not_by_an_unknown_one():
    assert bounds_of(spec(kafka(TOPIC_IMAGES_INPUT), high=64)).ceiling == dict(TOPICS)[TOPIC_IMAGES_INPUT]
    assert bounds_of(spec(kafka("someone-elses-topic"), high=64)).ceiling == 64


def test_under_nuclio_an_http_function_keeps_one_replica_since_no_socket_of_ours_holds_its_requests():
    assert bounds_of(spec(http()), "local").min_replicas == 0
    assert bounds_of(spec(http()), "nuclio").min_replicas == 1
    assert bounds_of(spec(kafka("t")), "nuclio").min_replicas == 0


def test_a_sleeping_function_wakes_a_lead_before_its_cron_schedule_and_an_interval_keeps_it_awake():
    weekly = spec(CronTriggerSpec(name="weekly", interval="", schedule="0 3 * * 0", body=""))
    sunday_2_59 = datetime(2026, 12, 6, 2, 59, tzinfo=UTC).timestamp()
    assert cron_due(weekly, lead_s=60, now=sunday_2_59)
    assert not cron_due(weekly, lead_s=60, now=sunday_2_59 - 3600)
    assert cron_due(spec(CronTriggerSpec(name="tick", interval="30s", schedule="", body="")), lead_s=0)


def test_a_request_waits_in_the_supervisors_socket_until_a_replica_accepts_it():
    listeners = Listeners({"f": spec(http(0))}, "127.0.0.1")
    try:
        sock = listeners.sockets["f"]["http"]
        assert not listeners.held("f")
        client = socket.create_connection(sock.getsockname(), timeout=2)  # accepted by the kernel, held
        assert listeners.held("f")
        assert json.loads(listeners.env_for("f")[LISTEN_FDS_ENV]) == {"http": sock.fileno()}
        assert listeners.fds_for("f") == (sock.fileno(),)
        os.environ[LISTEN_FDS_ENV] = json.dumps({"http": os.dup(sock.fileno())})  # a child's copy of the fd
        adopted = inherited_listener("http")  # what a replica does with the fd it inherited
        assert adopted.getsockname() == sock.getsockname()
        served, _ = adopted.accept()
        client.sendall(b"ping")
        assert served.recv(4) == b"ping"
        assert not listeners.held("f")
        for s in (served, client, adopted):
            s.close()
    finally:
        os.environ.pop(LISTEN_FDS_ENV, None)
        listeners.close()
