"""A model version's card: everything needed to use the weights correctly, stored
beside them (and as MLflow tags), so labels and preprocessing travel with the
version and can never be mixed up with another's."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

# ImageNet statistics: what torchvision's pretrained weights expect, and a fine
# default for weights trained here.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CARD_FILE = "card.json"
WEIGHTS_FILE = "model.pt"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"  # optional: `triptych models quantize` adds it (triptych.models.quantize)


class ModelCard(BaseModel):
    model_name: str
    labels: list[str]
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "stretch"  # "stretch" to input_size, or "shorter-side-crop" (ImageNet style)
    dataset_id: str
    metrics: dict[str, float] = Field(default_factory=dict)
    origin: str = "trained"  # "trained" here or "pretrained" (torchvision ImageNet)
    version: str | None = None  # the registry version, filled in when loaded from MLflow
    mlflow_run_id: str | None = None
    mlrun_run_uid: str | None = None

    def save(self, folder: Path) -> None:
        (Path(folder) / CARD_FILE).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, folder: Path) -> ModelCard:
        return cls.model_validate(json.loads((Path(folder) / CARD_FILE).read_text()))
