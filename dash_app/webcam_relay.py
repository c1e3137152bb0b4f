"""The Webcam page's two routes on the dashboard's own server.

`POST /webcam/frame` takes one JPEG the browser captured and hands it to the upload
function, exactly as the Upload page does (one implementation of validation and
storage), as source `webcam`, with the dashboard's key. The browser never holds a
key, and the frame travels as raw bytes, not base64 through a Dash callback.
`GET /webcam/answers?ids=…` answers, for the frames still on screen, each model's
answer as it arrives and the consensus once all have answered.

Both are plain JSON so that the page's script (assets/webcam.js) can run at the
camera's pace without a Dash round trip per frame.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, jsonify, request

from triptych.db.images import mark_kept
from triptych.db.queries import answers_for
from triptych.ingress.upload_client import UploadUnavailable, upload_batch
from triptych.security.keys import client_key

from . import auth, data
from .components import AGREEMENT_STYLE, model_color, model_label

# A captured frame is a few tens of KB; anything past this is not a webcam frame.
MAX_FRAME_BYTES = 4 * 1024 * 1024
# The frames a page may ask about at once (it keeps a handful in flight).
MAX_IDS = 32
SESSION = re.compile(r"^[A-Za-z0-9-]{1,40}$")


def _error(message: str, status: int):
    return jsonify({"error": message}), status


def _frame_metadata(args) -> tuple[dict, str]:
    """The frame's client metadata and file name, from the page's query parameters."""
    session = args.get("session", "")
    if not SESSION.match(session):
        raise ValueError("`session` must be 1-40 letters, digits or dashes")
    try:
        seq = int(args.get("seq", ""))
    except ValueError:
        raise ValueError("`seq` must be the frame's number") from None
    snapshot = args.get("snapshot") == "1"
    return {"webcam_session": session, "frame": seq, "snapshot": snapshot}, f"webcam-{session}-{seq:06d}.jpg"


def model_legend() -> list[dict]:
    """The models the overlay draws, in order, with their names and colours."""
    return [{"name": m, "label": model_label(m), "color": model_color(m)} for m in data.model_names()]


def register_webcam_routes(server: Flask) -> None:
    @server.post("/webcam/frame")
    @auth.needs("labeller")
    def webcam_frame():
        frame = request.get_data(cache=False)
        if not frame:
            return _error("the body must be one JPEG or PNG frame", 400)
        if len(frame) > MAX_FRAME_BYTES:
            return _error(f"a frame is at most {MAX_FRAME_BYTES // 1024} KB", 413)
        try:
            metadata, filename = _frame_metadata(request.args)
            metadata["dashboard_user"] = auth.current().subject  # every frame names who sent it
        except ValueError as exc:
            return _error(str(exc), 400)
        label = request.args.get("label") or None
        if label is not None and label not in data.known_classes():
            return _error(f"{label!r} is not a class the models know", 400)
        settings = data.settings()
        try:
            reply = upload_batch(
                settings.upload_url,
                [(filename, frame)],
                [label],
                timeout=30,
                api_key=client_key(settings, "dashboard"),
                source="webcam",
                metadata=metadata,
            )
        except UploadUnavailable as exc:
            return _error(f"{exc}. Is the pipeline running? `triptych up` starts it.", 503)
        result = reply["results"][0]
        if result["status"] == "rejected":
            return _error(result["error"], 422)
        if metadata["snapshot"] and result["status"] == "duplicate":  # the same picture, sent earlier unmarked
            auth.write_as(
                "labeller", "webcam_snapshot", mark_kept, result["image_id"], "snapshot", image_id=result["image_id"]
            )
        elif metadata["snapshot"] or label:  # a frame worth keeping is attributed; the stream of frames is not
            data.audit(
                "dashboard_webcam_frame",
                f"{auth.current().subject}: webcam frame ({label or 'no label'})",
                auth.current().subject,
                image_id=result["image_id"],
            )
        return jsonify({"image_id": result["image_id"], "status": result["status"]}), 201

    @server.get("/webcam/answers")
    def webcam_answers():
        ids = [raw for raw in request.args.get("ids", "").split(",") if raw][:MAX_IDS]
        try:
            ids = [str(uuid.UUID(raw)) for raw in ids]
        except ValueError:
            return _error("`ids` must be image ids separated by commas", 400)
        found = data.read(answers_for, ids) if ids else {}
        out = {}
        for image_id, entry in found.items():
            comparison = entry["comparison"]
            answers = (comparison or {}).get("per_model") or entry["answers"]
            out[image_id] = {
                "status": entry["status"],
                "answers": {m: {"class": a["class"], "confidence": a["confidence"]} for m, a in answers.items()},
                "consensus": comparison
                and {
                    "class": comparison["consensus_class"],
                    "agreement": comparison["agreement_level"],
                    "words": AGREEMENT_STYLE.get(comparison["agreement_level"], ("", comparison["agreement_level"]))[1],
                },
            }
        return jsonify({"frames": out, "models": model_legend()})
