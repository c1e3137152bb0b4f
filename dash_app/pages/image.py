"""Image: one image and everything the pipeline knows of it: each model's top-5
with confidence, the time each stage took (fetch, decode, preprocess, inference),
model version, backend and batch size, correct or not when labelled, and the
consensus; previous/next in upload order. `/image` alone shows the newest image."""

from __future__ import annotations

import uuid

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html, no_update

from triptych.db.queries import image_detail
from triptych.explain.gradcam import LAYER_NAMES

from .. import data
from ..components import (
    agreement_badge,
    correctness,
    empty_state,
    figure,
    fmt,
    image_url,
    model_color,
    model_label,
    page_header,
    pct,
    when,
)

PATH = "/image"
PATH_TEMPLATE = "/image/<image_id>"
NAME = "Image"
TITLE = "Image"
STAGES = ("fetch_ms", "decode_ms", "preprocess_ms", "inference_ms")


def _newest_id(cur) -> str | None:
    cur.execute("SELECT image_id FROM images ORDER BY uploaded_at DESC, image_id DESC LIMIT 1")
    row = cur.fetchone()
    return str(row["image_id"]) if row else None


def layout(image_id: str | None = None, **_query):
    lookup = dbc.InputGroup(
        [
            dbc.Input(id="image-lookup", placeholder="image id", size="sm", debounce=True, style={"width": "22rem"}),
            dbc.Button("Open", id="image-lookup-go", size="sm", color="secondary"),
        ],
        size="sm",
        style={"width": "auto"},
    )
    return html.Div(
        [
            dcc.Location(id="image-nav", refresh="callback-nav"),
            html.Div(id="image-lookup-error"),
            render(image_id, lookup),
        ]
    )


def render(image_id: str | None, lookup=None):
    """The page body for one image id (or the newest image when None)."""
    if image_id is None:
        image_id = data.read(_newest_id)
        if image_id is None:
            return html.Div(
                [
                    page_header("Image", "One image, every answer.", lookup),
                    empty_state(
                        "No images yet.", "Upload one on the Upload page or start a stream; its details show here."
                    ),
                ]
            )
    try:
        image_id = str(uuid.UUID(image_id))
    except ValueError:
        return html.Div(
            [
                page_header("Image", "One image, every answer.", lookup),
                dbc.Alert(
                    f"“{image_id}” is not an image id (ids look like 3f2b8c1e-5d4a-4c1b-9e7f-0a1b2c3d4e5f).",
                    color="warning",
                    id="image-not-found",
                ),
            ]
        )
    detail = data.read(image_detail, image_id)
    if detail is None:
        return html.Div(
            [
                page_header("Image", "One image, every answer.", lookup),
                dbc.Alert(
                    f"No image with id {image_id}. It may have been cleared; "
                    "the History page lists the images there are.",
                    color="warning",
                    id="image-not-found",
                ),
            ]
        )
    image, comparison = detail["image"], detail["comparison"]
    nav = html.Div(
        [
            dbc.Button(
                "← older",
                href=f"/image/{detail['older_id']}",
                disabled=not detail["older_id"],
                size="sm",
                color="light",
                id="image-older",
            ),
            dbc.Button(
                "newer →",
                href=f"/image/{detail['newer_id']}",
                disabled=not detail["newer_id"],
                size="sm",
                color="light",
                id="image-newer",
            ),
            lookup,
        ],
        className="d-flex gap-2 align-items-center",
    )
    return html.Div(
        [
            page_header(image["filename"], f"image {image_id}", nav),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            html.A(
                                html.Img(src=image_url(image_id), className="full-image", alt=image["filename"]),
                                href=image_url(image_id),
                                target="_blank",
                            ),
                            _facts(image),
                        ],
                        lg=4,
                    ),
                    dbc.Col([_consensus(image, comparison), _models(detail["predictions"], comparison)], lg=8),
                ],
                className="g-4",
            ),
            _where_they_looked(image_id, image, detail["predictions"]),
        ],
        id="image-page",
    )


def _where_they_looked(image_id: str, image: dict, predictions: list[dict]):
    """Each champion's Grad-CAM side by side. The PNGs load on their own (rendered on
    first view by the explainer's worker, then kept), so the page never waits for them."""
    champions = {
        p["model_name"]: p for p in predictions if p.get("role") != "shadow" and p["model_name"] in LAYER_NAMES
    }
    if image["status"] == "quarantined" or not champions:
        return None
    order = [m for m in data.model_names() if m in champions]
    return html.Div(
        [
            html.H5("Where each model looked", className="mt-4 mb-1"),
            html.P(
                [
                    "Grad-CAM for the class each model predicted, from the weights of the version that answered: "
                    "red is what raised that class's score most. At 64 px the last layers see a 2×2 grid, so these "
                    "come from each network's stride-16 layer (4×4 at 64 px), and are coarse. "
                    "The first view of an image takes a second or two."
                ],
                className="text-muted small mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        html.Figure(
                            [
                                html.Img(
                                    src=f"/media/{image_id}/gradcam/{m}",
                                    className="gradcam",
                                    alt=f"{model_label(m)}'s Grad-CAM",
                                    id=f"image-gradcam-{m}",
                                ),
                                html.Figcaption(
                                    [
                                        html.Span(
                                            model_label(m), className="fw-semibold", style={"color": model_color(m)}
                                        ),
                                        f" v{champions[m]['model_version']} · {champions[m]['predicted_class']} · ",
                                        html.Code(LAYER_NAMES[m]),
                                    ],
                                    className="small mt-1",
                                ),
                            ],
                            className="mb-0",
                        ),
                        xs=12,
                        sm=4,
                        className="text-center",
                    )
                    for m in order
                ],
                className="g-3",
            ),
        ],
        id="image-gradcams",
    )


def _facts(image: dict) -> dbc.Table:
    rows = [
        ("source", image["source"]),
        ("uploaded", when(image["uploaded_at"])),
        ("true label", image["ground_truth_label"] or "unknown"),
        (
            "size",
            f"{image['width']}×{image['height']} {image['image_format'] or ''}, {image['size_bytes'] / 1024:.0f} KiB"
            if image["width"]
            else f"{image['size_bytes'] / 1024:.0f} KiB",
        ),
        ("status", image["status"] + (f": {image['quarantine_reason']}" if image["quarantine_reason"] else "")),
        ("object", f"{image['bucket']}/{image['object_key']}"),
    ]
    return dbc.Table(
        html.Tbody([html.Tr([html.Th(k), html.Td(v)]) for k, v in rows]), size="sm", className="facts mt-3"
    )


def _consensus(image: dict, comparison: dict | None) -> dbc.Card:
    if image["status"] == "quarantined":
        return dbc.Alert(
            f"Quarantined by ingest: {image['quarantine_reason']}. No model sees a quarantined object.", color="danger"
        )
    if comparison is None:
        return dbc.Alert("Not compared yet: waiting for every model's answer.", color="info")
    return dbc.Card(
        dbc.CardBody(
            html.Div(
                [
                    html.Div(
                        [
                            html.Div("consensus", className="stat-label"),
                            html.Div(
                                [comparison["consensus_class"], " ", correctness(comparison["consensus_correct"])],
                                className="stat-value",
                                id="image-consensus",
                            ),
                        ]
                    ),
                    html.Div(
                        [html.Div("agreement", className="stat-label"), agreement_badge(comparison["agreement_level"])]
                    ),
                    html.Div(
                        [
                            html.Div("fastest", className="stat-label"),
                            html.Div(model_label(comparison["fastest_model"])),
                        ]
                    ),
                    html.Div([html.Div("compared", className="stat-label"), html.Div(when(comparison["created_at"]))]),
                ],
                className="d-flex gap-5 flex-wrap",
            )
        ),
        className="mb-3",
    )


def _top5(prediction: dict) -> go.Figure:
    top = list(reversed(prediction["top_k"] or []))
    fig = go.Figure(
        go.Bar(
            x=[t["confidence"] for t in top],
            y=[t["label"] for t in top],
            orientation="h",
            marker_color=model_color(prediction["model_name"]),
            text=[f"{t['confidence']:.1%}" for t in top],
            textposition="auto",
        )
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return figure(fig, height=190, margin=dict(l=90, r=10, t=10, b=25), showlegend=False)


def _models(predictions: list[dict], comparison: dict | None):
    if not predictions:
        return empty_state("No model has answered yet.", "Answers appear as the inference functions classify it.")
    per_model = (comparison or {}).get("per_model") or {}
    cards = []
    order = {m: k for k, m in enumerate(data.model_names())}
    for p in sorted(predictions, key=lambda p: (order.get(p["model_name"], len(order)), p["model_name"])):
        shadow = p.get("role") == "shadow"  # a challenger's answer: shown, never counted
        shown = ((comparison or {}).get("shadow") or {} if shadow else per_model).get(p["model_name"], {})
        is_compared = shown.get("version") == p["model_version"]
        timings = html.Div(
            [
                html.Div(
                    [html.Span(s.replace("_ms", ""), className="stat-label"), html.Span(fmt(p[s], "{:.1f} ms"))],
                    className="timing",
                )
                for s in STAGES
            ],
            className="small timings",
        )
        cards.append(
            dbc.Col(
                dbc.Card(
                    [
                        dbc.CardHeader(
                            html.Div(
                                [
                                    html.Span(
                                        model_label(p["model_name"]),
                                        className="fw-semibold",
                                        style={"color": model_color(p["model_name"])},
                                    ),
                                    html.Span(
                                        f"v{p['model_version']}"
                                        + (
                                            " · in shadow, not counted"
                                            if shadow
                                            else ""
                                            if is_compared or not per_model
                                            else " (not compared)"
                                        ),
                                        className="text-muted small",
                                    ),
                                ],
                                className="d-flex justify-content-between",
                            )
                        ),
                        dbc.CardBody(
                            [
                                html.Div(
                                    [
                                        html.Span(p["predicted_class"], className="fs-5 fw-semibold"),
                                        " ",
                                        html.Span(pct(p["confidence"]), className="text-muted"),
                                        " ",
                                        correctness(shown.get("correct") if is_compared else None),
                                    ]
                                ),
                                dcc.Graph(figure=_top5(p), config={"displayModeBar": False}),
                                timings,
                                html.Div(
                                    f"total {fmt(p['total_ms'], '{:.1f} ms')} · batch of {p['batch_size'] or '?'} · "
                                    f"{p['backend'] or '?'} · {p['worker_id'] or ''}",
                                    className="small text-muted",
                                ),
                            ]
                        ),
                    ],
                    className="model-card shadow-answer" if shadow else "model-card",
                    id=f"image-model-{p['model_name']}" + ("-shadow" if shadow else ""),
                ),
                md=6,
                xl=4,
            )
        )
    return dbc.Row(cards, className="g-3")


@callback(
    Output("image-nav", "href"),
    Output("image-lookup-error", "children"),
    Input("image-lookup-go", "n_clicks"),
    Input("image-lookup", "n_submit"),
    State("image-lookup", "value"),
    prevent_initial_call=True,
)
def open_image(_clicks, _submit, value):
    value = (value or "").strip()
    if not value:
        return no_update, no_update
    try:
        return f"/image/{uuid.UUID(value)}", None
    except ValueError:
        return no_update, dbc.Alert(
            [
                "“",
                value,
                "” is not an image id. Search by file name on the ",
                html.A("History", href="/history"),
                " page.",
            ],
            color="warning",
            className="py-2",
        )
