"""Image bytes for the pages: `/media/<id>/thumb` (a small JPEG made once per image
and kept on disk), `/media/<id>/image` (the original, streamed from MinIO) and
`/media/<id>/gradcam/<model>` (where that model looked, see triptych.explain).
List views only ever ask for thumbnails."""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from pathlib import Path

from flask import Flask, Response, abort, send_file
from PIL import Image

from triptych.db.queries import image_location
from triptych.explain.explainer import Explainer, ImageGone, NoAnswer, Unavailable
from triptych.explain.gradcam import TARGET_LAYERS
from triptych.imaging import SERVED_IMAGE_HEADERS, served_media_type
from triptych.storage import minio_client, read_object

from . import data

# Shown for an object that is not a usable image (quarantined, or gone from the bucket).
PLACEHOLDER_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160" viewBox="0 0 160 160">
<rect width="160" height="160" fill="#f3f4f6"/><text x="80" y="78" font-family="sans-serif" font-size="13"
fill="#6b7280" text-anchor="middle">no preview</text><text x="80" y="98" font-family="sans-serif" font-size="11"
fill="#9ca3af" text-anchor="middle">not an image</text></svg>"""

# Thumbnails and originals never change for an image id (an id is a content version).
IMMUTABLE = 31_536_000


def thumbnails_dir() -> Path:
    path = data.settings().data_dir / "dashboard" / "thumbnails"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _image_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        abort(404)


def _placeholder() -> Response:
    return Response(PLACEHOLDER_SVG, mimetype="image/svg+xml", headers={"Cache-Control": "max-age=60"})


def make_thumbnail(raw: bytes, size: int) -> bytes:
    """A JPEG no larger than size x size; JPEGs are decoded at reduced scale (draft)."""
    Image.MAX_IMAGE_PIXELS = data.settings().max_image_pixels
    with Image.open(io.BytesIO(raw)) as opened:
        opened.draft("RGB", (size, size))
        img = opened.convert("RGB")
        img.thumbnail((size, size))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=85)
        return out.getvalue()


_explainer: Explainer | None = None


def explainer() -> Explainer:
    """The dashboard's one explainer (its worker process holds torch; this process never does)."""
    global _explainer
    if _explainer is None:
        _explainer = Explainer(data.settings(), data.read, minio_client(data.settings()))
    return _explainer


def _message_svg(first: str, second: str) -> Response:
    svg = PLACEHOLDER_SVG.replace("no preview", first).replace("not an image", second)
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


def register_routes(server: Flask) -> None:
    @server.route("/health")
    def health():
        return {"status": "ok"}

    @server.route("/media/<raw_id>/thumb")
    def thumbnail(raw_id: str):
        image_id = _image_id(raw_id)
        path = thumbnails_dir() / f"{image_id}.jpg"
        if not path.exists():
            where = data.read(image_location, image_id)
            if where is None:
                abort(404)
            settings = data.settings()
            try:
                raw = read_object(
                    minio_client(settings),
                    where["bucket"],
                    where["object_key"],
                    where["object_version"] or None,
                    limit=settings.max_image_bytes,
                )
                thumb = make_thumbnail(raw, settings.thumbnail_px)
            except Exception:  # noqa: BLE001 - a quarantined or vanished object gets the placeholder
                return _placeholder()
            # Written atomically: two requests for one new thumbnail never serve half a file.
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(thumb)
            os.replace(tmp, path)
        return send_file(path, mimetype="image/jpeg", max_age=IMMUTABLE)

    @server.route("/media/<raw_id>/gradcam/<model>")
    def gradcam(raw_id: str, model: str):
        image_id = _image_id(raw_id)
        if model not in TARGET_LAYERS:
            abort(404)
        try:
            heat = explainer().heatmap(image_id, model)
        except NoAnswer:
            return _message_svg("no answer yet", "from this model")
        except ImageGone:
            return _message_svg("image gone", "deleted from the bucket")
        except ValueError:
            return _message_svg("no heatmap", "not an image")
        except Unavailable:
            return _message_svg("heatmap failed", "reload to retry")
        headers = {"Cache-Control": "private, max-age=300", "X-Model-Version": heat.version}
        if heat.render_ms is not None:
            headers["X-Render-Ms"] = f"{heat.render_ms:.0f}"
        return Response(heat.png, mimetype="image/png", headers=headers)

    @server.route("/media/<raw_id>/image")
    def original(raw_id: str):
        image_id = _image_id(raw_id)
        where = data.read(image_location, image_id)
        if where is None:
            abort(404)
        client = minio_client(data.settings())
        try:
            obj = client.get_object(where["bucket"], where["object_key"], version_id=where["object_version"] or None)
        except Exception:  # noqa: BLE001
            return _placeholder()

        def stream():
            try:
                yield from obj.stream(64 * 1024)
            finally:
                obj.close()
                obj.release_conn()

        return Response(
            stream(),
            mimetype=served_media_type(where["content_type"]),
            headers={"Cache-Control": f"max-age={IMMUTABLE}, immutable", **SERVED_IMAGE_HEADERS},
        )
