"""The query API: REST and GraphQL over Triptych's results, uploads, labels and models.

    triptych api              # foreground, on TRIPTYCH_API_PORT (8000)
    open http://127.0.0.1:8000/docs

Reads are open on a laptop (TRIPTYCH_READ_REQUIRES_KEY=true closes them); every
write needs an API key or JWT with the right scope (see triptych.security). Every
request body is bounded (TRIPTYCH_MAX_REQUEST_BYTES), browsers may call it only
from TRIPTYCH_CORS_ORIGINS, and every error is JSON with a stable `code`.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import Counter, Histogram

from ..config import Settings, get_settings
from ..db.connection import Database
from ..explain.explainer import Explainer
from ..ingress.upload import Uploader
from ..models.classes import KnownClasses
from ..security import Guard
from ..security.network import reads_need_key
from ..storage import minio_client
from . import errors
from .deps import Services
from .graphql import graphql_router
from .limits import BodyLimit
from .routes import alerts, lifecycle, meta, results, stats, uploads

REQUESTS = Counter("triptych_api_requests_total", "API requests", ["method", "route", "status"])
LATENCY = Histogram(
    "triptych_api_request_seconds",
    "API request time",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

DESCRIPTION = """Three image classifiers (ResNet50, MobileNetV2, EfficientNet-B0) answer every image;
this API reads their answers and comparisons, takes uploads and labels, and manages the models.

**Auth.** Reads are open unless the server requires a key. Writes need an API key
(`Authorization: Bearer tpk_...` or `X-API-Key: tpk_...`) or a JWT signed with the server's
secret, with a scope: `upload` (uploads), `label` (labels), `admin` (retraining, clearing; implies all).
Create keys with `triptych keys create NAME --scope upload`.

**Errors** are JSON: `{"code": "unknown_image", "error": "no image ..."}`; `code` is stable.

**Lists** are newest first; pass a page's `next_cursor` as `cursor` for the next page.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = Database(settings)
    s3 = minio_client(settings)
    guard = Guard(settings, db)
    app = FastAPI(
        title="Triptych query API",
        version="1",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,  # served below from local files: the docs work offline
        # Any request may be malformed, too large, or invalid for its schema.
        responses=errors.responses(400, 413, 422),
        openapi_tags=[{"name": n} for n in ("results", "upload", "stats", "models", "admin", "meta")],
    )
    app.state.services = Services(
        settings,
        db,
        s3,
        guard,
        Uploader(settings, s3, db, guard),
        KnownClasses(settings, db),
        Explainer(settings, lambda query, *a: db.transaction(lambda cur: query(cur, *a)), s3),
    )
    errors.install(app)
    _serve_docs(app)
    for router in (
        meta.router,
        uploads.router,
        results.router,
        stats.router,
        lifecycle.router,
        lifecycle.admin_router,
        alerts.router,
    ):
        app.include_router(router)
    app.include_router(graphql_router(), prefix="/graphql", tags=["graphql"], include_in_schema=False)
    # Added last = outermost: the body limit applies before anything reads a byte.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")  # the template, so ids don't explode label sets
        LATENCY.labels(request.method, template).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, template, str(response.status_code)).inc()
        return response

    return app


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI 5 (it reads OpenAPI 3.1) at /docs from the swagger-ui-py package's
    files, not a CDN: the page works on a laptop without network, like the dashboard."""
    from pathlib import Path

    import swagger_ui
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    assets = Path(swagger_ui.__file__).parent / "static"
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Triptych query API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def serve(settings: Settings | None = None, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    settings = settings or get_settings()
    host = host or settings.bind_host
    settings = settings.model_copy(update={"read_requires_key": reads_need_key(settings.read_requires_key, host)})
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port or settings.api_port,
        log_level="warning",
        proxy_headers=False,
        timeout_keep_alive=5,
        limit_concurrency=256,
    )
