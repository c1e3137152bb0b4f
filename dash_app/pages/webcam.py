"""Webcam: the planning document's "Live Stream" page. The browser's camera, live,
with the three models' answers drawn over the video as they arrive.

The page's script (assets/webcam.js) captures frames with getUserMedia at the
chosen rate and posts each one to the dashboard (dash_app/webcam_relay.py), which
hands it to the upload function as source `webcam` with the dashboard's key. At
most one frame is in flight and two await answers: when the pipeline lags, the
newest frame is sent and the stale ones are dropped and counted, never queued.
Nothing here is a Dash callback, so the video never waits for the server."""

from __future__ import annotations

import json

import dash_bootstrap_components as dbc
from dash import dcc, html

from .. import auth, data
from ..components import code, page_header
from ..webcam_relay import model_legend

PATH = "/webcam"
NAME = "Webcam"
TITLE = "Webcam"
RATES = (1, 5)  # frames a second the page may send
DEFAULT_RATE = 2


def _controls() -> dbc.Card:
    classes = sorted(data.known_classes())
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.Button("Start camera", id="webcam-toggle", className="btn btn-primary", type="button"),
                        html.Button(
                            "Snapshot",
                            id="webcam-snapshot",
                            className="btn btn-outline-secondary",
                            type="button",
                            disabled=True,
                            title="Keep this frame: it is listed below with its answers",
                        ),
                    ],
                    className="d-flex gap-2 mb-3",
                ),
                dbc.Label(
                    ["Frames a second: ", html.Strong(str(DEFAULT_RATE), id="webcam-rate-value")],
                    html_for="webcam-rate",
                ),
                dcc.Input(
                    id="webcam-rate",
                    type="range",
                    min=RATES[0],
                    max=RATES[1],
                    step=1,
                    value=DEFAULT_RATE,
                    className="form-range",
                ),
                dbc.Label("What is in front of the camera? (optional)", html_for="webcam-label", className="mt-2"),
                html.Select(
                    [html.Option("unknown", value=""), *[html.Option(c, value=c) for c in classes]],
                    id="webcam-label",
                    className="form-select",
                ),
                html.Div(
                    "A label goes with every frame sent while it is set: the models are scored on those frames, "
                    "and the labels feed the next retraining, like the Review page's.",
                    className="form-text",
                ),
                html.Hr(),
                html.Div(id="webcam-stats", className="webcam-stats small text-muted", children="Not started."),
            ]
        ),
        className="stat-card",
    )


def layout(**_query):
    return html.Div(
        [
            page_header("Webcam", "Hold something up to the camera and watch the three models argue about it."),
            html.Div(id="webcam-config", **{"data-models": json.dumps(model_legend())}, hidden=True),
            html.Div(id="webcam-alert"),
            None
            if auth.may("labeller")
            else dbc.Alert(
                "You are signed in as a viewer: sending frames needs the labeller role.",
                color="secondary",
                id="webcam-role",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        html.Div(
                            [
                                html.Video(id="webcam-video", autoPlay=True, muted=True),
                                html.Canvas(id="webcam-overlay"),
                                html.Div(
                                    id="webcam-placeholder",
                                    className="webcam-placeholder",
                                    children=[
                                        html.H5("Hold an object up to the camera"),
                                        html.P(
                                            "Press Start camera. Frames go through the same pipeline as uploads, as source "
                                            "“webcam”: each model's answer appears over the video in its colour, then the "
                                            "consensus."
                                        ),
                                        html.P(
                                            ["Without a browser camera: ", code("triptych stream webcam")],
                                            className="small",
                                        ),
                                    ],
                                ),
                            ],
                            className="webcam-stage",
                        ),
                        lg=8,
                    ),
                    dbc.Col(_controls(), lg=4),
                ],
                className="g-3 mb-3",
            ),
            html.H5("Snapshots", className="mt-2"),
            html.Div(
                id="webcam-snapshots",
                className="webcam-snapshots",
                children=html.Div(
                    "Frames kept with Snapshot appear here, each linked to its Image page.",
                    className="text-muted small",
                ),
            ),
        ]
    )
