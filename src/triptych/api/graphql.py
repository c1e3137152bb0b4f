"""GraphQL at /graphql (Strawberry), the planning document's schema over the same
read-side queries and upload code as the REST endpoints:

    query { images(limit: 5) { imageId filename predictions { modelName predictionClass confidence } } }
    mutation($f: Upload!) { uploadImage(file: $f, label: "cat") { imageId status } }   # multipart request

Reads follow the REST rule (open unless TRIPTYCH_READ_REQUIRES_KEY); `uploadImage`
needs a key with the `upload` scope. Errors carry `extensions.code`, as REST's `code`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import strawberry
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.fastapi import GraphQLRouter
from strawberry.file_uploads import Upload

from ..db import queries
from ..figures.ranges import range_significance
from ..ingress.upload import UploadForm
from ..security import AuthError
from .deps import Services
from .errors import ApiError
from .time_window import stats_window

MAX_LIMIT = 500


@strawberry.type
class Prediction:
    id: strawberry.ID
    model_name: str
    model_version: str
    prediction_class: str
    confidence: float
    inference_time_ms: int
    created_at: datetime

    @classmethod
    def of(cls, row: dict) -> Prediction:
        return cls(
            id=strawberry.ID(str(row["prediction_id"])),
            model_name=row["model_name"],
            model_version=row["model_version"],
            prediction_class=row["predicted_class"],
            confidence=row["confidence"],
            inference_time_ms=round(row["inference_ms"]),
            created_at=row["created_at"],
        )


@strawberry.type
class Comparison:
    consensus_class: str | None
    agreement_level: str
    consensus_correct: bool | None
    fastest_model: str | None


@strawberry.type
class Image:
    id: strawberry.ID
    image_id: str
    filename: str | None
    uploaded_at: datetime
    status: str
    ground_truth_label: str | None
    predictions: list[Prediction]
    comparison: Comparison | None


@strawberry.type
class ModelStats:
    model_name: str
    predictions: int
    p50_inference_ms: float | None
    p95_inference_ms: float | None
    mean_confidence: float | None
    accuracy: float | None


@strawberry.type(description="two models on the labelled images both answered (see GET /stats/significance)")
class PairSignificance:
    models: list[str]
    n: int
    b: int
    c: int
    accuracy_difference: float | None
    p_value: float
    ci_low: float | None
    ci_high: float | None
    more_labels_needed: int | None
    verdict: str


@strawberry.type
class CochranQ:
    q: float
    p_value: float
    df: int


@strawberry.type
class Significance:
    since: datetime
    until: datetime
    n: int
    pairs: list[PairSignificance]
    cochran_q: CochranQ | None


def _services(info: strawberry.Info) -> Services:
    return info.context["request"].app.state.services


def _check(info: strawberry.Info, scope: str | None = None):
    request: Request = info.context["request"]
    guard = _services(info).guard
    try:
        return guard.require(request.headers, scope) if scope else guard.check_read(request.headers)
    except AuthError as exc:
        raise GraphQLError(str(exc), extensions={"code": exc.code}) from exc


def _images(svc: Services, ids: list[str]) -> list[Image]:
    """The images of `ids` (in that order; unknown ids left out), two queries for the lot."""
    rows, predictions = svc.db.transaction(
        lambda cur: (queries.images_by_id(cur, ids), queries.predictions_for(cur, ids))
    )
    result = []
    for image_id in ids:
        row = rows.get(image_id)
        if row is None:
            continue
        result.append(
            Image(
                id=strawberry.ID(image_id),
                image_id=image_id,
                filename=row["filename"],
                uploaded_at=row["uploaded_at"],
                status=row["status"],
                ground_truth_label=row["ground_truth_label"],
                predictions=[Prediction.of(p) for p in predictions[image_id]],
                comparison=Comparison(
                    consensus_class=row["consensus_class"],
                    agreement_level=row["agreement_level"],
                    consensus_correct=row["consensus_correct"],
                    fastest_model=row["fastest_model"],
                )
                if row["compared_at"]
                else None,
            )
        )
    return result


@strawberry.type
class Query:
    @strawberry.field(description="the newest images, newest first (at most 500)")
    async def images(self, info: strawberry.Info, limit: int = 50) -> list[Image]:
        _check(info)
        if not 1 <= limit <= MAX_LIMIT:
            raise GraphQLError(f"limit is 1 to {MAX_LIMIT}", extensions={"code": "bad_limit"})
        svc = _services(info)
        start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC)
        rows = await run_in_threadpool(svc.read, queries.history_rows, queries.HistoryFilter(start, end), 0, limit)
        return await run_in_threadpool(_images, svc, [str(r["image_id"]) for r in rows])

    @strawberry.field
    async def image(self, info: strawberry.Info, image_id: str) -> Image | None:
        _check(info)
        try:
            image_id = str(uuid.UUID(image_id))
        except ValueError:
            return None
        found = await run_in_threadpool(_images, _services(info), [image_id])
        return found[0] if found else None

    @strawberry.field
    async def predictions(self, info: strawberry.Info, image_id: str) -> list[Prediction]:
        image = await self.image(info, image_id)
        return image.predictions if image else []

    @strawberry.field(description="each model over the last hour")
    async def model_stats(self, info: strawberry.Info) -> list[ModelStats]:
        _check(info)
        rows = await run_in_threadpool(_services(info).read, queries.per_model, 3600)
        return [
            ModelStats(
                model_name=r["model_name"],
                predictions=r["predictions"],
                p50_inference_ms=r["p50_inference_ms"],
                p95_inference_ms=r["p95_inference_ms"],
                mean_confidence=r["mean_confidence"],
                accuracy=r["accuracy"],
            )
            for r in rows
        ]

    @strawberry.field(description="is one model really more accurate than another? (default: the last hour)")
    async def significance(
        self, info: strawberry.Info, since: datetime | None = None, until: datetime | None = None
    ) -> Significance:
        _check(info)
        svc = _services(info)
        try:
            start, end = stats_window(since, until)
        except ApiError as exc:
            raise GraphQLError(str(exc), extensions={"code": exc.code}) from exc
        result = await run_in_threadpool(svc.read, range_significance, start, end, list(svc.settings.active_models))
        q = result["cochran_q"]
        return Significance(
            since=start,
            until=end,
            n=result["n"],
            cochran_q=CochranQ(**q) if q else None,
            pairs=[PairSignificance(**{k: v for k, v in p.items() if k != "accuracy"}) for p in result["pairs"]],
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="upload one image (a GraphQL multipart request); needs the `upload` scope")
    async def upload_image(self, info: strawberry.Info, file: Upload, label: str | None = None) -> Image:
        principal = _check(info, "upload")
        svc = _services(info)
        fields = {"label": label} if label else {}
        form = UploadForm(files=[(file.filename, await file.read())], fields=fields)
        status, reply, _ = await run_in_threadpool(svc.uploader.accept, "/upload", form, principal)
        if status >= 400:
            raise GraphQLError(reply["error"], extensions={"code": reply["code"]})
        return (await run_in_threadpool(_images, svc, [reply["image_id"]]))[0]


# Bounds on what one request may ask for: a hostile query cannot fan out or nest without end.
schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=6),
        lambda: MaxAliasesLimiter(max_alias_count=20),
        lambda: MaxTokensLimiter(max_token_count=2000),
    ],
)


def graphql_router() -> GraphQLRouter:
    return GraphQLRouter(schema, multipart_uploads_enabled=True)
