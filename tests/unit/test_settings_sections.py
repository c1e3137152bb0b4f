"""The settings in sections (triptych.config.sections), one class per concern, with
every field's flat name and environment variable as they were before the split."""

import pytest

from triptych.config import SECTIONS, Settings

# Every variable Triptych reads, as it was when the settings were one flat class: a
# renamed or lost field fails here (deployments, the chart and the docs name them).
ENVIRONMENT = {
    "TRIPTYCH_ACTIVE_MODELS",
    "TRIPTYCH_ALERTMANAGER_PORT",
    "TRIPTYCH_ALERT_AGREEMENT_DROP",
    "TRIPTYCH_ALERT_DEAD_LETTER_RATE",
    "TRIPTYCH_ALERT_WEBHOOK_URL",
    "TRIPTYCH_API_AUTOSTART",
    "TRIPTYCH_API_KEY",
    "TRIPTYCH_API_PORT",
    "TRIPTYCH_API_PUBLIC_URL",
    "TRIPTYCH_AUTOSCALE",
    "TRIPTYCH_BENCH_NULL_MODELS",
    "TRIPTYCH_BIND_HOST",
    "TRIPTYCH_CACHE_DIR",
    "TRIPTYCH_COMPARISON_TIMEOUT_S",
    "TRIPTYCH_COMPONENT",
    "TRIPTYCH_CORS_ORIGINS",
    "TRIPTYCH_CREDENTIALS_DIR",
    "TRIPTYCH_DASHBOARD_API_KEY",
    "TRIPTYCH_DASHBOARD_AUTOSTART",
    "TRIPTYCH_DASHBOARD_COOKIE_SECURE",
    "TRIPTYCH_DASHBOARD_LOGIN",
    "TRIPTYCH_DASHBOARD_LOGIN_ATTEMPTS_PER_ADDRESS",
    "TRIPTYCH_DASHBOARD_LOGIN_ATTEMPTS_PER_USER",
    "TRIPTYCH_DASHBOARD_PORT",
    "TRIPTYCH_DASHBOARD_PROXY_GROUPS",
    "TRIPTYCH_DASHBOARD_SESSION_HOURS",
    "TRIPTYCH_DASHBOARD_TRUSTED_PROXIES",
    "TRIPTYCH_DATABASE_URL",
    "TRIPTYCH_DATASETS_BUCKET",
    "TRIPTYCH_DATA_DIR",
    "TRIPTYCH_DECISION_WEBHOOK_URL",
    "TRIPTYCH_DRIFT_ALPHA",
    "TRIPTYCH_DRIFT_HOLD_MINUTES",
    "TRIPTYCH_DRIFT_REFERENCE_COUNT",
    "TRIPTYCH_DRIFT_WINDOW",
    "TRIPTYCH_DRIFT_WINDOW_HOURS",
    "TRIPTYCH_DUPLICATE_POLICY",
    "TRIPTYCH_FUNCTIONS_AUTOSTART",
    "TRIPTYCH_FUNCTIONS_RUNTIME",
    "TRIPTYCH_IMAGES_BUCKET",
    "TRIPTYCH_INFER_BACKEND",
    "TRIPTYCH_INFER_THREADS",
    "TRIPTYCH_INLINE_PIXEL_SIZES",
    "TRIPTYCH_JWT_SECRET",
    "TRIPTYCH_KAFKA_BOOTSTRAP",
    "TRIPTYCH_KAFKA_CLUSTER_ID",
    "TRIPTYCH_KAFKA_CONTROLLER_PORT",
    "TRIPTYCH_KAFKA_CONTROLLER_QUORUM",
    "TRIPTYCH_KAFKA_HEAP",
    "TRIPTYCH_KAFKA_MIN_INSYNC_REPLICAS",
    "TRIPTYCH_KAFKA_NODE_ID",
    "TRIPTYCH_KAFKA_PORT",
    "TRIPTYCH_KAFKA_REPLICATION_FACTOR",
    "TRIPTYCH_KAFKA_REQUEST_TIMEOUT_MS",
    "TRIPTYCH_KAFKA_SASL",
    "TRIPTYCH_KAFKA_USERNAME",
    "TRIPTYCH_KAFKA_PASSWORD",
    "TRIPTYCH_KAFKA_SASL_MECHANISM",
    "TRIPTYCH_KAFKA_RETENTION_HOURS",
    "TRIPTYCH_KAFKA_RETENTION_MB_PER_PARTITION",
    "TRIPTYCH_KAFKA_VERSION",
    "TRIPTYCH_MAX_IMAGE_BYTES",
    "TRIPTYCH_MAX_IMAGE_PIXELS",
    "TRIPTYCH_MAX_REQUEST_BYTES",
    "TRIPTYCH_METRICS_REFRESH_S",
    "TRIPTYCH_MINIO_CONSOLE_PORT",
    "TRIPTYCH_MINIO_EVENT_QUEUE_LIMIT",
    "TRIPTYCH_MINIO_KAFKA_BROKERS",
    "TRIPTYCH_MINIO_PORT",
    "TRIPTYCH_MINIO_VERSION",
    "TRIPTYCH_MINIO_VOLUMES",
    "TRIPTYCH_MLFLOW_BUCKET",
    "TRIPTYCH_MLFLOW_DB",
    "TRIPTYCH_MLFLOW_PORT",
    "TRIPTYCH_MLFLOW_TRACKING_URI",
    "TRIPTYCH_MODEL_NAME",
    "TRIPTYCH_MODEL_ROLE",
    "TRIPTYCH_MONITORING_AUTOSTART",
    "TRIPTYCH_POSTGRES_ALLOWED_NETWORKS",
    "TRIPTYCH_POSTGRES_DB",
    "TRIPTYCH_POSTGRES_PASSWORD",
    "TRIPTYCH_POSTGRES_PORT",
    "TRIPTYCH_POSTGRES_USER",
    "TRIPTYCH_PROJECT_FILE",
    "TRIPTYCH_PROMETHEUS_ENDPOINT",
    "TRIPTYCH_PROMETHEUS_PORT",
    "TRIPTYCH_PROMETHEUS_REMOTE_SUPERVISORS",
    "TRIPTYCH_PROMETHEUS_RETENTION",
    "TRIPTYCH_PROMETHEUS_SCRAPE_INTERVAL",
    "TRIPTYCH_PROMOTION_MARGIN",
    "TRIPTYCH_PROMOTION_MARGINS",
    "TRIPTYCH_READ_REQUIRES_KEY",
    "TRIPTYCH_RECONCILE_MAX_WAIT_S",
    "TRIPTYCH_RECONCILE_SETTLE_S",
    "TRIPTYCH_REPORTS_BUCKET",
    "TRIPTYCH_RETENTION_DAYS",
    "TRIPTYCH_RETRAIN_ENDPOINT",
    "TRIPTYCH_RETRAIN_MAX_LABELLED",
    "TRIPTYCH_RETRAIN_PARALLEL",
    "TRIPTYCH_RETRAIN_PORT",
    "TRIPTYCH_ROLES",
    "TRIPTYCH_S3_ACCESS_KEY",
    "TRIPTYCH_S3_ENDPOINT",
    "TRIPTYCH_S3_SECRET_KEY",
    "TRIPTYCH_SCALE_CRON_LEAD_S",
    "TRIPTYCH_SCALE_IDLE_TO_ZERO_S",
    "TRIPTYCH_SCALE_LAG_PER_REPLICA",
    "TRIPTYCH_SCALE_MAX_HOST_BUSY",
    "TRIPTYCH_SCALE_PEERS",
    "TRIPTYCH_SCALE_STABILISATION_S",
    "TRIPTYCH_SCALE_TARGET_BUSY",
    "TRIPTYCH_SCALE_TICK_S",
    "TRIPTYCH_SHADOW_ALPHA",
    "TRIPTYCH_SHADOW_LABEL_BUDGET",
    "TRIPTYCH_SUPERVISOR_PORT",
    "TRIPTYCH_SWEEP_LOOKBACK_S",
    "TRIPTYCH_SWEEP_PAGE_SIZE",
    "TRIPTYCH_SWEEP_SETTLE_S",
    "TRIPTYCH_THUMBNAIL_PX",
    "TRIPTYCH_UPLOAD_ENDPOINT",
    "TRIPTYCH_UPLOAD_PORT",
    "TRIPTYCH_UPLOAD_RATE_PER_MINUTE",
}
# Where the stack lives, not one concern's: Settings' own.
OWN = {"cache_dir", "data_dir", "bind_host"}


def test_every_environment_variable_is_as_it_was():
    assert {"TRIPTYCH_" + name.upper() for name in Settings.model_fields} == ENVIRONMENT


def test_every_field_is_in_exactly_one_section_or_settings_own():
    homes: dict[str, list[str]] = {}
    for section in SECTIONS:
        for name in section.model_fields:
            homes.setdefault(name, []).append(section.__name__)
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}
    assert set(Settings.model_fields) == set(homes) | OWN
    assert not OWN & set(homes)


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("TRIPTYCH_KAFKA_PORT", "29092", "kafka_port", 29092),
        ("TRIPTYCH_SCALE_TICK_S", "2.5", "scale_tick_s", 2.5),
        ("TRIPTYCH_MODEL_ROLE", "shadow", "model_role", "shadow"),
        ("TRIPTYCH_API_PORT", "tcp://10.96.0.12:8123", "api_port", 8123),  # a Kubernetes service link
        ("TRIPTYCH_ROLES", '["kafka", "worker"]', "roles", ["kafka", "worker"]),
    ],
)
def test_a_sectioned_field_still_reads_its_variable(monkeypatch, variable, value, field, expected):
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), field) == expected


def test_a_bad_value_is_still_refused_by_its_section():
    with pytest.raises(ValueError, match="model_role"):
        Settings(model_role="everything")
