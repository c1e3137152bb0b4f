"""The inference functions' logic: a batch of image messages in, one prediction
per image out on `predictions-output-stream`.

A champion replica serves one model's champion. The shadow replica (`infer-shadow`)
serves every model's challenger, if any, on the same stream in its own consumer
group, and marks its answers `shadow`: they are stored and shown, never counted.
The int8 twin (`infer-int8`) does the same with every champion's int8 export, where
`triptych models quantize` published one, and marks its answers `int8`: the Compare
page sets them beside the fp32 answers to the same images.

Ingest puts each image, decoded and resized for the configured input sizes
(`inline_pixel_sizes`, 64 px by default), into its message: a model of such a
size reads its input from there. Any other model's function fetches the object
and decodes it only as large as its input needs (JPEG DCT scaling).

Objects are fetched in parallel and decoded before anything is published, so a
batch either answers for all its images or for none: an image that cannot be
fetched or decoded fails the batch, the delivery wrapper splits it, and only that image is
dead-lettered (once, without retries: retrying cannot fix its bytes).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from minio.error import S3Error
from prometheus_client import Histogram
from pydantic import ValidationError

from ..bus import producer as make_producer
from ..config import Settings, get_settings
from ..contracts import (
    TOPIC_PREDICTIONS,
    ClassScore,
    ImageMessage,
    PredictionMessage,
    Timings,
    utcnow,
)
from ..imaging import DecodeError, decode
from ..models import registry
from ..models.backends import default_threads
from ..models.card import ModelCard
from ..models.preprocess import needed_side, resize, to_batch
from ..sdk import PermanentError
from ..storage import MISSING_OBJECT_CODES, minio_client, read_object
from .serving_model import LoadedModel, ServingModel

log = logging.getLogger("triptych.infer")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INFERENCE_SECONDS = Histogram(
    "triptych_inference_seconds",
    "Forward pass time per image (batch time / batch size)",
    ("model", "version", "backend"),
    buckets=LATENCY_BUCKETS,
)
IMAGE_SECONDS = Histogram(
    "triptych_image_seconds",
    "Fetch + decode + preprocess + inference per image",
    ("model", "version"),
    buckets=LATENCY_BUCKETS,
)
TOP_K = 5


@dataclass
class Fetched:
    message: ImageMessage
    pixels: np.ndarray | None  # the original, decoded only as large as the served models need
    inline: dict[int, np.ndarray]  # size -> pixels ingest already resized ("stretch"), carried in the message
    fetch_ms: float
    decode_ms: float

    def for_card(self, card: ModelCard) -> np.ndarray:
        if card.resize == "stretch" and card.input_size in self.inline:
            return self.inline[card.input_size]
        return resize(self.pixels, card)


def covered(message: ImageMessage, card: ModelCard) -> bool:
    """Whether the message carries this model's input already (no fetch, no decode)."""
    return card.resize == "stretch" and any(p.size == card.input_size for p in message.pixels)


def parse_images(bodies: list) -> list[ImageMessage]:
    try:
        return [
            ImageMessage.model_validate_json(b) if isinstance(b, (bytes, str)) else ImageMessage.model_validate(b)
            for b in bodies
        ]
    except ValidationError as exc:
        raise PermanentError(f"malformed image message: {exc.errors()[:3]}") from exc


class Classifier:
    def __init__(
        self, settings: Settings, models: list[ServingModel], s3, producer, worker_id: str, role: str = "champion"
    ):
        self.settings = settings
        self.models = models
        self.s3 = s3
        self.producer = producer
        self.worker_id = worker_id
        self.role = role
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fetch")

    @property
    def model(self) -> ServingModel:
        """A champion replica's one model."""
        return self.models[0]

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Classifier:
        settings = settings or get_settings()
        threads = settings.infer_threads or default_threads(len(settings.active_models))
        if settings.model_role in ("shadow", "int8"):
            # Every model, each serving what it may have or not: its challenger, or its champion's int8 export.
            backend, alias = (
                (settings.infer_backend, registry.CHALLENGER)
                if settings.model_role == "shadow"
                else ("onnx-int8", registry.CHAMPION)
            )
            models = [ServingModel(name, settings, backend, threads, alias=alias) for name in settings.active_models]
            for model in models:
                model.load_if_any()
        else:
            if not settings.model_name:
                raise RuntimeError("TRIPTYCH_MODEL_NAME must name the model this function serves")
            models = [ServingModel(settings.model_name, settings, settings.infer_backend, threads)]
            models[0].load_champion()
        for model in models:
            model.watch_updates()
        worker = os.environ.get("TRIPTYCH_WORKER_ID", f"{settings.model_name or settings.model_role}-{os.getpid()}")
        return cls(settings, models, minio_client(settings), make_producer(settings), worker, settings.model_role)

    def _fetch(self, message: ImageMessage, cards: list[ModelCard]) -> Fetched:
        started = time.perf_counter()
        if all(covered(message, card) for card in cards):
            try:
                inline = {p.size: p.array() for p in message.pixels}
            except ValueError as exc:
                raise PermanentError(f"image {message.image_id}: {exc}") from exc
            return Fetched(message, None, inline, 0.0, (time.perf_counter() - started) * 1000)
        try:
            data = read_object(self.s3, message.bucket, message.object_key, message.object_version)
        except S3Error as exc:
            if exc.code in MISSING_OBJECT_CODES:
                raise PermanentError(f"image {message.image_id} is gone from the bucket ({exc.code})") from exc
            raise
        fetched = time.perf_counter()
        try:
            pixels = decode(data, at_least=max(needed_side(card) for card in cards))
        except DecodeError as exc:
            raise PermanentError(f"image {message.image_id}: {exc}") from exc
        return Fetched(message, pixels, {}, (fetched - started) * 1000, (time.perf_counter() - fetched) * 1000)

    def handle(self, bodies: list) -> list[PredictionMessage]:
        received_at = utcnow()
        # One model version per model for the whole batch, even during a swap.
        serving = [loaded for model in self.models if (loaded := model.loaded) is not None]
        if not serving:
            if self.role != "champion":
                return []  # no challenger in shadow, no int8 export now: nothing to answer, not even to parse
            serving = [self.model.current]  # raises: a champion replica must serve
        messages = parse_images(bodies)
        cards = [loaded.card for loaded in serving]
        if all(covered(m, card) for m in messages for card in cards):
            fetched = [self._fetch(m, cards) for m in messages]  # nothing to wait for: no threads
        else:
            fetched = list(self.pool.map(lambda m: self._fetch(m, cards), messages))  # the first error propagates
        predictions = [p for loaded in serving for p in self._predict(loaded, fetched, received_at)]
        futures = [
            self.producer.send(TOPIC_PREDICTIONS, key=p.image_id.encode(), value=p.model_dump_json().encode())
            for p in predictions
        ]
        for future in futures:
            future.get(timeout=30)  # durable before the input offsets are committed or marked
        for p in predictions:
            log.info(
                "classified",
                extra={
                    "image_id": p.image_id,
                    "stage": "infer",
                    "model": p.model_name,
                    "version": p.model_version,
                    "role": p.role,
                    "label": p.top_k[0].label,
                    "batch_size": p.batch_size,
                    "duration_ms": round(p.timings.total_ms, 1),
                },
            )
        return predictions

    def _predict(self, serving: LoadedModel, fetched: list[Fetched], received_at) -> list[PredictionMessage]:
        card = serving.card
        started = time.perf_counter()
        batch = to_batch([f.for_card(card) for f in fetched], card)
        preprocess_ms = (time.perf_counter() - started) * 1000 / len(fetched)
        started = time.perf_counter()
        probabilities = serving.backend.predict(batch)
        inference_ms = (time.perf_counter() - started) * 1000 / len(fetched)
        predictions = []
        for item, probs in zip(fetched, probabilities):
            top = np.argsort(probs)[::-1][:TOP_K]
            total_ms = item.fetch_ms + item.decode_ms + preprocess_ms + inference_ms
            predictions.append(
                PredictionMessage(
                    image_id=item.message.image_id,
                    model_name=card.model_name,
                    model_version=serving.version,
                    # float32 softmax can exceed 1 by an ulp; the contract bounds it to [0, 1].
                    top_k=[ClassScore(label=card.labels[i], confidence=min(1.0, float(probs[i]))) for i in top],
                    timings=Timings(
                        fetch_ms=item.fetch_ms,
                        decode_ms=item.decode_ms,
                        preprocess_ms=preprocess_ms,
                        inference_ms=inference_ms,
                        total_ms=total_ms,
                    ),
                    backend=serving.backend.name,
                    batch_size=len(fetched),
                    worker_id=self.worker_id,
                    role=self.role,
                    received_at=received_at,
                )
            )
            INFERENCE_SECONDS.labels(card.model_name, serving.version, serving.backend.name).observe(
                inference_ms / 1000
            )
            IMAGE_SECONDS.labels(card.model_name, serving.version).observe(total_ms / 1000)
        return predictions
