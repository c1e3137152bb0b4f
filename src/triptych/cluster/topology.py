"""Which host runs what in a multi-host Triptych, and the settings each needs.

The same settings serve real machines and the network-namespace hosts that
`triptych cluster up` makes on one machine: a host is an address, a set of
roles (`triptych up --role`), and the environment that points it at the others.

Default layout (`--workers N`, N >= 2):

    kafka-1 kafka-2 kafka-3  a Kafka broker and KRaft controller in one process (ids 1-3)
    minio-1 ... minio-4      a MinIO node each (four nodes: one erasure set, EC:2)
    db                       PostgreSQL primary, MLflow, Prometheus and Alertmanager
    worker-1 ... worker-N    the function supervisor; replicas share consumer groups

Prometheus on `db` finds every worker's supervisor and replicas through the
supervisor's /targets (HTTP service discovery, each at the fixed supervisor
port): the dashboard and the API read replica health of all hosts from it.

Brokers and MinIO nodes get hosts of their own, so that a fault of one (a broker
cut off) is that server's fault alone; on real machines they may share (the
docs/operations/several-hosts.md's three-machine example). Brokers run combined (broker and controller in
one process): three controllers keep a quorum through the loss of one, and a
separate controller tier would cost three more JVMs on a small cluster for no
fault it survives better.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field

from ..config import Settings

NAMESPACE_PREFIX = "triptych-"
BRIDGE = "triptych-br0"
# Addresses only this machine's own namespaces hold (never routed anywhere else).
SUBNET = ipaddress.ip_network("10.251.0.0/24")
GATEWAY = str(SUBNET.network_address + 1)  # the bridge, in the root namespace
# A fixed KRaft cluster id: every broker must be formatted with the same one.
KAFKA_CLUSTER_ID = "tRiPtYcHcLuStEr00000A"
MINIO_NODES = 4
KAFKA_BROKERS = 3
# Where every host keeps its data, as on real machines: the same path on each
# (distributed MinIO requires identical settings on every node).
HOST_DATA_DIR = "/var/lib/triptych-host"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    roles: tuple[str, ...]
    kafka_node_id: int | None = None

    @property
    def namespace(self) -> str:
        return f"{NAMESPACE_PREFIX}{self.name}"


@dataclass(frozen=True)
class Topology:
    hosts: tuple[Host, ...]
    # What runs each replica on the workers: the local runner or Nuclio's processor.
    functions_runtime: str = "local"
    ports: dict[str, int] = field(
        default_factory=lambda: dict(
            kafka=9092,
            kafka_controller=9093,
            minio=9000,
            minio_console=9001,
            postgres=5432,
            mlflow=5000,
            prometheus=9090,
            alertmanager=9095,
            supervisor=9400,
        )
    )

    @classmethod
    def default(cls, workers: int = 2, functions_runtime: str = "local") -> Topology:
        if workers < 1:
            raise ValueError("a cluster needs at least one worker host")
        addresses = (str(a) for a in list(SUBNET.hosts())[9:])  # .10 onward
        hosts = [Host(f"kafka-{i}", next(addresses), ("kafka",), kafka_node_id=i) for i in range(1, KAFKA_BROKERS + 1)]
        hosts += [Host(f"minio-{i}", next(addresses), ("minio",)) for i in range(1, MINIO_NODES + 1)]
        hosts.append(Host("db", next(addresses), ("postgres", "mlflow", "monitoring")))
        hosts.extend(Host(f"worker-{i}", next(addresses), ("worker",)) for i in range(1, workers + 1))
        return cls(tuple(hosts), functions_runtime)

    # -- who has which role ------------------------------------------------------
    def with_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts if role in h.roles]

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    # -- where clients find the servers --------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return ",".join(f"{h.address}:{self.ports['kafka']}" for h in self.with_role("kafka"))

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.with_role('minio')[0].address}:{self.ports['minio']}"

    def database_url(self, settings: Settings) -> str:
        db = self.with_role("postgres")[0]
        return (
            f"postgresql://{settings.postgres_user}:{settings.postgres_password}"
            f"@{db.address}:{self.ports['postgres']}/{settings.postgres_db}"
        )

    @property
    def mlflow_uri(self) -> str:
        return f"http://{self.with_role('mlflow')[0].address}:{self.ports['mlflow']}"

    @property
    def prometheus_endpoint(self) -> str | None:
        monitoring = self.with_role("monitoring")
        return f"http://{monitoring[0].address}:{self.ports['prometheus']}" if monitoring else None

    def client_env(self, settings: Settings) -> dict[str, str]:
        """What any client (a worker, the CLI in the root namespace) sets to use the
        cluster: every broker, one MinIO node, the primary, MLflow, Prometheus."""
        return {
            "TRIPTYCH_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "TRIPTYCH_S3_ENDPOINT": self.s3_endpoint,
            "TRIPTYCH_DATABASE_URL": self.database_url(settings),
            "TRIPTYCH_MLFLOW_TRACKING_URI": self.mlflow_uri,
            **({"TRIPTYCH_PROMETHEUS_ENDPOINT": self.prometheus_endpoint} if self.prometheus_endpoint else {}),
            "TRIPTYCH_KAFKA_REPLICATION_FACTOR": str(min(3, len(self.with_role("kafka")))),
            "TRIPTYCH_KAFKA_MIN_INSYNC_REPLICAS": str(min(2, len(self.with_role("kafka")))),
            # A client stuck on a cut-off broker moves on after 8 s (not 30): with the
            # brokers' 6 s fencing, the stream continues on the other two.
            "TRIPTYCH_KAFKA_REQUEST_TIMEOUT_MS": "8000",
        }

    def host_env(self, host: Host, settings: Settings, data_dir: str = HOST_DATA_DIR) -> dict[str, str]:
        """The environment `triptych up --role ...` runs with on `host`: its own
        address and data, the others' addresses for what it does not run."""
        p = self.ports
        env = {
            **self.client_env(settings),
            "TRIPTYCH_BIND_HOST": host.address,
            "TRIPTYCH_DATA_DIR": data_dir,
            "TRIPTYCH_ROLES": json.dumps(list(host.roles)),
            "TRIPTYCH_KAFKA_PORT": str(p["kafka"]),
            "TRIPTYCH_KAFKA_CONTROLLER_PORT": str(p["kafka_controller"]),
            "TRIPTYCH_MINIO_PORT": str(p["minio"]),
            "TRIPTYCH_MINIO_CONSOLE_PORT": str(p["minio_console"]),
            "TRIPTYCH_POSTGRES_PORT": str(p["postgres"]),
            "TRIPTYCH_MLFLOW_PORT": str(p["mlflow"]),
            # No web app on the cluster's hosts; one Prometheus (the monitoring host's) for all.
            "TRIPTYCH_API_AUTOSTART": "false",
            "TRIPTYCH_DASHBOARD_AUTOSTART": "false",
            "TRIPTYCH_MONITORING_AUTOSTART": "true" if "monitoring" in host.roles else "false",
            "TRIPTYCH_FUNCTIONS_AUTOSTART": "true" if "worker" in host.roles else "false",
        }
        if "worker" in host.roles:
            env["TRIPTYCH_SUPERVISOR_PORT"] = str(p["supervisor"])
            # Each worker's scaler takes its share of every function among the live ones.
            env["TRIPTYCH_SCALE_PEERS"] = json.dumps(
                [f"{h.address}:{p['supervisor']}" for h in self.with_role("worker")]
            )
            env["TRIPTYCH_FUNCTIONS_RUNTIME"] = self.functions_runtime
        if "monitoring" in host.roles:
            env.pop("TRIPTYCH_PROMETHEUS_ENDPOINT", None)  # its own
            env.update(
                {
                    "TRIPTYCH_PROMETHEUS_PORT": str(p["prometheus"]),
                    "TRIPTYCH_ALERTMANAGER_PORT": str(p["alertmanager"]),
                    "TRIPTYCH_PROMETHEUS_REMOTE_SUPERVISORS": json.dumps(
                        [f"{h.address}:{p['supervisor']}" for h in self.with_role("worker")]
                    ),
                }
            )
        # A host runs a server itself when its URL is not given: drop the URLs of its own roles.
        own = {
            "kafka": "TRIPTYCH_KAFKA_BOOTSTRAP",
            "minio": "TRIPTYCH_S3_ENDPOINT",
            "postgres": "TRIPTYCH_DATABASE_URL",
            "mlflow": "TRIPTYCH_MLFLOW_TRACKING_URI",
        }
        for role, variable in own.items():
            if role in host.roles:
                env.pop(variable)
        if "kafka" in host.roles:
            env.update(
                {
                    "TRIPTYCH_KAFKA_NODE_ID": str(host.kafka_node_id),
                    "TRIPTYCH_KAFKA_CONTROLLER_QUORUM": ",".join(
                        f"{h.kafka_node_id}@{h.address}:{p['kafka_controller']}" for h in self.with_role("kafka")
                    ),
                    "TRIPTYCH_KAFKA_CLUSTER_ID": KAFKA_CLUSTER_ID,
                    "TRIPTYCH_KAFKA_HEAP": "384m",
                }
            )
        if "minio" in host.roles:
            # MinIO's notifications go to every broker, whichever host it runs on.
            env["TRIPTYCH_MINIO_KAFKA_BROKERS"] = self.kafka_bootstrap
            env["TRIPTYCH_MINIO_VOLUMES"] = " ".join(
                f"http://{h.name}:{p['minio']}{data_dir}/minio" for h in self.with_role("minio")
            )
        if "postgres" in host.roles:
            env["TRIPTYCH_POSTGRES_ALLOWED_NETWORKS"] = json.dumps([str(SUBNET)])
        if "mlflow" in host.roles and "postgres" not in host.roles:
            env["TRIPTYCH_DATABASE_URL"] = self.database_url(settings)
        return env

    def hosts_file(self) -> str:
        """/etc/hosts for every host: each finds the others by name."""
        lines = ["127.0.0.1 localhost", f"{GATEWAY} root"]
        lines += [f"{h.address} {h.name}" for h in self.hosts]
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict:
        return {
            "hosts": [asdict(h) | {"namespace": h.namespace} for h in self.hosts],
            "ports": self.ports,
            "functions_runtime": self.functions_runtime,
        }

    @classmethod
    def from_dict(cls, raw: dict) -> Topology:
        return cls(
            tuple(Host(h["name"], h["address"], tuple(h["roles"]), h.get("kafka_node_id")) for h in raw["hosts"]),
            raw.get("functions_runtime", "local"),
            dict(raw["ports"]),
        )
