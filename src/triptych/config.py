"""One settings object for every endpoint and credential.

Every value comes from the environment with a ``TRIPTYCH_`` prefix (or a ``.env``
file), with defaults that work on a laptop. A service whose URL is *given* in the
environment is used as it is; a service whose URL is left unset is started and
managed locally by ``triptych up`` on the configured port. That single rule is what
lets the same code run against the native local stack, the Docker compose file, or
a user's own Kafka/MinIO/Postgres/MLflow.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .installs import MINIO_VERSION, default_cache_dir

# MinIO's notification target ids: the ARN MinIO derives from one is
# arn:minio:sqs::<id>:kafka. The first publishes each event straight to Kafka (the
# fast path); the second keeps every event on disk (queue_dir) until Kafka has it,
# so that an event the first could not deliver is made good (see ingress.reconcile).
MINIO_KAFKA_TARGET_ID = "TRIPTYCH"
MINIO_KAFKA_DURABLE_TARGET_ID = "DURABLE"

# Every process that reads or writes PostgreSQL on its own: each logs in as its own
# role with only its rights (triptych.security.db_roles; migration 0011's grants).
# What a host of a cluster runs (`triptych up --role`).
HostRole = Literal["all", "kafka", "minio", "postgres", "mlflow", "web", "monitoring", "worker"]

COMPONENTS = ("upload", "ingest", "infer", "aggregate", "jobs", "retrain", "api", "dashboard", "supervisor")


def component_role(component: str) -> str:
    """The PostgreSQL role a component logs in as."""
    if component not in COMPONENTS:
        raise ValueError(f"no such component {component!r}; known: {', '.join(COMPONENTS)}")
    return f"triptych_{component}"


def component_s3_user(component: str) -> str:
    """The MinIO user a component signs its requests as (triptych.security.bucket_policies)."""
    component_role(component)  # an unknown name is refused
    return f"triptych-{component}"


def component_password_path(
    credentials_dir: Path, component: str, service: Literal["postgres", "s3"] = "postgres"
) -> Path:
    """Where a component's PostgreSQL password (or MinIO secret key) is kept: a file of its own."""
    component_role(component)  # an unknown name never becomes a path
    return credentials_dir / service / component


def _read_secret(path: Path, component: str) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no credentials for component {component!r} at {path}: `triptych up` makes them"
        ) from None


def _default_data_dir() -> Path:
    # Root runs Postgres as the `postgres` user (initdb refuses root), and that
    # user cannot traverse /root, so root's data lives under /var/lib.
    if os.geteuid() == 0:
        return Path("/var/lib/triptych")
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg) / "triptych" if xdg else Path.home() / ".local" / "share" / "triptych"


# The repository root when Triptych runs from a checkout (editable install).
REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_project_file() -> Path:
    in_checkout = REPO_ROOT / "project.yaml"
    return in_checkout if in_checkout.exists() else Path.cwd() / "project.yaml"


# Kubernetes gives every pod a variable per Service of its namespace ("service links"):
# the chart's release `triptych` makes Services named triptych-api, triptych-mlflow ...
# and so TRIPTYCH_API_PORT=tcp://10.96.0.12:8000. Nuclio's function pods cannot turn
# service links off, so such a value of a *_port setting is read as its port.
_SERVICE_LINK = re.compile(r"^(tcp|udp|sctp)://[^\s]+:(\d+)$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIPTYCH_", env_file=".env", extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _port_from_service_link(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name and info.field_name.endswith("_port") and isinstance(value, str):
            link = _SERVICE_LINK.match(value.strip())
            if link:
                return int(link.group(2))
        return value

    # Where installs are cached (shared by every stack on the machine) and where
    # one stack keeps its data, logs and pid files.
    cache_dir: Path = Field(default_factory=default_cache_dir)
    data_dir: Path = Field(default_factory=_default_data_dir)
    bind_host: str = "127.0.0.1"

    # --- Kafka ---------------------------------------------------------------
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

    # --- MinIO / S3 ----------------------------------------------------------
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

    # --- PostgreSQL ------------------------------------------------------------
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

    # --- MLflow --------------------------------------------------------------
    mlflow_tracking_uri: str | None = Field(default=None, description="http://host:port; unset = managed locally")
    mlflow_port: int = 5000

    # --- images ----------------------------------------------------------------
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

    # --- the query API (FastAPI, see triptych.api) and who may write --------------
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

    # --- dashboard (the Dash app, see dash_app/) --------------------------------
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

    # --- models ----------------------------------------------------------------
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
    # Ingest puts each image, decoded and resized ("stretch") to these sizes, into its
    # message: a model of such an input size then needs no fetch and no decode
    # (`triptych bench` measures the difference). Empty: every function fetches.
    # The aggregate function recomputes a touched per-minute metric window at most this
    # often (0: after every batch, which costs a scan of the window per batch).
    metrics_refresh_s: float = Field(default=1.0, ge=0)
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
    # "shadow": the replica serves every model's challenger and marks its answers shadow.
    # "int8": it serves every champion's int8 export, where one is published (`triptych
    # models quantize`), and marks its answers int8: the live twin the Compare page shows.
    model_role: str = Field(default="champion", pattern="^(champion|shadow|int8)$")

    # --- the model lifecycle (see triptych.lifecycle) ---------------------------
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

    # --- monitoring: Prometheus and Alertmanager (Debian's packages) --------------
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

    # --- what this host runs ------------------------------------------------------
    # `triptych up` starts only the servers of these roles (`triptych up --role`):
    # all of them on one host; on several, e.g. `kafka` on three, `worker` on others.
    roles: list[HostRole] = Field(default_factory=lambda: list[HostRole](["all"]))

    # --- functions (the local Nuclio-compatible runner) -------------------------
    project_file: Path = Field(default_factory=_default_project_file)
    functions_autostart: bool = Field(default=True, description="`triptych up` also starts the function supervisor")
    # The supervisor's /health, /metrics and /targets (its replicas, for a remote
    # Prometheus); 0 picks a free port, which the local file discovery finds anyway.
    supervisor_port: int = Field(default=0, ge=0, le=65535)
    # --- scaling (runtime/autoscale.py: the HPA's and KEDA's rules) ------------------
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

    # --- derived endpoints -----------------------------------------------------
    @property
    def kafka_url(self) -> str:
        return self.kafka_bootstrap or f"{self.bind_host}:{self.kafka_port}"

    @property
    def s3_url(self) -> str:
        return self.s3_endpoint or f"http://{self.bind_host}:{self.minio_port}"

    @property
    def postgres_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.component:
            password = _read_secret(component_password_path(self.credentials_path, self.component), self.component)
            return (
                f"postgresql://{component_role(self.component)}:{password}@{self.bind_host}:{self.postgres_port}"
                f"/{self.postgres_db}"
            )
        return self._local_postgres_url(self.postgres_db)

    @property
    def s3_credentials(self) -> tuple[str, str]:
        """(access key, secret key): on a local stack a component signs as its own MinIO
        user (only its buckets and prefixes); otherwise the keys given (the chart gives
        each component its own) or MinIO's root user (the CLI, MLflow's server)."""
        if self.component and not self.s3_endpoint:
            path = component_password_path(self.credentials_path, self.component, "s3")
            return component_s3_user(self.component), _read_secret(path, self.component)
        return self.s3_access_key, self.s3_secret_key

    @property
    def credentials_path(self) -> Path:
        return self.credentials_dir or self.data_dir / "credentials"

    @property
    def mlflow_backend_store_url(self) -> str:
        """MLflow keeps its own database beside Triptych's, in the same server."""
        if self.database_url:
            base, _, _ = self.database_url.rpartition("/")
            return f"{base}/{self.mlflow_db}"
        return self._local_postgres_url(self.mlflow_db)

    @property
    def prometheus_url(self) -> str:
        return self.prometheus_endpoint or f"http://{self.bind_host}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.bind_host}:{self.alertmanager_port}"

    @property
    def upload_url(self) -> str:
        return self.upload_endpoint or f"http://{self.bind_host}:{self.upload_port}"

    @property
    def retrain_url(self) -> str:
        return self.retrain_endpoint or f"http://{self.bind_host}:{self.retrain_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.bind_host}:{self.api_port}"

    @property
    def results_base_url(self) -> str:
        """Where an upload reply's `results_url` points: the API that serves it."""
        return (self.api_public_url or self.api_url).rstrip("/")

    def margin_for(self, model_name: str) -> float:
        return self.promotion_margins.get(model_name, self.promotion_margin)

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.bind_host}:{self.dashboard_port}"

    @property
    def mlflow_url(self) -> str:
        return self.mlflow_tracking_uri or f"http://{self.bind_host}:{self.mlflow_port}"

    def _local_postgres_url(self, db: str) -> str:
        return f"postgresql://{self.postgres_user}:{self.postgres_password}@{self.bind_host}:{self.postgres_port}/{db}"

    def is_managed(self, service: str) -> bool:
        """True when `triptych up` starts this service itself (its URL was not given)."""
        given = {
            "kafka": self.kafka_bootstrap,
            "minio": self.s3_endpoint,
            "postgres": self.database_url,
            "mlflow": self.mlflow_tracking_uri,
        }[service]
        return not given

    def s3_client_env(self) -> dict[str, str]:
        """Environment that boto3-based tools (MLflow's artifact store) read."""
        access_key, secret_key = self.s3_credentials  # a component's are read from a file
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@lru_cache
def get_settings() -> Settings:
    return Settings()
