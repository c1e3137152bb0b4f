"""Upload: drop one or many images, optionally with their true label. The files go
through the upload function over HTTP, exactly as any client's would (one
implementation of validation and storage); each image's three answers and the
consensus appear as they arrive, and a refused file shows the function's reason."""

from __future__ import annotations

import base64
import time

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from triptych.db.queries import answers_for
from triptych.ingress.upload_client import UploadUnavailable, upload_batch
from triptych.security.keys import client_key
from triptych.security.roles import Forbidden

from .. import auth, data
from ..components import (
    agreement_badge,
    answer_chip,
    code,
    correctness,
    empty_state,
    page_header,
    thumb_url,
)

PATH = "/upload"
NAME = "Upload"
TITLE = "Upload"
MAX_FILES = 50
WAIT_S = 120  # after this, an image still without answers is reported as late


def layout(**_query):
    classes = sorted(data.known_classes())
    return html.Div(
        [
            page_header("Upload", "Send images through the pipeline and watch the three models answer."),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dcc.Upload(
                                id="upload-drop",
                                multiple=True,
                                children=html.Div(
                                    [
                                        html.Div("⇪", className="drop-icon"),
                                        html.Div([html.Strong("Drop images here"), " or click to choose"]),
                                        html.Div(
                                            f"JPEG, PNG, WebP or BMP · up to {MAX_FILES} at once",
                                            className="text-muted small",
                                        ),
                                    ]
                                ),
                                className="dropzone",
                                disabled=not auth.may("labeller"),
                            ),
                        ],
                        md=8,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("True label (optional)", html_for="upload-label"),
                            dcc.Dropdown(id="upload-label", options=classes, placeholder="unknown", clearable=True),
                            html.Div(
                                "Known labels let the dashboard score each model on these images.",
                                className="form-text",
                            ),
                        ],
                        md=4,
                    ),
                ],
                className="mb-3 g-3",
            ),
            html.Div(
                id="upload-message",
                children=None
                if auth.may("labeller")
                else dbc.Alert(
                    "You are signed in as a viewer: uploads need the labeller role.",
                    color="secondary",
                    id="upload-role",
                ),
            ),
            dcc.Store(id="upload-batch"),
            dcc.Interval(id="upload-poll", interval=1000, disabled=True),
            html.Div(
                id="upload-results",
                children=empty_state(
                    "No uploads in this session yet.",
                    "Dropped files are validated by the upload function, stored in the images bucket, and classified by "
                    "all three models; their answers appear here within seconds.",
                    html.Span(["From a terminal: ", code("triptych upload photo.jpg --label cat")]),
                ),
            ),
        ]
    )


def _decode(contents: str) -> bytes:
    _header, _, b64 = contents.partition(",")
    return base64.b64decode(b64)


@auth.write_callback(
    "labeller",
    Output("upload-batch", "data"),
    Output("upload-message", "children"),
    Output("upload-poll", "disabled"),
    Input("upload-drop", "contents"),
    State("upload-drop", "filename"),
    State("upload-label", "value"),
    prevent_initial_call=True,
)
def send(contents, filenames, label):
    if not contents:
        return no_update, no_update, no_update
    if len(contents) > MAX_FILES:
        return no_update, dbc.Alert(f"{len(contents)} files: send at most {MAX_FILES} at once.", color="warning"), True
    try:
        visitor = auth.require("labeller", "upload")
    except Forbidden as exc:
        return no_update, dbc.Alert(str(exc), color="danger", id="upload-error"), True
    files = [(name or "upload", _decode(c)) for name, c in zip(filenames, contents)]
    try:
        reply = upload_batch(
            data.settings().upload_url,
            files,
            [label or None] * len(files),
            api_key=client_key(data.settings(), "dashboard"),
            metadata={"dashboard_user": visitor.subject},
        )
    except UploadUnavailable as exc:
        return (
            no_update,
            dbc.Alert(
                [
                    html.Strong("Nothing was uploaded. "),
                    str(exc),
                    html.Div(["Is the pipeline running? ", code("triptych up"), " starts it."]),
                ],
                color="danger",
                id="upload-error",
            ),
            True,
        )
    entries = [{**r, "sent_at": time.time()} for r in reply["results"]]
    data.audit(
        "dashboard_upload",
        f"{visitor.subject} ({visitor.role}): upload of {len(files)} file(s)",
        visitor.subject,
        {"images": [e.get("image_id") for e in entries], "how": visitor.how},
    )
    summary = f"{reply['stored']} stored, {reply['duplicates']} already known, {reply['rejected']} refused"
    color = "warning" if reply["rejected"] else "success"
    waiting = any(e["status"] != "rejected" for e in entries)
    return entries, dbc.Alert(summary, color=color, id="upload-summary", className="py-2"), not waiting


def _row(entry: dict, found: dict | None, models: list[str]) -> dbc.Card:
    if entry["status"] == "rejected":
        return dbc.Card(
            dbc.CardBody(
                [
                    html.Div([html.Strong(entry["filename"]), dbc.Badge("refused", color="danger", className="ms-2")]),
                    html.Div(entry["error"], className="text-danger small upload-reason"),
                ]
            ),
            className="upload-card refused",
        )
    image_id = entry["image_id"]
    found = found or {"answers": {}, "comparison": None, "status": "registered"}
    comparison = found["comparison"]
    if found["status"] == "quarantined":
        state = html.Div(f"quarantined by ingest: {found['quarantine_reason']}", className="text-danger small")
    elif comparison:
        state = html.Div(
            [
                "consensus ",
                html.Strong(comparison["consensus_class"]),
                " ",
                correctness(comparison["consensus_correct"]),
                " ",
                agreement_badge(comparison["agreement_level"]),
            ],
            className="upload-consensus",
        )
    elif time.time() - entry["sent_at"] > WAIT_S:
        state = html.Div(
            [
                "no answer yet after two minutes: are the inference functions running? ",
                code("triptych functions status"),
            ],
            className="text-warning small",
        )
    else:
        state = html.Div(
            [dbc.Spinner(size="sm"), f" waiting for {len(models) - len(found['answers'])} model(s)…"],
            className="text-muted small",
        )
    answers = (comparison or {}).get("per_model") or found["answers"]
    consensus = comparison["consensus_class"] if comparison else None
    return dbc.Card(
        dbc.CardBody(
            html.Div(
                [
                    html.A(html.Img(src=thumb_url(image_id), className="thumb"), href=f"/image/{image_id}"),
                    html.Div(
                        [
                            html.Div(
                                [
                                    html.A(html.Strong(entry["filename"]), href=f"/image/{image_id}"),
                                    dbc.Badge(
                                        "already known" if entry["status"] == "duplicate" else "stored",
                                        color="secondary" if entry["status"] == "duplicate" else "primary",
                                        className="ms-2",
                                    ),
                                ]
                            ),
                            html.Div([answer_chip(m, answers.get(m), consensus) for m in models], className="chips"),
                            state,
                        ],
                        className="flex-grow-1",
                    ),
                ],
                className="d-flex gap-3",
            )
        ),
        className="upload-card",
        id={"type": "upload-row", "id": image_id},
    )


@callback(
    Output("upload-results", "children"),
    Output("upload-poll", "disabled", allow_duplicate=True),
    Input("upload-batch", "data"),
    Input("upload-poll", "n_intervals"),
    prevent_initial_call=True,
)
def show(entries, _n):
    if not entries:
        return no_update, True
    models = data.model_names()
    ids = [e["image_id"] for e in entries if e["status"] != "rejected"]
    found = data.read(answers_for, ids)
    rows = [_row(e, found.get(e.get("image_id")), models) for e in entries]
    settled = all(
        e["status"] == "rejected"
        or time.time() - e["sent_at"] > WAIT_S
        or (f := found.get(e["image_id"]))
        and (f["comparison"] or f["status"] == "quarantined")
        for e in entries
    )
    return html.Div(rows, className="upload-list"), settled
