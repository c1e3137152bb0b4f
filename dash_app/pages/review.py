"""Review: the queue of images the models disagree on, where a person sets (or
corrects) the true label, and the objects ingest quarantined, with their reason.
A saved label is stored on the image, its comparison's correctness is recomputed,
and it leaves the queue; retraining uses it."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, html

from triptych.aggregation.labels import LabelRejected, set_ground_truth
from triptych.db.queries import quarantined, review_queue
from triptych.security.roles import Forbidden

from .. import auth, data
from ..components import answer_chip, empty_state, page_header, thumb_url, when

PATH = "/review"
NAME = "Review"
TITLE = "Review queue"
SHOWN = 30


def layout(**_query):
    return html.Div(
        [
            page_header(
                "Review",
                "Where the models disagree, a person decides. Labels feed the next retraining.",
                dbc.Button("Refresh", id="review-refresh", size="sm", color="primary", outline=True),
            ),
            html.Datalist(id="review-classes", children=[html.Option(value=c) for c in sorted(data.known_classes())]),
            dbc.Tabs(
                [
                    dbc.Tab(
                        html.Div(id="review-queue", className="pt-3"),
                        label="Disagreements",
                        tab_id="disagreements",
                        id="review-tab-disagreements",
                    ),
                    dbc.Tab(
                        html.Div(id="review-quarantine", className="pt-3"),
                        label="Quarantined",
                        tab_id="quarantined",
                        id="review-tab-quarantined",
                    ),
                ],
                id="review-tabs",
                active_tab="disagreements",
            ),
        ]
    )


def _queue_item(row: dict, models: list[str]) -> dbc.Card:
    may_label = auth.may("labeller")
    image_id = str(row["image_id"])
    per = row["per_model"] or {}
    return dbc.Card(
        dbc.CardBody(
            html.Div(
                [
                    html.A(html.Img(src=thumb_url(image_id), className="thumb"), href=f"/image/{image_id}"),
                    html.Div(
                        [
                            html.Div(
                                [
                                    html.A(html.Strong(row["filename"]), href=f"/image/{image_id}"),
                                    html.Span(
                                        f" · {row['source']} · {when(row['uploaded_at'])}", className="text-muted small"
                                    ),
                                ]
                            ),
                            html.Div(
                                [answer_chip(m, per.get(m), row["consensus_class"]) for m in models], className="chips"
                            ),
                            html.Div(
                                f"current label: {row['ground_truth_label']}"
                                if row["ground_truth_label"]
                                else "no label yet",
                                className="small text-muted",
                            ),
                        ],
                        className="flex-grow-1",
                    ),
                    html.Div(
                        [
                            dbc.InputGroup(
                                [
                                    dbc.Input(
                                        id={"type": "review-label", "id": image_id},
                                        placeholder="true label",
                                        list="review-classes",
                                        size="sm",
                                        value=row["consensus_class"] if row["agreement_level"] == "majority" else None,
                                    ),
                                    dbc.Button(
                                        "Save",
                                        id={"type": "review-save", "id": image_id},
                                        size="sm",
                                        color="primary",
                                        disabled=not may_label,
                                        title=None if may_label else "labelling needs the labeller role",
                                    ),
                                ],
                                size="sm",
                            ),
                            html.Div(id={"type": "review-status", "id": image_id}, className="small mt-1"),
                        ],
                        style={"width": "16rem"},
                    ),
                ],
                className="d-flex gap-3 align-items-start",
            )
        ),
        className="review-card",
        id=f"review-item-{image_id}",
    )


@callback(
    Output("review-queue", "children"),
    Output("review-quarantine", "children"),
    Output("review-tab-disagreements", "label"),
    Output("review-tab-quarantined", "label"),
    Input("review-refresh", "n_clicks"),
)
def load(_n):
    rows, waiting = data.read(review_queue, SHOWN)
    bad, bad_total = data.read(quarantined, SHOWN)
    models = data.model_names()
    if rows:
        queue = html.Div(
            [
                html.P(
                    f"Showing the newest {len(rows)} of {waiting:,} waiting. A majority answer is "
                    "pre-filled; correct it or type the right class.",
                    className="text-muted small",
                ),
                *[_queue_item(r, models) for r in rows],
            ]
        )
    else:
        queue = empty_state(
            "Nothing to review.",
            "When the three models disagree on an image, it waits here for a person to set its true label.",
            id="review-empty",
        )
    if bad:
        quarantine = dbc.Table(
            [
                html.Thead(html.Tr([html.Th(h) for h in ("when", "file", "source", "size", "why it was refused")])),
                html.Tbody(
                    [
                        html.Tr(
                            [
                                html.Td(when(r["uploaded_at"])),
                                html.Td(html.A(r["filename"], href=f"/image/{r['image_id']}")),
                                html.Td(r["source"]),
                                html.Td(f"{r['size_bytes'] / 1024:.0f} KiB"),
                                html.Td(r["quarantine_reason"], className="text-danger"),
                            ]
                        )
                        for r in bad
                    ]
                ),
            ],
            size="sm",
            hover=True,
            id="review-quarantine-table",
        )
    else:
        quarantine = empty_state(
            "Nothing quarantined.",
            "Objects that are not usable images (corrupt, too large, "
            "not an image) are listed here with the reason ingest refused them.",
        )
    return (queue, quarantine, f"Disagreements ({waiting:,})", f"Quarantined ({bad_total:,})")


@auth.write_callback(
    "labeller",
    Output({"type": "review-status", "id": MATCH}, "children"),
    Input({"type": "review-save", "id": MATCH}, "n_clicks"),
    Input({"type": "review-label", "id": MATCH}, "n_submit"),
    State({"type": "review-label", "id": MATCH}, "value"),
    State({"type": "review-save", "id": MATCH}, "id"),
    prevent_initial_call=True,
)
def save(_clicks, _submit, label, button):
    try:
        result = auth.write_as(
            "labeller",
            "label",
            set_ground_truth,
            button["id"],
            label or "",
            set(data.known_classes()),
            image_id=button["id"],
        )
    except (LabelRejected, Forbidden) as exc:
        return html.Span(str(exc), className="text-danger review-error")
    right = [m for m, ok in result["per_model_correct"].items() if ok]
    return html.Span(
        [f"saved “{result['label']}”. ", f"Right: {', '.join(right)}." if right else "No model had it right."],
        className="text-success review-saved",
    )
