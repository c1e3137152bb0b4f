"""Reading results: an image's predictions and comparison, lists with cursors and
filters, the image itself, the review queue, and labels for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse
from minio.error import S3Error

from ...aggregation.labels import LabelRejected, UnknownImage, set_ground_truth
from ...db import queries
from ...explain.explainer import ImageGone, NoAnswer, Unavailable
from ...explain.gradcam import LAYER_NAMES, TARGET_LAYERS
from ...imaging import SERVED_IMAGE_HEADERS, served_media_type
from ...ingress.objects import SOURCES
from ...storage import MISSING_OBJECT_CODES
from ..deps import CursorParam, Labelling, Reader, Svc, decode_cursor, next_cursor
from ..errors import ApiError, responses
from ..schemas import (
    Comparison,
    ImageDetail,
    ImagePage,
    ImagePredictions,
    Instant,
    LabelReply,
    LabelRequest,
    PredictionPage,
    ReviewPage,
)
from ..time_window import list_window

router = APIRouter(tags=["results"])

ImageId = Annotated[
    UUID, Path(description="the id an upload answered", examples=["3f2b8c1e-5d4a-4c1b-9e7f-0a1b2c3d4e5f"])
]
Limit = Annotated[int, Query(ge=1, le=500)]
if TYPE_CHECKING:  # mypy cannot read a Literal built at run time
    ModelName = str
    Source = str
else:
    ModelName = Literal[tuple(TARGET_LAYERS)]  # the models Grad-CAM knows a layer of, an enum in the schema
    Source = Literal[SOURCES]  # the tuple of sources, an enum in the schema


def _unknown(image_id) -> ApiError:
    return ApiError(404, "unknown_image", f"no image {image_id}")


def _detail(svc: Svc, image_id) -> dict:
    detail = svc.read(queries.image_detail, str(image_id))
    if detail is None:
        raise _unknown(image_id)
    return detail


@router.get("/predictions/recent/{limit}", response_model=PredictionPage, responses=responses(400, 401, 422))
def recent_predictions(
    limit: Annotated[int, Path(ge=1, le=500)],
    svc: Svc,
    _: Reader,
    cursor: CursorParam = None,
    model: str | None = None,
    predicted_class: Annotated[str | None, Query(alias="class")] = None,
    source: Source | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
):
    """The newest predictions (every model's answer is a row), newest first."""
    list_window(since, until)
    f = queries.PredictionFilter(model, predicted_class, source, since, until)
    rows = svc.read(queries.recent_predictions, f, limit, decode_cursor(cursor, int))
    return {"items": rows, "next_cursor": next_cursor(rows, limit, "created_at", "prediction_id")}


@router.get("/predictions/{image_id}", response_model=ImagePredictions, responses=responses(401, 404, 422))
def predictions(image_id: ImageId, svc: Svc, _: Reader):
    """An image's answers so far, each model version's; `complete` once every active model answered."""
    detail = _detail(svc, image_id)
    answered = {p["model_name"] for p in detail["predictions"] if p.get("role", "champion") == "champion"}
    waiting = [m for m in svc.settings.active_models if m not in answered]
    image = detail["image"]
    return {
        "image_id": image_id,
        "status": image["status"],
        "quarantine_reason": image["quarantine_reason"],
        "complete": not waiting and image["status"] != "quarantined",
        "waiting_for": waiting,
        "predictions": detail["predictions"],
        "comparison_url": f"{svc.settings.results_base_url}/comparisons/{image_id}",
    }


@router.get("/comparisons/{image_id}", response_model=Comparison, responses=responses(401, 404, 422))
def comparison(image_id: ImageId, svc: Svc, _: Reader):
    """How the models compared on an image: consensus, agreement, fastest, each answer.
    404 `not_compared_yet` while models are still answering."""
    row = svc.read(queries.latest_comparison, str(image_id))
    if row is None:
        if svc.read(queries.image_location, str(image_id)) is None:
            raise _unknown(image_id)
        raise ApiError(404, "not_compared_yet", f"image {image_id} has not been answered by every model yet")
    return row


@router.get("/images", response_model=ImagePage, responses=responses(400, 401, 422))
def images(
    svc: Svc,
    _: Reader,
    limit: Limit = 50,
    cursor: CursorParam = None,
    model: str | None = None,
    predicted_class: Annotated[str | None, Query(alias="class")] = None,
    agreement: Literal["all", "majority", "none", "pending", "quarantined"] | None = None,
    correct: bool | None = None,
    source: Source | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    search: Annotated[str | None, Query(max_length=200, description="part of a file name, or an id's start")] = None,
):
    """Images newest first, with their latest comparison. `class` and `correct` apply to
    `model`'s answer when given, else to the consensus."""
    start, end = list_window(since, until)
    f = queries.HistoryFilter(start, end, model, predicted_class, agreement, correct, source, search)
    rows = svc.read(queries.history_rows, f, 0, limit, decode_cursor(cursor))
    return {"items": rows, "next_cursor": next_cursor(rows, limit, "uploaded_at", "image_id")}


@router.get("/images/{image_id}", response_model=ImageDetail, responses=responses(401, 404, 422))
def image(image_id: ImageId, svc: Svc, _: Reader):
    """Everything known about an image: its record, every prediction, its latest comparison."""
    detail = _detail(svc, image_id)
    return {
        "image": detail["image"],
        "predictions": detail["predictions"],
        "comparison": detail["comparison"],
        "content_url": f"{svc.settings.results_base_url}/images/{image_id}/content",
    }


@router.get(
    "/images/{image_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "image/jpeg": {},
                "image/png": {},
                "image/webp": {},
                "image/bmp": {},
                "application/octet-stream": {},
            },
            "description": "the original bytes (application/octet-stream: a quarantined object, not an image)",
        },
        **responses(401, 404, 422),
    },
)
def image_content(image_id: ImageId, svc: Svc, _: Reader):
    """The image's original bytes, streamed from the bucket."""
    where = svc.read(queries.image_location, str(image_id))
    if where is None:
        raise _unknown(image_id)
    try:
        obj = svc.s3.get_object(where["bucket"], where["object_key"], version_id=where["object_version"] or None)
    except S3Error as exc:  # MinIO away is the server's failure (500), not the image's
        if exc.code not in MISSING_OBJECT_CODES:
            raise
        raise ApiError(404, "content_gone", f"the bytes of image {image_id} are no longer in the bucket") from exc

    def chunks():
        try:
            yield from obj.stream(64 * 1024)
        finally:
            obj.close()
            obj.release_conn()

    return StreamingResponse(
        chunks(),
        media_type=served_media_type(where["content_type"]),
        headers={**SERVED_IMAGE_HEADERS, "Cache-Control": "private, max-age=3600"},
    )


@router.get(
    "/images/{image_id}/gradcam/{model}",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}},
            "description": "the model's Grad-CAM heatmap for the class it predicted, over the image (224 px PNG)",
        },
        **responses(401, 404, 422, 503),
    },
)
def gradcam(
    image_id: ImageId, model: Annotated[ModelName, Path(description="one of the three models")], svc: Svc, _: Reader
):
    """Where `model` looked: Grad-CAM over the image for the class it predicted, from the
    weights of the version that answered (its stride-16 layer: see X-Layer). Rendered on
    first request (about a second; the first after a restart also loads the worker),
    then kept. X-Model-Version, X-Predicted-Class and X-Render-Ms (absent when kept) say more."""
    try:
        heat = svc.explainer.heatmap(str(image_id), model)
    except NoAnswer as exc:
        raise ApiError(404, "no_answer", str(exc)) from exc
    except ImageGone as exc:
        raise ApiError(404, "image_gone", str(exc)) from exc
    except ValueError as exc:  # the bytes do not decode (a quarantined object), or no layer for the model
        raise ApiError(422, "not_explainable", str(exc)) from exc
    except Unavailable as exc:
        raise ApiError(503, "explainer_unavailable", str(exc)) from exc
    headers = {
        "X-Model-Version": heat.version,
        "X-Predicted-Class": heat.label,
        "X-Layer": LAYER_NAMES[model],
        "Cache-Control": "private, max-age=300",
    }
    if heat.render_ms is not None:
        headers["X-Render-Ms"] = f"{heat.render_ms:.0f}"
    return Response(heat.png, media_type="image/png", headers=headers)


@router.put("/images/{image_id}/label", response_model=LabelReply, responses=responses(400, 401, 403, 404, 422))
def label_image(image_id: ImageId, request: LabelRequest, svc: Svc, principal: Labelling):
    """Set an image's true class (the review queue's answer). Its comparison's
    correctness and the models' accuracy windows are recomputed."""
    known = set(svc.known_classes())
    try:
        result = svc.db.transaction(
            lambda cur: set_ground_truth(cur, str(image_id), request.label, known, who=principal.subject)
        )
    except UnknownImage as exc:
        raise _unknown(image_id) from exc
    except LabelRejected as exc:
        raise ApiError(400, "label_rejected", str(exc)) from exc
    return {"image_id": image_id, "label": request.label, "consensus_correct": (result or {}).get("consensus_correct")}


@router.get("/review", response_model=ReviewPage, responses=responses(400, 401, 422))
def review(
    svc: Svc,
    _: Reader,
    kind: Literal["disagreements", "quarantined"] = "disagreements",
    limit: Limit = 50,
    cursor: CursorParam = None,
):
    """What waits for a person: images the models disagree on, or objects ingest quarantined."""
    query = queries.review_queue if kind == "disagreements" else queries.quarantined
    rows, waiting = svc.read(query, limit, decode_cursor(cursor))
    return {
        "kind": kind,
        "waiting": waiting,
        "items": rows,
        "next_cursor": next_cursor(rows, limit, "uploaded_at", "image_id"),
    }
