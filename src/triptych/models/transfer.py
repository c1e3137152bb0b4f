"""Champions carried from one registry to another: a laptop's trained models into
a cluster's MLflow (`triptych models export` there, `triptych models import` here),
without training them again. A version travels as its folder (weights, ONNX
export, card) and is registered anew, so the target keeps its own lineage."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import Settings
from .backends import load_torch_model
from .card import ModelCard
from .registry import CHAMPION, RegisteredVersion, download, register, set_alias, version_for_alias
from .zoo import ARCHITECTURES


def export_champions(target: Path, settings: Settings, models: list[str] | None = None) -> dict[str, Path]:
    """Download each model's champion into `target/<model>/`; models without one are skipped."""
    exported = {}
    for name in models or list(ARCHITECTURES):
        version = version_for_alias(name, CHAMPION, settings)
        if version is not None:
            staging = Path(target) / f".{name}-download"
            _, local = download(name, version, staging, settings)
            local.rename(Path(target) / name)  # the version's own files, card.json at the top
            shutil.rmtree(staging, ignore_errors=True)
            exported[name] = Path(target) / name
    return exported


def import_version(folder: Path, settings: Settings, champion: bool = True) -> RegisteredVersion:
    """Register an exported version folder in the settings' registry (as champion)."""
    card = ModelCard.load(folder)
    model = load_torch_model(folder, card)
    source = f"{card.model_name} v{card.version}" if card.version else card.model_name
    registered = register(
        model,
        card.model_copy(update={"version": None, "mlflow_run_id": None}),
        settings=settings,
        tags={"imported_from": source},
    )
    if champion:
        set_alias(card.model_name, registered.version, CHAMPION, settings)
    return registered
