"""Message schemas shared by functions and tools. Everything on a topic is JSON
that one of these models can parse; a message that cannot be parsed is a poison
message and is dead-lettered with the validation error."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, overload

from pydantic import BaseModel, Field

# What a field may hold, so a hostile or broken message fails here with a clear
# validation error instead of later, in Postgres or in a model's arithmetic.
ImageId = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Millis = Annotated[float, Field(ge=0, allow_inf_nan=False)]

# The topics, beside the schemas of what travels on them (nothing else spells them):
# minio-events: MinIO's bucket events, straight from MinIO (the fast path);
# minio-events-durable: the same events again, from MinIO's on-disk queue, so
# that none is lost while Kafka is away; images-input-stream: ImageMessage;
# predictions-output-stream: PredictionMessage; dead-letters: DeadLetter;
# model-updates: promotions, for hot swaps.
TOPIC_MINIO_EVENTS = "minio-events"
TOPIC_MINIO_EVENTS_DURABLE = "minio-events-durable"
TOPIC_IMAGES_INPUT = "images-input-stream"
TOPIC_PREDICTIONS = "predictions-output-stream"
TOPIC_DEAD_LETTERS = "dead-letters"
TOPIC_MODEL_UPDATES = "model-updates"

# (name, partitions). Partitions bound consumer parallelism: three where several
# replicas consume, one where order across everything matters more than speed.
TOPICS: tuple[tuple[str, int], ...] = (
    (TOPIC_MINIO_EVENTS, 3),
    (TOPIC_MINIO_EVENTS_DURABLE, 3),
    (TOPIC_IMAGES_INPUT, 6),
    (TOPIC_PREDICTIONS, 6),
    (TOPIC_DEAD_LETTERS, 3),
    (TOPIC_MODEL_UPDATES, 1),
)

# Kafka headers the runtime understands.
HEADER_TARGET_FUNCTION = "triptych-target-function"  # a replayed dead letter is for this function only
HEADER_REPLAYED_FROM = "triptych-replayed-from"


def utcnow() -> datetime:
    return datetime.now(UTC)


class KafkaOrigin(BaseModel):
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


class DeadLetter(BaseModel):
    """A message a function gave up on, with everything needed to understand and resend it."""

    function: str
    consumer_group: str
    origin: KafkaOrigin
    key_b64: str | None = None
    value_b64: str
    headers: list[tuple[str, str]] = Field(default_factory=list)  # (name, base64 value)
    error: str
    error_type: str
    traceback: str = ""
    attempts: int
    dead_lettered_at: datetime = Field(default_factory=utcnow)

    @property
    def dedup_key(self) -> str:
        o = self.origin
        return f"dlq:{self.consumer_group}:{o.topic}:{o.partition}:{o.offset}"

    def key(self) -> bytes | None:
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None

    def value(self) -> bytes:
        return base64.b64decode(self.value_b64)

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(name, base64.b64decode(value)) for name, value in self.headers]


@overload
def b64(data: bytes) -> str: ...
@overload
def b64(data: None) -> None: ...
def b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data is not None else None


class Pixels(BaseModel):
    """An image already decoded and resized for models of one input size, carried
    in its message so that those models' functions neither fetch nor decode it."""

    size: int = Field(gt=0, le=256)
    resize: Literal["stretch"] = "stretch"  # as models.preprocess.resize_to
    rgb_b64: str  # size x size x 3 uint8, row-major

    def array(self) -> Any:  # a numpy array; numpy is imported only where pixels are decoded
        import numpy as np

        data = base64.b64decode(self.rgb_b64, validate=True)
        if len(data) != self.size * self.size * 3:
            raise ValueError(f"inline pixels hold {len(data)} bytes, not {self.size}x{self.size}x3")
        return np.frombuffer(data, np.uint8).reshape(self.size, self.size, 3)


class ImageMessage(BaseModel):
    """On `images-input-stream`, keyed by image_id: an image ready to classify."""

    image_id: ImageId
    bucket: Name
    object_key: Annotated[str, Field(min_length=1, max_length=1024)]
    object_version: str = ""
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    image_format: Name
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    source: Name
    ground_truth_label: str | None = None
    registered_at: datetime = Field(default_factory=utcnow)
    ingest_ms: Millis | None = None  # ingest's own time for this image (fetch, checks, row), for `triptych bench`
    pixels: list[Pixels] = Field(default_factory=list, max_length=4)


class ClassScore(BaseModel):
    label: Name
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)


class Timings(BaseModel):
    fetch_ms: Millis
    decode_ms: Millis
    preprocess_ms: Millis
    inference_ms: Millis
    total_ms: Millis


class PredictionMessage(BaseModel):
    """On `predictions-output-stream`, keyed by image_id: one model's answer."""

    image_id: ImageId
    model_name: Name
    model_version: Name
    top_k: list[ClassScore] = Field(min_length=1)  # best first
    timings: Timings
    backend: Name
    batch_size: int = Field(gt=0)
    worker_id: Name
    received_at: datetime | None = None  # the function took the batch (with predicted_at: time in the function)
    predicted_at: datetime = Field(default_factory=utcnow)
    # "shadow": a challenger's answer, stored beside the champion's but never part of a consensus.
    # "int8": a champion's int8 export's answer (the `infer-int8` twin), set beside its fp32
    # answer on the Compare page, stored apart (`int8_predictions`) and never counted.
    role: Literal["champion", "shadow", "int8"] = "champion"

    @property
    def predicted_class(self) -> str:
        return self.top_k[0].label

    @property
    def confidence(self) -> float:
        return self.top_k[0].confidence


class ModelUpdate(BaseModel):
    """On `model-updates`: a model's champion (or challenger) changed; inference
    functions hot-swap. A challenger update without a version ends its shadow phase."""

    model_name: str
    version: str | None
    alias: Literal["champion", "challenger"] = "champion"
    reason: str = ""
    at: datetime = Field(default_factory=utcnow)
