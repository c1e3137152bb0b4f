"""The settings, one class per concern; `triptych.config.Settings` is all of them.

Each class holds the fields of one part of the system. Settings inherits them all,
so every field keeps its flat name (`settings.kafka_port`) and its environment
variable (`TRIPTYCH_KAFKA_PORT`): tests/unit/test_settings_sections.py holds both
to the list they had. A new setting goes into the class of its concern.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..installs import MINIO_VERSION
from .components import COMPONENTS, HostRole, default_project_file


class Section(BaseModel):
    # `model_name` and `model_role` are settings, not pydantic's own names.
    model_config = ConfigDict(protected_namespaces=())


class KafkaSettings(Section):
    """Kafka."""

    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port]; unset = managed locally")
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_version: str = "3.9.1"
    kafka_heap: str = "512m"
    # Several brokers (`triptych cluster`, or real machines: see docs/operations/several-hosts.md, "Several
    # hosts"): each its own node id, all the same controller quorum and cluster id.
    kafka_node_id: int = Field(default=1, ge=1)
    kafka_controller_quorum: str | None = Field(
        default=None, description="KRaft voters, `1@host:9093,2@host:9093,...`; unset = this node alone"
    )
    kafka_cluster_id: str | None = Field(default=None, description="the cluster's id, the same on every broker")
    # Topics (and Kafka's internal ones) are created with these: 3 and 2 on three brokers.
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    # How long the pipeline's topics keep messages, and how much per partition at
    # most: Kafka's own default (7 days, no size bound) at 40 images/s is ~70 GB a
    # day. A consumer away longer than this finds its oldest messages gone; a bucket
    # drop is still found by the sweep. Dead letters and model updates keep 7 days.
    kafka_retention_hours: float = Field(default=24.0, gt=0)
    kafka_retention_mb_per_partition: int = Field(default=512, ge=16)
    # How long a client waits on one broker's answer before it gives up on that broker,
    # refreshes who leads what and retries elsewhere. Kafka's own default (30 s) on one
    # host; on several, shorter, so a cut-off broker stalls its partitions for seconds.
    kafka_request_timeout_ms: int = Field(default=30_000, ge=7_000)
    # SASL/SCRAM and ACLs (triptych.security.kafka_acls). A local broker listens on
    # loopback without authentication unless `kafka_sasl` is set; the chart's
    # `kafka.sasl.enabled` gives each component its own user and password.
    kafka_sasl: bool = Field(default=False, description="the managed broker requires SCRAM logins and enforces ACLs")
    kafka_username: str | None = Field(default=None, description="SASL user for brokers you bring (or the chart's)")
    kafka_password: SecretStr | None = None
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"


class StorageSettings(Section):
    """MinIO / S3."""

    s3_endpoint: str | None = Field(default=None, description="http(s)://host:port; unset = managed locally")
    minio_port: int = 9000
    minio_console_port: int = 9001
    minio_version: str = MINIO_VERSION
    # Distributed MinIO: every node is started with the same volumes, in MinIO's own
    # notation (`http://node-{1...4}:9000/data`); unset = one drive in the data dir.
    minio_volumes: str | None = None
    # Brokers MinIO publishes its bucket events to: every broker of a cluster, even on
    # a host that runs one of them; unset = this stack's Kafka.
    minio_kafka_brokers: str | None = None
    s3_access_key: str = "triptych"
    s3_secret_key: str = "triptych-local-secret"
    images_bucket: str = "images"
    mlflow_bucket: str = "mlflow"
    datasets_bucket: str = "datasets"  # labelled training sets, see triptych.datasets.bucket
    reports_bucket: str = "reports"  # data-quality reports (JSON and HTML), see triptych.lifecycle.quality
    # Bucket events MinIO keeps on disk while Kafka is away (its durable target): at
    # 40 images/s, 100,000 events are 40 minutes of outage. Past it MinIO drops events.
    minio_event_queue_limit: int = Field(default=100_000, gt=0)


class PostgresSettings(Section):
    """PostgreSQL."""

    database_url: str | None = Field(default=None, description="postgresql://...; unset = managed locally")
    postgres_port: int = 5432
    postgres_user: str = "triptych"
    postgres_password: str = "triptych"
    postgres_db: str = "triptych"
    mlflow_db: str = "mlflow"
    # Networks (CIDR) whose hosts may log in over TCP, besides this host (workers on
    # other machines); PostgreSQL's pg_hba admits only loopback by default.
    postgres_allowed_networks: list[str] = Field(default_factory=list)
    # Which component this process is (TRIPTYCH_COMPONENT): unset, it logs in as the
    # database's owner (the CLI, migrations); set, as that component's own role, with
    # the password kept under `credentials_dir` (only when database_url is not given:
    # a given URL already names its role, as the chart's do).
    component: Literal[COMPONENTS] | None = None  # type: ignore[valid-type]
    # Per-component secrets (postgres/<component>, s3/<component>); unset = <data_dir>/credentials.
    credentials_dir: Path | None = None


class MlflowSettings(Section):
    """MLflow."""

    mlflow_tracking_uri: str | None = Field(default=None, description="http://host:port; unset = managed locally")
    mlflow_port: int = 5000


class ImageSettings(Section):
    """Images."""

    max_image_bytes: int = 20 * 2**20
    # Decoding a 100k x 100k PNG would need 30 GB; refuse before decoding.
    max_image_pixels: int = 50_000_000
    # What an upload of bytes already known does: "reuse" answers with the earlier
    # image id (and its results); "new" stores it again as a new image.
    duplicate_policy: str = Field(default="reuse", pattern="^(reuse|new)$")
    upload_port: int = 8090
    retrain_port: int = 8091
    # Where the upload and retrain functions answer when not on this host at their
    # ports (on Kubernetes: Nuclio's `nuclio-<name>` Services, port 8080).
    upload_endpoint: str | None = None
    retrain_endpoint: str | None = None


class ApiSettings(Section):
    """The query API (FastAPI, see triptych.api) and who may write."""

    api_port: int = 8000
    api_autostart: bool = Field(default=True, description="`triptych up` also starts the API")
    # Where clients reach the API (upload replies link to it); unset = this stack's own.
    api_public_url: str | None = None
    # The key this process presents as a client (CLI uploads, the dashboard); unset =
    # the local stack's key file (see triptych.security.keys.client_key).
    api_key: SecretStr | None = None
    # The dashboard's own key where no key file can be shared with it (Kubernetes: a
    # generated Secret); `triptych provision` registers it with the dashboard's scopes.
    dashboard_api_key: SecretStr | None = None
    # HS256 secret for JWT bearer tokens; unset = tokens are refused, keys only.
    jwt_secret: SecretStr | None = None
    # Reads on the API need a key (any scope): unset = whenever the API binds beyond
    # loopback (`triptych api --host 0.0.0.0`, a pod), open on 127.0.0.1 as on a laptop.
    read_requires_key: bool | None = None
    # Images a key may upload per minute, unless the key carries its own limit.
    upload_rate_per_minute: int = Field(default=600, gt=0)
    # Whole request bodies, on every HTTP trigger and API endpoint (a batch of images).
    max_request_bytes: int = Field(default=64 * 2**20, gt=0)
    # Browser origins allowed to call the API (CORS); empty = none.
    cors_origins: list[str] = Field(default_factory=list)


class DashboardSettings(Section):
    """Dashboard (the Dash app, see dash_app/)."""

    dashboard_port: int = 8050
    dashboard_autostart: bool = Field(default=True, description="`triptych up` also starts the dashboard")
    # Sign-in (dash_app/auth.py): on by default, loopback included, as in Jupyter.
    dashboard_login: bool = True
    dashboard_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # Failed sign-ins allowed a minute, per user name and per client address (429 past them).
    dashboard_login_attempts_per_user: int = Field(default=10, gt=0)
    dashboard_login_attempts_per_address: int = Field(default=30, gt=0)
    # The session cookie only over HTTPS (set it behind a TLS ingress).
    dashboard_cookie_secure: bool = False
    # An authenticating proxy (oauth2-proxy) in front: its X-Forwarded-User and
    # X-Forwarded-Groups are believed only from these addresses or networks, and a
    # group maps to a role ({"ml-admins": "admin", ...}); empty = never believed.
    dashboard_trusted_proxies: list[str] = Field(default_factory=list)
    dashboard_proxy_groups: dict[str, str] = Field(default_factory=dict)
    # Thumbnails are made once per image and kept here (data_dir/dashboard/thumbnails).
    thumbnail_px: int = 160


class ModelSettings(Section):
    """The models and how an inference replica runs them."""

    # The models whose answers make an image's comparison complete.
    active_models: list[str] = Field(default_factory=lambda: ["resnet50", "mobilenet_v2", "efficientnet_b0"])
    # auto: CUDA fp16 on a GPU, else ONNX Runtime (measured 2-3x faster than eager
    # PyTorch on these CPUs, same answers: tests/integration/test_backends.py).
    infer_backend: str = Field(default="auto", pattern="^(torch|onnx|onnx-int8|cuda|auto)$")
    # `triptych bench --null-models` sets it for the functions it restarts: each forward
    # pass replaced by a fixed answer (models/null_backend.py). `triptych up` refuses it.
    bench_null_models: bool = False
    # Intra-op threads per inference replica; unset: the cores shared out among the
    # active models' replicas (models.backends.default_threads), 1 on two cores.
    infer_threads: int | None = Field(default=None, ge=1)
    model_name: str | None = Field(default=None, description="the model an inference replica serves")
    # "shadow": the replica serves every model's challenger and marks its answers shadow.
    # "int8": it serves every champion's int8 export, where one is published (`triptych
    # models quantize`), and marks its answers int8: the live twin the Compare page shows.
    model_role: str = Field(default="champion", pattern="^(champion|shadow|int8)$")


class IngestSettings(Section):
    """The ingest function: what it puts into each message, and the two ways it finds
    objects whose fast event was lost (ingress.reconcile, ingress.sweep)."""

    # Ingest puts each image, decoded and resized ("stretch") to these sizes, into its
    # message: a model of such an input size then needs no fetch and no decode
    # (`triptych bench` measures the difference). Empty: every function fetches.
    inline_pixel_sizes: list[Annotated[int, Field(gt=0, le=256)]] = Field(default_factory=lambda: [64], max_length=4)
    # The durable copy of a bucket event whose object has no image row yet is held this
    # long after MinIO's event time, and until ingest has read all of minio-events, so
    # that the fast copy normally wins; after reconcile_max_wait_s it is ingested anyway.
    reconcile_settle_s: float = Field(default=10.0, ge=0)
    reconcile_max_wait_s: float = Field(default=120.0, ge=0)
    # Ingest's sweep (every minute) looks at this many keys a tick, in key order, for
    # objects of the last sweep_lookback_s older than sweep_settle_s without a row.
    sweep_page_size: int = Field(default=2000, gt=0)
    sweep_lookback_s: float = Field(default=2 * 86_400, gt=0)
    sweep_settle_s: float = Field(default=300.0, ge=0)


class AggregateSettings(Section):
    """The aggregate function."""

    # The aggregate function recomputes a touched per-minute metric window at most this
    # often (0: after every batch, which costs a scan of the window per batch).
    metrics_refresh_s: float = Field(default=1.0, ge=0)


class LifecycleSettings(Section):
    """The model lifecycle (see triptych.lifecycle)."""

    # A candidate must beat the champion by this much held-out accuracy to enter shadow;
    # per architecture in promotion_margins (e.g. {"resnet50": 0.01}).
    promotion_margin: float = Field(default=0.02, ge=0, le=1)
    promotion_margins: dict[str, float] = Field(default_factory=dict)
    # The shadow gate's sequential test (triptych.lifecycle.gate): its false-decision
    # rate, however often it looks, and the labelled live images after which it
    # decides without significance (promoted when not worse).
    shadow_alpha: float = Field(default=0.05, gt=0, lt=1)
    shadow_label_budget: int = Field(default=2000, gt=0)
    # Drift (triptych.lifecycle.drift): the input test's window of live images and
    # its family-wise alpha, the training images its reference is computed from,
    # and how long a detection keeps a detector in `drift` (and its alert firing).
    drift_window: int = Field(default=300, ge=20)
    drift_window_hours: float = Field(default=1.0, gt=0)
    drift_alpha: float = Field(default=0.01, gt=0, lt=1)
    drift_reference_count: int = Field(default=1000, ge=50)
    drift_hold_minutes: float = Field(default=15.0, ge=0)
    # Every promotion decision is also POSTed here as JSON, when set.
    decision_webhook_url: str | None = None
    # Trainings of one workflow run at once (0 = one per core, at most one per model).
    retrain_parallel: int = Field(default=0, ge=0)
    # The newest labelled images a retraining adds to its base data set.
    retrain_max_labelled: int = Field(default=20_000, gt=0)
    # Data quality: rows (and quarantined objects) older than this many days are deleted.
    retention_days: int = Field(default=30, gt=0)
    # ... an image still without a comparison this long after upload is reported.
    comparison_timeout_s: int = Field(default=600, gt=0)
    # ... and these figures over the last day raise an alert event when crossed.
    alert_dead_letter_rate: float = Field(default=0.05, ge=0, le=1)
    alert_agreement_drop: float = Field(default=0.15, ge=0, le=1)


class MonitoringSettings(Section):
    """Monitoring: Prometheus and Alertmanager (Debian's packages)."""

    monitoring_autostart: bool = Field(
        default=True, description="`triptych up` also starts Prometheus and Alertmanager"
    )
    prometheus_port: int = 9090
    prometheus_scrape_interval: str = Field(default="5s", pattern=r"^\d+(ms|s|m)$")
    prometheus_retention: str = Field(default="7d", pattern=r"^\d+(h|d|w|y)$")
    alertmanager_port: int = 9095
    # A Prometheus elsewhere (a cluster's) that the dashboard, the API and `status`
    # read replica health from; unset: this host's own, at prometheus_port.
    prometheus_endpoint: str | None = None
    # Supervisors on other hosts (`host:port`, each host's supervisor_port) whose
    # replicas this host's Prometheus scrapes, found by HTTP service discovery.
    prometheus_remote_supervisors: list[str] = Field(default_factory=list)
    # Alertmanager also posts every alert here (Slack, a pager...), besides system_events.
    alert_webhook_url: str | None = None


class HostSettings(Section):
    """What this host runs."""

    # `triptych up` starts only the servers of these roles (`triptych up --role`):
    # all of them on one host; on several, e.g. `kafka` on three, `worker` on others.
    roles: list[HostRole] = Field(default_factory=lambda: list[HostRole](["all"]))


class FunctionSettings(Section):
    """Functions (the local Nuclio-compatible runner)."""

    project_file: Path = Field(default_factory=default_project_file)
    functions_autostart: bool = Field(default=True, description="`triptych up` also starts the function supervisor")
    # The supervisor's /health, /metrics and /targets (its replicas, for a remote
    # Prometheus); 0 picks a free port, which the local file discovery finds anyway.
    supervisor_port: int = Field(default=0, ge=0, le=65535)


class ScalingSettings(Section):
    """Scaling (runtime/autoscale.py: the HPA's and KEDA's rules)."""

    # Off: each function runs its declared min (1 where min is 0) unless pinned or set
    # to `auto` with `triptych functions scale`; the test stack runs so.
    autoscale: bool = True
    scale_tick_s: float = Field(default=5.0, gt=0)
    scale_lag_per_replica: int = Field(default=100, ge=1, description="KEDA's lagThreshold")
    scale_target_busy: float = Field(default=0.7, gt=0, le=1, description="the HPA's target utilisation")
    scale_stabilisation_s: float = Field(default=60.0, ge=0, description="the HPA's scale-down window")
    scale_idle_to_zero_s: float = Field(default=120.0, ge=0, description="idle time before a min-0 function stops")
    scale_max_host_busy: float = Field(
        default=0.9, gt=0, le=1.01, description="no scale-up while the host's cores are this busy (over 1: never held)"
    )
    scale_cron_lead_s: float = Field(
        default=60.0, ge=0, description="a min-0 function wakes this long before a cron tick"
    )
    # Every worker's supervisor (`host:port`), this one's included: the live ones share each function.
    scale_peers: list[str] = Field(default_factory=list)
    functions_runtime: Literal["local", "nuclio"] = Field(
        default="local",
        description="what runs each replica: the local runner (micro-batches, the fast path) or Nuclio 1.14's own "
        "processor, built from its Go module (`triptych up --runtime nuclio`)",
    )
