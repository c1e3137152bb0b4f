"""The bench's stand-in for a model: `triptych bench --null-models` measures the
pipeline's own capacity (decode, Kafka, MinIO, PostgreSQL, the functions' own
work) with each forward pass replaced by this zero-cost answer. On an accelerator
the forward passes cost about a hundredth of what they cost on these CPUs; what is
left then bounds everything, and only this mode measures it.

It can never serve by accident:
- it is not a backend `TRIPTYCH_INFER_BACKEND` accepts, nor one `load_backend` makes;
- a replica uses it only under TRIPTYCH_BENCH_NULL_MODELS, which `triptych up` refuses;
- its answers carry the version `<champion>+null`, so no figure mixes them with the
  real version's, and the registry refuses to register a card that names it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .card import ModelCard

NULL_ORIGIN = "null (bench only)"
NULL_SUFFIX = "+null"


class NullBackend:
    name = "null (bench only)"

    def __init__(self, classes: int):
        # A fixed, valid distribution: the first class at 0.9, the rest sharing 0.1.
        row = np.full(classes, 0.1 / max(1, classes - 1), dtype=np.float32)
        row[0] = 0.9 if classes > 1 else 1.0
        self._row = row

    def predict(self, batch: NDArray[Any]) -> NDArray[Any]:
        return np.broadcast_to(self._row, (len(batch), len(self._row))).copy()


def null_card(card: ModelCard) -> ModelCard:
    """The champion's card as the stand-in answers under it: its version marked."""
    return card.model_copy(update={"version": f"{card.version}{NULL_SUFFIX}", "origin": NULL_ORIGIN})


def is_null(card: ModelCard) -> bool:
    return card.origin == NULL_ORIGIN or (card.version or "").endswith(NULL_SUFFIX)
