"""Models: each model's champion and challenger (in shadow), their versions, data
set and held-out accuracy (from the MLflow registry), the pipeline's runs with
their steps as they go (`pipeline_runs`), and the gate's decisions and labels
that shaped them (from `system_events`), with a link to the MLflow UI."""

from __future__ import annotations

from datetime import UTC, datetime

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, Input, Output, callback, ctx, dcc, html

from triptych.db.queries import lifecycle_events
from triptych.db.runs import recent_runs, request_cancel
from triptych.lifecycle.steps import describe_step
from triptych.security.roles import Forbidden

from .. import auth, data
from ..components import (
    code,
    empty_state,
    figure,
    model_color,
    model_label,
    page_header,
    pct,
    when,
)

PATH = "/models"
NAME = "Models"
TITLE = "Models"

EVENT_WORDS = {
    "model_promoted": ("promoted", "success"),
    "model_challenger": ("into shadow", "info"),
    "model_rejected": ("rejected", "secondary"),
    "model_registered": ("registered", "light"),
    "model_not_promoted": ("kept as challenger", "secondary"),
    "training_started": ("training started", "info"),
    "training_epoch": ("epoch", "light"),
    "label_set": ("label set", "primary"),
    "alert": ("alert", "danger"),
}
STATE_COLORS = {
    "queued": "secondary",
    "running": "info",
    "succeeded": "success",
    "failed": "danger",
    "skipped": "light",
    "cancelled": "warning",
}
WORKFLOW_WORDS = {"retrain": "Retraining", "data-quality": "Data quality", "metrics": "Hourly metrics"}


def layout(**_query):
    mlflow = data.settings().mlflow_url
    return html.Div(
        [
            page_header(
                "Models",
                "Champions serve the stream; a challenger answers in shadow until live labels decide.",
                dbc.Button(
                    "Open MLflow ↗",
                    href=f"{mlflow}/#/models",
                    target="_blank",
                    size="sm",
                    color="primary",
                    outline=True,
                    id="models-mlflow-link",
                ),
            ),
            dcc.Interval(id="models-interval", interval=5000),
            html.Div(id="models-registry", className="mb-4"),
            html.H5("Pipeline runs"),
            html.P(
                [
                    "The retrain workflow (gather, train in parallel, evaluate beside the champion, gate) and the "
                    "scheduled jobs. Start one with ",
                    code("triptych retrain"),
                    " or ",
                    code("POST /retrain"),
                    ".",
                ],
                className="text-muted small",
            ),
            html.Div(id="models-cancel-said"),
            html.Div(id="models-runs", className="mb-4"),
            html.H5("Decisions and labels"),
            html.Div(id="models-events"),
        ]
    )


def _step_row(step: dict) -> html.Tr:
    progress = step.get("progress") or {}
    detail: str | html.Div = describe_step(step)
    if step["state"] == "running" and progress.get("images_total"):
        share = 100 * progress["images_done"] / progress["images_total"]
        detail = html.Div(
            [
                dbc.Progress(
                    value=max(share, 4), striped=True, animated=True, className="mb-1", style={"height": "0.8rem"}
                ),
                html.Span(detail, className="small"),
            ]
        )
    took = (step["ended_at"] - step["started_at"]).total_seconds() if step["ended_at"] else None
    return html.Tr(
        [
            html.Td(step["step"], className="text-nowrap"),
            html.Td(dbc.Badge(step["state"], color=STATE_COLORS.get(step["state"], "light"))),
            html.Td(f"{took:.0f}s" if took is not None else "…", className="text-nowrap"),
            html.Td(detail, className="small"),
        ]
    )


def _run_card(run: dict, open_: bool) -> html.Details:
    took = (run["ended_at"] - run["started_at"]).total_seconds() if run["ended_at"] and run["started_at"] else None
    summary = html.Summary(
        [
            html.Span(WORKFLOW_WORDS.get(run["workflow"], run["workflow"]), className="fw-semibold me-2"),
            dbc.Badge(run["state"], color=STATE_COLORS.get(run["state"], "light"), className="me-2"),
            html.Span(
                f"{when(run['created_at'])} · by {run['requested_by'] or '?'}"
                + (f" · {took / 60:.1f} min" if took is not None else ""),
                className="text-muted small",
            ),
        ]
    )
    body = (
        [
            dbc.Table(
                [
                    html.Thead(html.Tr([html.Th(h) for h in ("step", "state", "took", "progress or outcome")])),
                    html.Tbody([_step_row(s) for s in run["steps"]]),
                ],
                size="sm",
                className="mb-1 mt-2",
            )
        ]
        if run["steps"]
        else [html.P("no step has started yet", className="small text-muted mt-2")]
    )
    if run["error"]:
        body.append(dbc.Alert(run["error"], color="danger", className="small py-1 mb-1"))
    if run.get("cancel_requested_at"):
        body.append(
            html.P(
                f"cancel asked by {run['cancelled_by']} {when(run['cancel_requested_at'])}"
                + ("; it stops at its next progress report" if run["state"] == "running" else ""),
                className="small text-muted mb-1",
            )
        )
    elif run["state"] in ("queued", "running") and run["workflow"] == "retrain" and auth.may("admin"):
        body.append(
            dbc.Button(
                "Cancel this run",
                id={"type": "models-cancel", "run": str(run["run_id"])},
                size="sm",
                color="warning",
                outline=True,
                className="mb-2",
                title="The training stops at its next progress report; the champion stays.",
            )
        )
    return html.Details([summary, *body], open=open_, className="run-card mb-2", id=f"models-run-{run['run_id']}")


def _runs(rows: list[dict]):
    if not rows:
        return empty_state(
            "No run yet.",
            html.Span(
                [
                    code("make demo"),
                    " trains the champions as a workflow run; ",
                    code("triptych jobs run data-quality"),
                    " runs a job now.",
                ]
            ),
        )
    # Running and the newest retraining open; the rest folded.
    newest_retrain = next((r["run_id"] for r in rows if r["workflow"] == "retrain"), None)
    return html.Div(
        [_run_card(r, r["state"] in ("queued", "running") or r["run_id"] == newest_retrain) for r in rows],
        id="models-runs-list",
    )


def _registry_cards() -> html.Div:
    try:
        from triptych.models.registry import overview

        versions = overview(data.settings())
    except Exception as exc:  # noqa: BLE001 - the page still shows decisions without the registry
        return dbc.Alert(
            f"The MLflow registry at {data.settings().mlflow_url} cannot be read ({type(exc).__name__}). "
            "Is the stack up? (triptych status)",
            color="warning",
        )
    if not any(versions.values()):
        return empty_state(
            "No model is registered yet.",
            html.Span(
                [
                    code("make demo"),
                    " trains a champion for each model on the generated set (progress shows here); ",
                    code("triptych models bootstrap --train"),
                    " does only that.",
                ]
            ),
            id="models-empty",
        )
    cards = []
    for model, rows in versions.items():
        champion = next((v for v in rows if "champion" in v.aliases), None)
        challenger = next((v for v in rows if "challenger" in v.aliases and v is not champion), None)

        def line(title, v, live=None):
            if v is None:
                return html.Div([html.Span(title, className="stat-label"), html.Div("none", className="text-muted")])
            return html.Div(
                [
                    html.Span(title, className="stat-label"),
                    html.Div(
                        [
                            html.Span(f"v{v.version}", className="fs-4 fw-semibold me-2"),
                            html.Span(pct(v.accuracy), className="fs-5"),
                        ]
                    ),
                    html.Div(f"held-out accuracy · {v.origin} on {v.dataset_id}", className="small text-muted"),
                    live,
                ]
            )

        table = (
            dbc.Table(
                [
                    html.Thead(html.Tr([html.Th(h) for h in ("version", "alias", "accuracy", "registered")])),
                    html.Tbody(
                        [
                            html.Tr(
                                [
                                    html.Td(f"v{v.version}"),
                                    html.Td(", ".join(v.aliases) or "–"),
                                    html.Td(pct(v.accuracy), title=f"held-out accuracy on {v.dataset_id}"),
                                    html.Td(
                                        datetime.fromtimestamp(v.created_ms / 1000, UTC)
                                        .astimezone()
                                        .strftime("%b %d %H:%M"),
                                        className="text-nowrap",
                                    ),
                                ]
                            )
                            for v in rows
                        ]
                    ),
                ],
                size="sm",
                className="mt-3 mb-0 small versions",
            )
            if rows
            else html.P("No version registered yet.", className="text-muted small mt-3 mb-0")
        )
        cards.append(
            dbc.Col(
                dbc.Card(
                    [
                        dbc.CardHeader(
                            html.Span(model_label(model), className="fw-semibold", style={"color": model_color(model)})
                        ),
                        dbc.CardBody(
                            [
                                html.Div(
                                    [
                                        line("champion", champion),
                                        line("shadow", challenger, _live(model, challenger, champion)),
                                    ],
                                    className="d-flex gap-5",
                                ),
                                _int8_line(champion),
                                table,
                            ]
                        ),
                    ],
                    id=f"models-card-{model}",
                ),
                lg=4,
            )
        )
    return dbc.Row(cards, className="g-3")


def _int8_line(champion):
    """The champion's int8 copy beside its fp32 self, on the same held-out images, once
    `triptych models quantize` has measured it; whether replicas may serve it."""
    if champion is None or not champion.int8:
        return None
    q = champion.int8
    served = q.get("published") == "true"
    verdict = (
        html.Span(
            [
                "published: answering live beside fp32 (",
                dcc.Link("Compare", href="/compare"),
                "); serve it with TRIPTYCH_INFER_BACKEND=onnx-int8",
            ],
            className="text-success",
        )
        if served
        else html.Span(
            f"not published: top-1 agreement below the gate's {pct(float(q.get('min_agreement', 'nan')))}",
            className="text-muted",
        )
    )
    return html.Div(
        [
            html.Span("int8 (static QDQ)", className="stat-label"),
            html.Div(
                [
                    html.Span(pct(float(q["int8_accuracy"])), className="fs-5 me-2"),
                    html.Span(
                        f"against fp32 {pct(float(q['fp32_accuracy']))} · agrees on "
                        f"{pct(float(q['agreement']))} · {float(q['speedup']):.1f}× faster",
                        className="small",
                    ),
                ]
            ),
            html.Div([f"{q.get('held_out', '?')} held-out images · ", verdict], className="small"),
        ],
        className="mt-3",
        id=f"models-int8-{champion.model_name}",
    )


def _live(model: str, challenger, champion):
    """A challenger's shadow phase so far: the labelled live images both answered,
    each one's accuracy, and the gate's evidence climbing towards its threshold."""
    if challenger is None or champion is None:
        return None
    from triptych.lifecycle.gate import shadow_duel  # imports MLflow: only once there is a challenger
    from triptych.stats.evalue import evidence, evidence_path

    s = data.settings()
    challenger_right, champion_right = data.read(shadow_duel, model, challenger.version, champion.version)
    labelled = len(challenger_right)
    if not labelled:
        return html.Div("live: no labelled image yet", className="small shadow-live")
    e, wins, losses = evidence_path(challenger_right, champion_right)
    seen = evidence(int(wins[-1]), int(losses[-1]), s.shadow_alpha)
    words = (
        f"live: {pct(sum(challenger_right) / labelled)} vs champion {pct(sum(champion_right) / labelled)} "
        f"on {labelled} labelled images; of those only one got right, the challenger won {seen.wins}, "
        f"the champion {seen.losses}. Evidence E = {seen.e:.3g} of {seen.threshold:g} needed "
        f"(decides by {s.shadow_label_budget} labelled images at most)."
    )
    return html.Div(
        [
            html.Div(words, className="small shadow-live"),
            dcc.Graph(
                figure=_evidence_figure(model, e, seen.threshold),
                config={"displayModeBar": False},
                id=f"models-evidence-{model}",
            ),
        ]
    )


def _evidence_figure(model: str, e, threshold: float) -> go.Figure:
    x = list(range(1, len(e) + 1))
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=e,
            mode="lines",
            line=dict(color=model_color(model), width=2),
            name="evidence",
            hovertemplate="%{x} labelled: E = %{y:.3g}<extra></extra>",
        )
    )
    fig.add_hline(
        y=threshold,
        line=dict(color="#6b7280", dash="dash"),
        annotation_text=f"decides at {threshold:g}",
        annotation_position="top left",
    )
    fig.update_yaxes(type="log", title="E (log)")
    fig.update_xaxes(title="labelled images in shadow")
    return figure(fig, height=170, margin=dict(l=50, r=10, t=10, b=35), showlegend=False)


def _events_table(events: list[dict]):
    shown = [e for e in events if e["event_type"] != "training_epoch"][:40]
    if not shown:
        return empty_state(
            "No decisions yet.",
            "Promotions, challengers kept back and labels set on the Review page are listed here as they happen.",
        )
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in ("when", "what", "details")])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(when(e["created_at"]), className="text-nowrap"),
                            html.Td(
                                dbc.Badge(
                                    EVENT_WORDS.get(e["event_type"], (e["event_type"], "light"))[0],
                                    color=EVENT_WORDS.get(e["event_type"], ("", "light"))[1],
                                )
                            ),
                            html.Td(e["message"]),
                        ]
                    )
                    for e in shown
                ]
            ),
        ],
        size="sm",
        hover=True,
        id="models-events-table",
    )


@auth.write_callback(
    "admin",
    Output("models-cancel-said", "children"),
    Input({"type": "models-cancel", "run": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def cancel(clicks):
    # The cards are redrawn every 5 s (their buttons with them): act only on a real click.
    if not ctx.triggered_id or not any(clicks):
        return None
    run_id = ctx.triggered_id["run"]
    try:
        run = auth.write_as("admin", "cancel_run", request_cancel, run_id, auth.current().subject)
    except Forbidden as exc:
        return dbc.Alert(str(exc), color="danger", className="small py-1", dismissable=True)
    if run is None or run["state"] not in ("queued", "running"):
        return dbc.Alert(
            f"That run has already ended ({run['state'] if run else 'gone'}).",
            color="secondary",
            className="small py-1",
            dismissable=True,
        )
    return dbc.Alert(
        "Cancel asked: the training stops at its next progress report, and the champion stays as it was.",
        color="warning",
        className="small py-1",
        dismissable=True,
        id="models-cancel-ok",
    )


@callback(
    Output("models-registry", "children"),
    Output("models-runs", "children"),
    Output("models-events", "children"),
    Input("models-interval", "n_intervals"),
)
def refresh(_n):
    events = data.read(lifecycle_events, 200)
    return _registry_cards(), _runs(data.read(recent_runs, 12, None, True)), _events_table(events)
