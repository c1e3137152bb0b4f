"""The multi-host layout and the settings each host gets (triptych.cluster.topology)."""

import ipaddress
import json

import pytest

from triptych.cluster.topology import HOST_DATA_DIR, KAFKA_CLUSTER_ID, SUBNET, Topology
from triptych.config import Settings


@pytest.fixture()
def topology():
    return Topology.default(workers=2)


def test_hosts_roles_and_addresses(topology):
    assert [h.name for h in topology.hosts] == [
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "minio-1",
        "minio-2",
        "minio-3",
        "minio-4",
        "db",
        "worker-1",
        "worker-2",
    ]
    assert [h.name for h in topology.with_role("kafka")] == ["kafka-1", "kafka-2", "kafka-3"]
    assert len(topology.with_role("minio")) == 4 and topology.with_role("postgres")[0].name == "db"
    addresses = [ipaddress.ip_address(h.address) for h in topology.hosts]
    assert len(set(addresses)) == len(addresses) and all(a in SUBNET for a in addresses)
    assert all(h.namespace == f"triptych-{h.name}" for h in topology.hosts)


def test_clients_get_every_broker_and_replicated_topics(topology):
    env = topology.client_env(Settings(_env_file=None))
    assert env["TRIPTYCH_KAFKA_BOOTSTRAP"] == "10.251.0.10:9092,10.251.0.11:9092,10.251.0.12:9092"
    assert (env["TRIPTYCH_KAFKA_REPLICATION_FACTOR"], env["TRIPTYCH_KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")
    assert env["TRIPTYCH_DATABASE_URL"].endswith("@10.251.0.17:5432/triptych")


def test_a_broker_host_runs_its_own_kafka_in_the_shared_quorum(topology):
    s = Settings(_env_file=None)
    node = topology.host("kafka-2")
    env = topology.host_env(node, s)
    assert json.loads(env["TRIPTYCH_ROLES"]) == ["kafka"] and env["TRIPTYCH_BIND_HOST"] == node.address
    assert env["TRIPTYCH_KAFKA_NODE_ID"] == "2" and env["TRIPTYCH_KAFKA_CLUSTER_ID"] == KAFKA_CLUSTER_ID
    assert env["TRIPTYCH_KAFKA_CONTROLLER_QUORUM"] == "1@10.251.0.10:9093,2@10.251.0.11:9093,3@10.251.0.12:9093"
    assert "TRIPTYCH_KAFKA_BOOTSTRAP" not in env  # it runs a broker itself
    assert env["TRIPTYCH_S3_ENDPOINT"]  # and uses the MinIO nodes'


def test_a_minio_node_is_one_of_four_with_the_same_volumes_and_gives_its_events_to_every_broker(topology):
    node = topology.host("minio-3")
    env = topology.host_env(node, Settings(_env_file=None))
    assert json.loads(env["TRIPTYCH_ROLES"]) == ["minio"] and "TRIPTYCH_S3_ENDPOINT" not in env
    assert env["TRIPTYCH_MINIO_KAFKA_BROKERS"].count(":9092") == 3  # MinIO's notifications go to all
    # The same path on every node, as MinIO requires: each host's own folder is mounted there.
    assert env["TRIPTYCH_DATA_DIR"] == HOST_DATA_DIR
    assert env["TRIPTYCH_MINIO_VOLUMES"] == " ".join(f"http://minio-{i}:9000{HOST_DATA_DIR}/minio" for i in range(1, 5))


def test_a_worker_runs_only_the_functions_against_the_others(topology):
    env = topology.host_env(topology.host("worker-1"), Settings(_env_file=None))
    assert json.loads(env["TRIPTYCH_ROLES"]) == ["worker"] and env["TRIPTYCH_FUNCTIONS_AUTOSTART"] == "true"
    for given in ("KAFKA_BOOTSTRAP", "S3_ENDPOINT", "DATABASE_URL", "MLFLOW_TRACKING_URI"):
        assert env[f"TRIPTYCH_{given}"], given
    assert env["TRIPTYCH_API_AUTOSTART"] == env["TRIPTYCH_MONITORING_AUTOSTART"] == "false"
    # A fixed port for its supervisor, where the monitoring host's Prometheus finds its replicas.
    assert env["TRIPTYCH_SUPERVISOR_PORT"] == "9400"
    assert env["TRIPTYCH_PROMETHEUS_ENDPOINT"] == f"http://{topology.host('db').address}:9090"
    # Its scaler shares each function with every worker whose supervisor answers.
    assert json.loads(env["TRIPTYCH_SCALE_PEERS"]) == [f"{h.address}:9400" for h in topology.with_role("worker")]


def test_the_monitoring_host_scrapes_every_workers_supervisor(topology):
    env = topology.host_env(topology.host("db"), Settings(_env_file=None))
    assert env["TRIPTYCH_MONITORING_AUTOSTART"] == "true" and "TRIPTYCH_PROMETHEUS_ENDPOINT" not in env
    assert json.loads(env["TRIPTYCH_PROMETHEUS_REMOTE_SUPERVISORS"]) == [
        f"{h.address}:9400" for h in topology.with_role("worker")
    ]


def test_the_database_host_admits_the_cluster_and_every_host_finds_the_others_by_name(topology):
    env = topology.host_env(topology.host("db"), Settings(_env_file=None))
    assert json.loads(env["TRIPTYCH_POSTGRES_ALLOWED_NETWORKS"]) == [str(SUBNET)]
    assert "TRIPTYCH_DATABASE_URL" not in env and "TRIPTYCH_MLFLOW_TRACKING_URI" not in env
    hosts = dict(line.split()[::-1] for line in topology.hosts_file().splitlines())
    assert hosts["minio-4"] == topology.host("minio-4").address and hosts["worker-2"] == "10.251.0.19"


def test_the_layout_survives_its_state_file_and_refuses_no_workers(topology):
    assert Topology.from_dict(json.loads(json.dumps(topology.as_dict()))) == topology
    with pytest.raises(ValueError):
        Topology.default(workers=0)


@pytest.mark.parametrize(
    "roles,servers",
    [
        (
            ["all"],
            ["postgres", "kafka", "minio", "mlflow", "api", "dashboard", "prometheus", "alertmanager", "functions"],
        ),
        (["kafka", "minio"], ["kafka", "minio"]),
        (["postgres", "mlflow"], ["postgres", "mlflow"]),
        (["postgres", "mlflow", "monitoring"], ["postgres", "mlflow", "prometheus", "alertmanager"]),
        (["worker"], ["functions"]),
    ],
)
def test_up_runs_only_the_servers_of_its_roles_in_start_order(roles, servers):
    from triptych.stack.manager import Stack

    assert [svc.name for svc in Stack(Settings(_env_file=None, roles=roles)).own] == servers


def test_the_cli_follows_an_up_cluster_only_for_client_commands_and_only_when_no_servers_are_chosen(
    tmp_path, monkeypatch, request
):
    import os

    from triptych.cli.cluster_commands import follow_if_up
    from triptych.cluster.manager import Cluster
    from triptych.config import get_settings

    # A copy of the environment, which follow_if_up changes and the test then drops.
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")})
    monkeypatch.setenv("TRIPTYCH_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # nothing of this environment outlives the test
    follow_if_up("status")
    assert "TRIPTYCH_KAFKA_BOOTSTRAP" not in os.environ  # no cluster up

    cluster = Cluster(Settings(_env_file=None, data_dir=tmp_path))
    cluster.state_file.parent.mkdir(parents=True)
    cluster.state_file.write_text(json.dumps({"topology": Topology.default(2).as_dict()}))
    follow_if_up("up")
    assert "TRIPTYCH_KAFKA_BOOTSTRAP" not in os.environ  # `up` keeps to this host
    monkeypatch.setenv("TRIPTYCH_FOLLOW_CLUSTER", "false")
    follow_if_up("stream")
    assert "TRIPTYCH_KAFKA_BOOTSTRAP" not in os.environ
    monkeypatch.delenv("TRIPTYCH_FOLLOW_CLUSTER")
    follow_if_up("stream")
    assert os.environ["TRIPTYCH_KAFKA_BOOTSTRAP"].count(":9092") == 3
    assert get_settings().kafka_url == os.environ["TRIPTYCH_KAFKA_BOOTSTRAP"]  # what every command then reads
    assert os.environ["TRIPTYCH_PROMETHEUS_ENDPOINT"] == "http://10.251.0.17:9090"

    monkeypatch.setenv("TRIPTYCH_KAFKA_BOOTSTRAP", "kafka.example:9092")
    monkeypatch.delenv("TRIPTYCH_PROMETHEUS_ENDPOINT")
    follow_if_up("status")  # the user named servers: they win
    assert os.environ["TRIPTYCH_KAFKA_BOOTSTRAP"] == "kafka.example:9092"
    assert "TRIPTYCH_PROMETHEUS_ENDPOINT" not in os.environ


def test_brokers_still_joining_answer_transiently_and_provisioning_tries_again():
    from kafka.errors import NodeNotReadyError, TopicAuthorizationFailedError, UnknownBrokerIdError

    from triptych.stack.provision import _transient

    # The controller's id is known before its broker is in the metadata: kafka-python says UnknownBrokerId.
    assert _transient(UnknownBrokerIdError(3)) and _transient(NodeNotReadyError(1))
    assert not _transient(TopicAuthorizationFailedError())
