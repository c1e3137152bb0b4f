"""The functions part of the Helm chart, rendered from the one declaration.

`projects/triptych_project.py` writes `infra/helm/triptych/files/functions.yaml`
from `project.yaml` with `chart_functions`, and `--check` (a unit test) fails when
the two disagree, so the chart can never deploy a function other than the one the
local runner runs. The file holds what does not depend on an install: each
function's handler, triggers, env, resources, annotations and replica bounds, and
its scaling (the NuclioFunction's fields and KEDA's ScaledObject spec, from
`runtime.kube_scaling`). The chart's templates add what does: the image, the
brokers, the Prometheus address, the secrets.
"""

from __future__ import annotations

import copy
from pathlib import Path

from ..config import Settings, kafka_user
from ..runtime.deploy import function_config
from ..runtime.kube_scaling import keda_scaled_object, nuclio_scaling
from ..runtime.spec import function_spec
from ..security.db_roles import COMPONENT_ENV
from ..stack.services.minio import minio_kafka_sasl_env, minio_kafka_targets_env

# Image paths (infra/image/Containerfile): each function's folder sits under here.
IMAGE_FUNCTIONS_DIR = "/opt/triptych/functions"
# Filled in by the chart's templates from its values.
BROKERS_PLACEHOLDER = "__kafka_bootstrap__"
PROMETHEUS_PLACEHOLDER = "__prometheus_url__"
# With kafka.sasl.enabled the chart sets this variable from MinIO's Kafka Secret instead.
KAFKA_PASSWORD_PLACEHOLDER = "__kafka_password__"
# The functions that train (torch, MLRun's workflow) run from the training image; every
# other one from the serving image, which has neither (triptych.kube.image.ROLES).
TRAINING_FUNCTIONS = frozenset({"retrain"})
# On the chart's MinIO volume: the durable target's queue survives a restart with the data.
MINIO_EVENT_QUEUE_DIR = "/data/.triptych-event-queue"


def _declared_settings() -> Settings:
    """The scaling rules' defaults, never this shell's environment: the file is committed."""
    return Settings.model_construct()


def chart_function(entry: dict, root: Path, settings: Settings) -> dict:
    config = function_config(entry, root)
    spec = function_spec(entry, root)
    source = Path(entry["spec"]["spec"]["build"]["origin_filename"])
    triggers = copy.deepcopy(config["spec"]["triggers"])
    for trigger in triggers.values():
        if "brokers" in trigger.get("attributes", {}):
            trigger["attributes"]["brokers"] = [BROKERS_PLACEHOLDER]
    keda = keda_scaled_object(spec, settings, BROKERS_PLACEHOLDER)
    if keda:
        for trigger in keda["spec"]["triggers"]:
            if trigger["type"] == "prometheus":
                trigger["metadata"]["serverAddress"] = PROMETHEUS_PLACEHOLDER
    return {
        "handler": config["spec"]["handler"],
        "handlerDir": f"{IMAGE_FUNCTIONS_DIR}/{source.parent.name}",
        "imageRole": "training" if entry["name"] in TRAINING_FUNCTIONS else "serving",
        # Whose PostgreSQL Secret the chart gives it (triptych.security.db_roles).
        "component": spec.env[COMPONENT_ENV],
        "runtime": config["spec"]["runtime"],
        "env": config["spec"]["env"],
        "resources": config["spec"].get("resources", {}),
        "annotations": config["metadata"].get("annotations", {}),
        "triggers": triggers,
        "scaling": nuclio_scaling(spec, settings),
        "targetCPU": round(settings.scale_target_busy * 100),  # where the chart runs no KEDA
        "keda": keda["spec"] if keda else None,
    }


def chart_functions(entries: list[dict], root: Path) -> dict:
    """Every Nuclio function entry's `chart_function`, and the MinIO server's Kafka
    notification targets (the same two the local stack starts MinIO with)."""
    settings = _declared_settings()
    return {
        "functions": {entry["name"]: chart_function(entry, root, settings) for entry in entries},
        "minioNotifyEnv": minio_kafka_targets_env(
            BROKERS_PLACEHOLDER, MINIO_EVENT_QUEUE_DIR, settings.minio_event_queue_limit
        ),
        # Added with kafka.sasl.enabled: both targets log in as MinIO's Kafka user.
        "minioNotifySaslEnv": minio_kafka_sasl_env(
            kafka_user("minio"), KAFKA_PASSWORD_PLACEHOLDER, settings.kafka_sasl_mechanism
        ),
    }
