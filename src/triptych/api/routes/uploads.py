"""POST /upload and /upload/batch: the upload function's own code (parse, validate,
store, charge the key's rate), so both doors accept and refuse exactly alike.
The key is checked before the body is parsed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...ingress.upload import BadRequest, parse_multipart
from ..deps import Svc, Uploading
from ..errors import ApiError, responses
from ..schemas import BatchResult, UploadResult

router = APIRouter(tags=["upload"])


def _multipart(files_field: str, many: bool) -> dict:
    file_schema = {"type": "string", "format": "binary"}
    properties = {
        files_field: {"type": "array", "items": file_schema} if many else file_schema,
        "label": {"type": "string", "maxLength": 100, "description": "the true class, when known"},
        "source": {"type": "string", "default": "upload"},
        "metadata": {"type": "string", "description": "a JSON object kept with the image"},
    }
    if many:
        properties["labels"] = {"type": "string", "description": "a JSON list: one label (or null) per file"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": [files_field], "properties": properties}
                }
            },
        }
    }


async def _accept(request: Request, svc: Svc, principal, route: str) -> JSONResponse:
    body = await request.body()  # bounded by the app's body limit
    try:
        form = parse_multipart(body, request.headers.get("content-type"))
    except BadRequest as exc:
        raise ApiError(exc.http_status, exc.code, str(exc)) from exc
    status, reply, headers = await run_in_threadpool(svc.uploader.accept, route, form, principal)
    return JSONResponse(reply, status_code=status, headers=headers)


@router.post(
    "/upload",
    status_code=201,
    response_model=UploadResult,
    openapi_extra=_multipart("file", False),
    responses={
        200: {"model": UploadResult, "description": "the same bytes were uploaded before"},
        **responses(400, 401, 403, 413, 415, 429),
    },
)
async def upload(request: Request, svc: Svc, principal: Uploading):
    """Upload one image (multipart field `file`). 201: stored, and the pipeline has it;
    200: the same bytes were seen before (that image's id); 4xx: refused, with the reason."""
    return await _accept(request, svc, principal, "/upload")


@router.post(
    "/upload/batch",
    status_code=207,
    response_model=BatchResult,
    openapi_extra=_multipart("files", True),
    responses=responses(400, 401, 403, 413, 415, 429),
)
async def upload_batch(request: Request, svc: Svc, principal: Uploading):
    """Upload many images (multipart field `files`, repeated). 207: one result per
    file; a refused file never stops the others."""
    return await _accept(request, svc, principal, "/upload/batch")
