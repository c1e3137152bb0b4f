"""The MLflow model registry: one registered model per architecture, versions
carrying their card (labels, input size, preprocessing, metrics, data set, runs),
and the aliases `champion` (serving) and `challenger` (candidate)."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..config import Settings, get_settings
from . import local_copies
from .card import ONNX_FILE, WEIGHTS_FILE, ModelCard
from .null_backend import is_null
from .zoo import ARCHITECTURES, architecture

if TYPE_CHECKING:  # torch only where weights are written: reading the registry stays light (the dashboard)
    import torch

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
EXPERIMENT = "triptych-training"
ARTIFACT_PATH = "model"


def _client(settings: Settings) -> MlflowClient:
    # MLflow's S3 artifact client reads its endpoint and keys from the environment.
    for key, value in settings.s3_client_env().items():
        os.environ.setdefault(key, value)
    mlflow.set_tracking_uri(settings.mlflow_url)
    return MlflowClient(settings.mlflow_url)


@dataclass(frozen=True)
class RegisteredVersion:
    model_name: str
    version: str
    run_id: str
    card: ModelCard


def register(
    model: torch.nn.Module,
    card: ModelCard,
    params: dict | None = None,
    settings: Settings | None = None,
    tags: dict[str, str] | None = None,
    history: list[dict] | None = None,
) -> RegisteredVersion:
    """Log the weights, ONNX export and card as one MLflow run (with its training
    curve, one step per epoch) and register them as a new version; `tags` (lineage:
    data set, split, workflow run) go on the run and the version."""
    if is_null(card):
        raise ValueError(f"{card.model_name}: the bench's null stand-in is not a model; it is never registered")
    with _REGISTERING:
        return _register(model, card, params, settings or get_settings(), tags, history)


# One registration at a time per process: torch's ONNX export keeps process-global
# state (two exports at once fail), and trainings of one workflow run share a process.
_REGISTERING = threading.Lock()


def _register(
    model,
    card: ModelCard,
    params: dict | None,
    settings: Settings,
    tags: dict[str, str] | None,
    history: list[dict] | None,
) -> RegisteredVersion:
    import torch

    from .backends import export_onnx

    client = _client(settings)
    arch = architecture(card.model_name)
    mlflow.set_experiment(EXPERIMENT)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=f"train-{card.model_name}") as run:
        folder = Path(tmp)
        torch.save(model.state_dict(), folder / WEIGHTS_FILE)
        export_onnx(model, card, folder / ONNX_FILE)
        card = card.model_copy(update={"mlflow_run_id": run.info.run_id})
        card.save(folder)
        mlflow.log_params(
            {
                "model_name": card.model_name,
                "input_size": card.input_size,
                "dataset_id": card.dataset_id,
                **(params or {}),
            }
        )
        mlflow.log_metrics(card.metrics)
        for row in history or []:
            mlflow.log_metrics(
                {"epoch_train_loss": row["train_loss"], "epoch_test_accuracy": row["test_accuracy"]},
                step=int(row["epoch"]),
            )
        if tags:
            mlflow.set_tags(tags)
        mlflow.log_artifacts(str(folder), artifact_path=ARTIFACT_PATH)
        try:
            client.create_registered_model(arch.registered_name, description=f"Triptych {card.model_name}")
        except MlflowException:
            pass  # already registered
        version = client.create_model_version(
            arch.registered_name,
            f"runs:/{run.info.run_id}/{ARTIFACT_PATH}",
            run.info.run_id,
            tags={
                "labels": json.dumps(card.labels),
                "input_size": str(card.input_size),
                "dataset_id": card.dataset_id,
                "accuracy": str(card.metrics.get("accuracy", "")),
                "origin": card.origin,
                "mlrun_run_uid": card.mlrun_run_uid or "",
                **(tags or {}),
            },
        )
    return RegisteredVersion(
        card.model_name,
        str(version.version),
        run.info.run_id,
        card.model_copy(update={"version": str(version.version)}),
    )


def version_for_alias(model_name: str, alias: str = CHAMPION, settings: Settings | None = None) -> str | None:
    client = _client(settings or get_settings())
    try:
        return str(client.get_model_version_by_alias(architecture(model_name).registered_name, alias).version)
    except MlflowException:
        return None


def set_alias(model_name: str, version: str, alias: str = CHAMPION, settings: Settings | None = None) -> None:
    client = _client(settings or get_settings())
    client.set_registered_model_alias(architecture(model_name).registered_name, alias, version)


def delete_alias(model_name: str, alias: str, settings: Settings | None = None) -> None:
    client = _client(settings or get_settings())
    try:
        client.delete_registered_model_alias(architecture(model_name).registered_name, alias)
    except MlflowException:
        pass  # already gone


def tag_version(model_name: str, version: str, tags: dict[str, str], settings: Settings | None = None) -> None:
    """Tags on a version and on its MLflow run (where the run's page shows them)."""
    client = _client(settings or get_settings())
    name = architecture(model_name).registered_name
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    run_id = client.get_model_version(name, version).run_id
    if run_id:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)


def log_to_run(
    run_id: str, metrics: dict[str, float], documents: dict[str, dict], settings: Settings | None = None
) -> None:
    """Metrics and JSON documents (a confusion matrix) added to an existing MLflow run."""
    client = _client(settings or get_settings())
    for key, value in metrics.items():
        if value is not None:
            client.log_metric(run_id, key, float(value))
    for name, document in documents.items():
        client.log_dict(run_id, document, name)


def download(model_name: str, version: str, target: Path, settings: Settings | None = None) -> tuple[ModelCard, Path]:
    """Fetch a version's files into `target` and return its card (with its version)."""
    client = _client(settings or get_settings())
    mv = client.get_model_version(architecture(model_name).registered_name, version)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(target)))
    card = ModelCard.load(local).model_copy(update={"version": str(version)})
    card.save(local)
    return card, local


def add_artifact(model_name: str, version: str, path: Path, settings: Settings | None = None) -> str:
    """Add a file to a registered version's artifacts (beside its weights and export)."""
    client = _client(settings or get_settings())
    run_id = client.get_model_version(architecture(model_name).registered_name, version).run_id
    client.log_artifact(run_id, str(path), artifact_path=ARTIFACT_PATH)
    return f"runs:/{run_id}/{ARTIFACT_PATH}/{Path(path).name}"


def source_of(model_name: str, version: str, settings: Settings | None = None) -> str:
    """Where a version's artifacts live in the registry's store."""
    client = _client(settings or get_settings())
    source = client.get_model_version(architecture(model_name).registered_name, version).source
    if source is None:
        raise LookupError(f"{model_name} version {version} has no source in the registry")
    return source


def cached_download(
    model_name: str, version: str, settings: Settings | None = None, require: tuple[str, ...] = ()
) -> tuple[ModelCard, Path]:
    """A version's files from the machine's model cache, downloaded once (see local_copies);
    fetched again if the copy lacks a `require`d file added since (an int8 export)."""
    settings = settings or get_settings()
    source = source_of(model_name, version, settings)
    folder = local_copies.local_copy(
        settings.cache_dir / "models" / model_name,
        local_copies.key_for(version, source),
        lambda staging: download(model_name, version, staging, settings),
        require=require,
    )
    return ModelCard.load(folder), folder


def metric_of(
    model_name: str, version: str, metric: str = "accuracy", settings: Settings | None = None
) -> float | None:
    client = _client(settings or get_settings())
    mv = client.get_model_version(architecture(model_name).registered_name, version)
    if mv.run_id is None:  # registered from files, not from a run: no metrics
        return None
    value = client.get_run(mv.run_id).data.metrics.get(metric)
    return float(value) if value is not None else None


def tag_of(model_name: str, version: str, tag: str, settings: Settings | None = None) -> str | None:
    """A version's tag as registered (labels, input_size, dataset_id, accuracy, origin, ...)."""
    client = _client(settings or get_settings())
    return client.get_model_version(architecture(model_name).registered_name, version).tags.get(tag)


def int8_published(model_name: str, version: str, settings: Settings | None = None) -> bool:
    """The version's int8 export passed its agreement gate and was added to its
    artifacts (`triptych models quantize` tags it `int8.published`)."""
    return tag_of(model_name, version, "int8.published", settings) == "true"


@dataclass(frozen=True)
class VersionSummary:
    """One registered version as the dashboard's Models page shows it."""

    model_name: str
    version: str
    aliases: tuple[str, ...]
    dataset_id: str
    accuracy: float | None
    origin: str
    created_ms: int
    run_id: str
    # What `triptych models quantize` measured on this version (the `int8.` tags, prefix
    # dropped: agreement, fp32_accuracy, int8_accuracy, speedup, held_out, published).
    int8: dict[str, str] = field(default_factory=dict)


def overview(settings: Settings | None = None, per_model: int = 10) -> dict[str, list[VersionSummary]]:
    """Each model's newest registered versions (newest first), with aliases and card tags."""
    client = _client(settings or get_settings())
    result: dict[str, list[VersionSummary]] = {}
    for name, arch in ARCHITECTURES.items():
        try:
            # Version search results carry no aliases: the registered model has them.
            aliases_of: dict[str, list[str]] = {}
            for alias, version in client.get_registered_model(arch.registered_name).aliases.items():
                aliases_of.setdefault(str(version), []).append(alias)
        except MlflowException:
            result[name] = []  # not registered yet
            continue
        found = client.search_model_versions(f"name = '{arch.registered_name}'", max_results=200)
        versions = sorted(found, key=lambda v: int(v.version), reverse=True)[:per_model]
        result[name] = [
            VersionSummary(
                name,
                str(v.version),
                tuple(sorted(aliases_of.get(str(v.version), []))),
                v.tags.get("dataset_id", ""),
                float(v.tags["accuracy"]) if v.tags.get("accuracy") else None,
                v.tags.get("origin", ""),
                int(v.creation_timestamp or 0),
                v.run_id or "",
                {k.removeprefix("int8."): t for k, t in v.tags.items() if k.startswith("int8.")},
            )
            for v in versions
        ]
    return result


def champion_labels(settings: Settings | None = None) -> set[str]:
    """Every label some champion knows: the classes a person may assign to an image."""
    client = _client(settings or get_settings())
    labels: set[str] = set()
    for arch in ARCHITECTURES.values():
        try:
            version = client.get_model_version_by_alias(arch.registered_name, CHAMPION)
        except MlflowException:
            continue
        labels.update(json.loads(version.tags.get("labels", "[]")))
    return labels
