"""Pieces every page uses: the look of a model, an answer, a counter, an empty
state, a chart; kept here so the pages read as what they show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

# One colour per model, the same on every page and chart.
MODEL_COLORS = {"resnet50": "#2563eb", "mobilenet_v2": "#059669", "efficientnet_b0": "#d97706"}
MODEL_LABELS = {"resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2", "efficientnet_b0": "EfficientNet-B0"}
EXTRA_COLORS = ["#7c3aed", "#db2777", "#0891b2", "#65a30d"]

AGREEMENT_STYLE = {  # level -> (badge colour, words)
    "all": ("success", "all agree"),
    "majority": ("warning", "majority"),
    "none": ("danger", "no agreement"),
}


def model_color(name: str) -> str:
    if name in MODEL_COLORS:
        return MODEL_COLORS[name]
    return EXTRA_COLORS[sum(map(ord, name)) % len(EXTRA_COLORS)]


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def fmt(value, pattern: str = "{:.1f}", empty: str = "–") -> str:
    return pattern.format(value) if value is not None else empty


def pct(value, empty: str = "–") -> str:
    return f"{value * 100:.1f} %" if value is not None else empty


def when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if at else "–"


def page_header(title: str, subtitle: str, *right) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2(title, className="mb-0"), html.P(subtitle, className="text-muted mb-0")]),
            html.Div(list(right), className="d-flex gap-2 align-items-center"),
        ],
        className="d-flex justify-content-between align-items-end flex-wrap gap-2 mb-3 page-header",
    )


def empty_state(title: str, *lines, id: str | None = None) -> html.Div:
    """What a page shows when there is nothing yet, and what to do about it."""
    kwargs: dict[str, Any] = {"id": id} if id else {}
    return html.Div(
        [html.H5(title), *[html.P(line, className="mb-1") for line in lines]], className="empty-state", **kwargs
    )


def code(text: str) -> html.Code:
    return html.Code(text, className="cmd")


def stat_card(label: str, value: str, hint: str = "", id: str | None = None) -> dbc.Card:
    body = [html.Div(label, className="stat-label"), html.Div(value, className="stat-value")]
    if hint:
        body.append(html.Div(hint, className="stat-hint"))
    kwargs = {"id": id} if id else {}
    return dbc.Card(dbc.CardBody(body), className="stat-card", **kwargs)


def agreement_badge(level: str | None) -> dbc.Badge:
    if level is None:
        return dbc.Badge("pending", color="secondary", className="agreement")
    color, words = AGREEMENT_STYLE.get(level, ("secondary", level))
    return dbc.Badge(words, color=color, className="agreement")


def correctness(correct: bool | None) -> html.Span:
    if correct is None:
        return html.Span("")
    return (
        html.Span("✓", className="ok", title="correct") if correct else html.Span("✗", className="bad", title="wrong")
    )


def answer_chip(model: str, answer: dict | None, consensus: str | None) -> html.Div:
    """One model's answer: its class and confidence, marked when it differs from the consensus."""
    if not answer:
        return html.Div(
            [html.Span(model_label(model), className="chip-model"), html.Span("…")], className="answer-chip pending"
        )
    dissent = consensus is not None and answer.get("class") != consensus
    return html.Div(
        [
            html.Span(model_label(model), className="chip-model", style={"color": model_color(model)}),
            html.Span(answer.get("class", "?"), className="chip-class"),
            html.Span(fmt(answer.get("confidence"), "{:.0%}"), className="chip-conf"),
            correctness(answer.get("correct")),
        ],
        className="answer-chip" + (" dissent" if dissent else ""),
    )


def thumb_url(image_id) -> str:
    return f"/media/{image_id}/thumb"


def image_url(image_id) -> str:
    return f"/media/{image_id}/image"


def figure(fig: go.Figure, height: int = 320, **layout) -> go.Figure:
    """The house style for charts: white, compact, legend on top."""
    style = dict(
        template="plotly_white",
        height=height,
        margin=dict(l=50, r=20, t=40, b=45),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        font=dict(size=12),
    )
    title = fig.layout.title.text if fig.layout.title else None
    if title:  # the title on its own line above the legend, never under it
        style["title"] = dict(text=title, x=0, xanchor="left", y=0.985, yanchor="top", font=dict(size=14))
        style["margin"] = dict(l=50, r=20, t=78, b=45)
    fig.update_layout(**{**style, **layout})
    return fig


def rate(per_second: float | None) -> str:
    """Images per second with the digits that matter (0.0025 and 42 alike)."""
    if per_second is None:
        return "–"
    if per_second == 0:
        return "0 img/s"
    if per_second >= 10:
        return f"{per_second:.0f} img/s"
    if per_second >= 0.1:
        return f"{per_second:.2f} img/s"
    return f"{per_second * 60:.1f} img/min"


def graph(id: str, **kwargs) -> dcc.Loading:
    return dcc.Loading(dcc.Graph(id=id, config={"displaylogo": False}, **kwargs), type="dot", delay_show=400)


def empty_figure(message: str, height: int = 320) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, font=dict(size=14, color="#6b7280"), x=0.5, y=0.5, xref="paper", yref="paper"
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return figure(fig, height=height)


def error_alert(message: str) -> dbc.Alert:
    return dbc.Alert(message, color="danger", className="mb-2")
