"""What the API answers: typed models, so /openapi.json describes every response
and clients can generate code from it. Field names follow the database's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EXAMPLE_ID = "3f2b8c1e-5d4a-4c1b-9e7f-0a1b2c3d4e5f"


def _as_utc(value: datetime) -> datetime:
    """An instant a client gave, in UTC (no zone = UTC); odd but valid ISO offsets
    (-21:22) become plain UTC before Postgres, which refuses them, sees them."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the instant is out of range") from exc


Instant = Annotated[datetime, AfterValidator(_as_utc)]


class ErrorBody(BaseModel):
    """Every error: a stable `code` for programs, and `error`, the reason for people."""

    code: str = Field(examples=["unknown_image"])
    error: str = Field(examples=[f"no image {EXAMPLE_ID}"])
    details: Any | None = None


class Answer(BaseModel):
    """One model's answer inside a comparison."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    class_: str | None = Field(None, alias="class", serialization_alias="class")
    confidence: float | None = None
    inference_ms: float | None = None
    correct: bool | None = None
    version: str | None = None


class Prediction(BaseModel):
    model_name: str = Field(examples=["resnet50"])
    model_version: str = Field(examples=["3"])
    predicted_class: str = Field(examples=["cat"])
    confidence: float = Field(ge=0, le=1, examples=[0.93])
    top_k: list[dict[str, Any]] = Field(default_factory=list, examples=[[{"label": "cat", "confidence": 0.93}]])
    fetch_ms: float | None = None
    decode_ms: float | None = None
    preprocess_ms: float | None = None
    inference_ms: float = Field(examples=[11.8])
    total_ms: float | None = None
    backend: str | None = Field(None, examples=["torch"])
    batch_size: int | None = None
    worker_id: str | None = None
    predicted_at: datetime
    role: Literal["champion", "shadow"] = Field("champion", description="shadow: a challenger's answer, never counted")


class Image(BaseModel):
    image_id: UUID = Field(examples=[EXAMPLE_ID])
    bucket: str
    object_key: str
    filename: str
    content_type: str | None = None
    image_format: str | None = None
    size_bytes: int
    width: int | None = None
    height: int | None = None
    source: str = Field(examples=["upload"])
    ground_truth_label: str | None = None
    client_metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["registered", "processing", "classified", "quarantined"]
    quarantine_reason: str | None = None
    needs_review: bool
    uploaded_at: datetime


class Comparison(BaseModel):
    image_id: UUID
    model_set: str = Field(examples=["efficientnet_b0@1,mobilenet_v2@1,resnet50@1"])
    model_versions: dict[str, str]
    consensus_class: str | None = None
    consensus_confidence: float | None = None
    agreement_level: Literal["all", "majority", "none"]
    agreement_ratio: float
    fastest_model: str | None = None
    fastest_inference_ms: float | None = None
    ground_truth_label: str | None = None
    per_model: dict[str, Answer]
    shadow: dict[str, Answer] = Field(
        default_factory=dict, description="challengers' answers in shadow, beside the counted ones"
    )
    consensus_correct: bool | None = None
    needs_review: bool
    created_at: datetime
    updated_at: datetime


class ImagePredictions(BaseModel):
    """An image's answers so far. `complete` once every active model has answered."""

    image_id: UUID
    status: str
    quarantine_reason: str | None = None
    complete: bool
    waiting_for: list[str] = Field(description="active models that have not answered yet")
    predictions: list[Prediction]
    comparison_url: str


class ImageDetail(BaseModel):
    image: Image
    predictions: list[Prediction]
    comparison: Comparison | None = None
    content_url: str


class PredictionRow(BaseModel):
    prediction_id: int
    image_id: UUID
    model_name: str
    model_version: str
    predicted_class: str
    confidence: float
    inference_ms: float
    total_ms: float | None = None
    backend: str | None = None
    batch_size: int | None = None
    created_at: datetime
    role: Literal["champion", "shadow"] = "champion"
    filename: str
    source: str
    ground_truth_label: str | None = None


class Page(BaseModel):
    """A newest-first page; pass `next_cursor` as `cursor` for the next one (null: the end)."""

    next_cursor: str | None = None


class PredictionPage(Page):
    items: list[PredictionRow]


class ImageRow(BaseModel):
    image_id: UUID
    uploaded_at: datetime
    filename: str
    source: str
    status: str
    ground_truth_label: str | None = None
    quarantine_reason: str | None = None
    consensus_class: str | None = None
    consensus_confidence: float | None = None
    agreement_level: str | None = None
    consensus_correct: bool | None = None
    per_model: dict[str, Answer] | None = None


class ImagePage(Page):
    items: list[ImageRow]


class ReviewPage(Page):
    kind: Literal["disagreements", "quarantined"]
    waiting: int = Field(description="how many wait in all")
    items: list[dict[str, Any]]


class ModelStats(BaseModel):
    model_name: str
    versions: str | None = None
    predictions: int
    p50_inference_ms: float | None = None
    p95_inference_ms: float | None = None
    p50_total_ms: float | None = None
    mean_confidence: float | None = None
    accuracy: float | None = None
    ece: float | None = Field(
        default=None,
        description="expected calibration error on the window's labelled images (10 equal-width confidence bins)",
    )


class ModelStatsReply(BaseModel):
    window_s: int
    models: list[ModelStats]


class MetricsWindow(BaseModel):
    model_name: str
    model_version: str
    window_start: datetime
    window_seconds: int
    prediction_count: int
    mean_inference_ms: float | None = None
    p50_inference_ms: float | None = None
    p95_inference_ms: float | None = None
    p99_inference_ms: float | None = None
    p95_total_ms: float | None = None
    mean_confidence: float | None = None
    labelled_count: int
    correct_count: int
    accuracy: float | None = None
    agreement_rate: float | None = None


class PerformanceReply(BaseModel):
    since: datetime
    until: datetime
    windows: list[MetricsWindow]


class PairSignificance(BaseModel):
    """Two models on the labelled images both answered (McNemar's exact test and a
    paired bootstrap interval of the accuracy difference, first minus second)."""

    models: list[str] = Field(examples=[["resnet50", "mobilenet_v2"]])
    n: int = Field(description="labelled images both answered")
    b: int = Field(description="images only the first model got right")
    c: int = Field(description="images only the second model got right")
    accuracy: list[float | None]
    accuracy_difference: float | None = Field(description="first minus second, as a share (0.041 = 4.1 points)")
    p_value: float = Field(description="McNemar's exact test, two-sided")
    ci_low: float | None = Field(description="95 % paired bootstrap interval of the difference")
    ci_high: float | None
    more_labels_needed: int | None = Field(
        description="at these rates, about how many more labelled images would give p < 0.05; 0 when it already is, "
        "null when no gap is seen"
    )
    verdict: str = Field(description="the result in words")


class CochranQ(BaseModel):
    q: float
    p_value: float
    df: int


class SignificanceReply(BaseModel):
    since: datetime
    until: datetime
    models: list[str]
    n: int = Field(description="labelled images every model answered (the newest 10,000 compared images at most)")
    pairs: list[PairSignificance]
    cochran_q: CochranQ | None = Field(description="all models at once; null when undefined (no image splits them)")


class Int8BesideFp32(BaseModel):
    """One champion version's int8 export beside its fp32 self, on the live images both answered."""

    model_name: str
    model_version: str
    answered: int = Field(description="images both answered (the newest 10,000 int8 answers at most)")
    agreement: float = Field(description="the share of them where int8's top class is fp32's")
    fp32_p50_ms: float
    int8_p50_ms: float
    test: PairSignificance = Field(description="fp32 (first) against int8 on the labelled ones")


class Int8Reply(BaseModel):
    since: datetime
    until: datetime
    models: list[Int8BesideFp32]


class CalibrationBin(BaseModel):
    lower: float
    upper: float
    count: int
    confidence: float | None = Field(description="mean top-1 confidence of the bin's answers")
    accuracy: float | None = Field(description="the share of them that were right")


class ModelCalibration(BaseModel):
    model_name: str
    n: int = Field(description="labelled answers")
    ece: float | None = Field(
        description="expected calibration error: the bins' |accuracy - confidence|, weighted by their answers"
    )
    bins: list[CalibrationBin]


class CalibrationReply(BaseModel):
    since: datetime
    until: datetime
    models: list[ModelCalibration]


class DriftDetector(BaseModel):
    detector: str = Field(
        description="confidence:<model> and agreement (ADWIN over the live stream), "
        "input:pixels (KS tests of pixel statistics against the training set)"
    )
    kind: Literal["output", "input"]
    status: Literal["ok", "drift", "warming up"] = Field(
        description="drift: a detection within the hold time (drift_hold_minutes); warming up: too few images yet"
    )
    drift_at: datetime | None = Field(description="the newest detection")
    updated_at: datetime = Field(description="when the drift job last ran this detector")
    summary: dict = Field(
        description="output: estimate, window, seen, detections; input: n_live, n_reference, "
        "alpha, tests (feature, statistic, p_value, medians), worst"
    )


class DriftReply(BaseModel):
    detectors: list[DriftDetector]
    drifting: list[str] = Field(description="the detectors in drift now")


class UploadResult(BaseModel):
    status: Literal["stored", "duplicate", "rejected"]
    image_id: UUID | None = None
    filename: str | None = None
    object_key: str | None = None
    sha256: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    label: str | None = None
    results_url: str | None = Field(None, description="GET it for the image's predictions")
    code: str | None = None
    error: str | None = None
    http_status: int | None = None


class BatchResult(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    results: list[UploadResult]


class LabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=100, examples=["cat"])


class LabelReply(BaseModel):
    image_id: UUID
    label: str
    consensus_correct: bool | None = None


class RetrainStarted(BaseModel):
    run_id: UUID
    state: str
    status_url: str


class PipelineStep(BaseModel):
    step: str = Field(description="gather, train:<model>, evaluate:<model>, gate:<model>, or a job's name")
    state: Literal["running", "succeeded", "failed", "skipped", "cancelled"]
    progress: dict[str, Any] = Field(default_factory=dict, description="epoch, images done, accuracy, seconds left")
    result: dict[str, Any] | None = None
    error: str | None = None
    mlflow_run_id: str | None = None
    mlrun_run_uid: str | None = None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None


class PipelineRun(BaseModel):
    run_id: UUID
    workflow: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    params: dict[str, Any]
    requested_by: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    mlrun_workflow_id: str | None = None
    heartbeat_at: datetime | None = Field(None, description="the running process's last sign of life")
    cancel_requested_at: datetime | None = Field(None, description="when a cancel was asked (DELETE /retrain/{run_id})")
    cancelled_by: str | None = Field(None, description="who asked for the cancel")
    steps: list[PipelineStep] = Field(default_factory=list)


class ModelVersion(BaseModel):
    version: str
    aliases: list[str]
    dataset_id: str
    accuracy: float | None = None
    origin: str
    created_ms: int
    run_id: str


class ModelEntry(BaseModel):
    model_name: str
    champion: ModelVersion | None = None
    challenger: ModelVersion | None = None
    versions: list[ModelVersion]


class ClearRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: Literal["clear-predictions"] = Field(description="spell it out: this deletes results")
    older_than: Instant | None = Field(None, description="only results made before this instant")


class ClearReply(BaseModel):
    predictions: int
    comparisons: int
    metrics_windows: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, str] = Field(examples=[{"postgres": "up", "kafka": "up", "minio": "up", "mlflow": "up"}])
    functions: dict[str, dict[str, int]] = Field(
        description="each function's replicas summed over every host, as Prometheus last scraped the supervisors",
        examples=[{"infer-resnet50": {"desired": 1, "running": 1, "starting": 0}}],
    )
    problems: list[str]
