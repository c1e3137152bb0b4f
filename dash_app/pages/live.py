"""Live (home): what is happening now. Counters for the last minute and hour, the
stream of compared images as it happens, each model's latency and accuracy over
the last minutes, and the health of the stack and the functions. Refreshes every
2 s, and stops refreshing while the tab is hidden."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from triptych.db.queries import (
    live_summary,
    per_model,
    recent_comparisons,
    throughput_series,
)

from .. import data, health, prometheus
from ..components import (
    agreement_badge,
    answer_chip,
    code,
    correctness,
    empty_figure,
    empty_state,
    figure,
    fmt,
    model_color,
    model_label,
    page_header,
    pct,
    rate,
    stat_card,
    thumb_url,
)

PATH = "/"
NAME = "Live"
TITLE = "Live"
MODEL_WINDOW_S = 300
STREAM_LENGTH = 12
TREND_MINUTES = 30


def layout(**_query):
    return html.Div(
        [
            page_header(
                "Live",
                "The stream as it happens: every image, three answers, one consensus.",
                html.Span(id="live-updated", className="text-muted small"),
            ),
            dcc.Interval(id="live-interval", interval=2000),
            html.Div(id="live-visibility", hidden=True),
            html.Div(id="live-counters", className="mb-3"),
            dbc.Row(
                [
                    dbc.Col([html.H5("Latest images"), html.Div(id="live-stream")], lg=8),
                    dbc.Col(
                        [
                            html.H5(f"Models, last {MODEL_WINDOW_S // 60} minutes"),
                            html.Div(id="live-models", className="mb-2"),
                            dcc.Graph(id="live-latency", config={"displayModeBar": False}, className="mb-3"),
                            dcc.Graph(id="live-lag", config={"displayModeBar": False}, className="mb-4"),
                            html.H5("Stack and functions"),
                            html.Div(id="live-health"),
                        ],
                        lg=4,
                    ),
                ]
            ),
        ]
    )


# A hidden tab costs nothing: the interval is switched off while the page is not
# visible (the browser's Page Visibility API) and on again when it shows.
clientside_callback(
    """
    function(id) {
        if (!window._triptychVisibility) {
            window._triptychVisibility = true;
            document.addEventListener('visibilitychange', function () {
                // dcc.Interval renders no element: the page's path says whether it exists.
                if (window.location.pathname === '/') {
                    dash_clientside.set_props('live-interval', {disabled: document.hidden});
                }
            });
        }
        return document.hidden ? 'hidden' : 'visible';
    }
    """,
    Output("live-visibility", "children"),
    Input("live-visibility", "id"),
)


def _counters(minute: dict, hour: dict) -> dbc.Row:
    def card(label, key, fmt_value=str, hint_fmt=None):
        hint_fmt = hint_fmt or fmt_value
        return dbc.Col(
            stat_card(label, fmt_value(minute[key]), f"last hour: {hint_fmt(hour[key])}", id=f"live-count-{key}"),
            xs=6,
            md=4,
            xl=2,
        )

    return dbc.Row(
        [
            card("Images in / min", "images_in"),
            card("Compared / min", "compared"),
            card("Throughput", "throughput", rate),
            card("All three agree", "agreement_rate", pct),
            card("Quarantined / min", "quarantined"),
            card("Dead letters / min", "dead_letters"),
        ],
        className="g-2",
    )


def _stream_item(row: dict, models: list[str]) -> html.A:
    per = row["per_model"] or {}
    level = row["agreement_level"]
    truth = row["ground_truth_label"]
    return html.A(
        dbc.Card(
            dbc.CardBody(
                html.Div(
                    [
                        html.Img(src=thumb_url(row["image_id"]), className="thumb", alt=row["filename"]),
                        html.Div(
                            [
                                html.Div(
                                    [
                                        html.Span(row["filename"], className="fw-semibold text-truncate stream-name"),
                                        agreement_badge(level),
                                    ],
                                    className="d-flex justify-content-between gap-2",
                                ),
                                html.Div(
                                    [answer_chip(m, per.get(m), row["consensus_class"]) for m in models],
                                    className="chips",
                                ),
                                html.Div(
                                    [
                                        html.Span("consensus "),
                                        html.Strong(row["consensus_class"] or "–"),
                                        " ",
                                        correctness(row["consensus_correct"]),
                                        html.Span(
                                            f" · truth {truth}" if truth else " · unlabelled", className="text-muted"
                                        ),
                                        html.Span(
                                            f" · {row['compared_at'].astimezone():%H:%M:%S}", className="text-muted"
                                        ),
                                    ],
                                    className="small",
                                ),
                            ],
                            className="flex-grow-1 min-w-0",
                        ),
                    ],
                    className="d-flex gap-3",
                )
            ),
            className=f"stream-card level-{level}",
        ),
        href=f"/image/{row['image_id']}",
        className="stream-link",
    )


def _models_table(rows: list[dict]) -> html.Div:
    if not rows:
        return empty_state(
            "No predictions in the last minutes.", "The inference functions answer as soon as images arrive."
        )
    # The version beside the name, p50 and p95 in one column: the table fits its column from 1,280 px up.
    headers: tuple[Any, ...] = ("model", "answers", ["p50 / p95", html.Br(), html.Small("ms")], "accuracy")
    head = html.Thead(html.Tr([html.Th(h) for h in headers]))
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(
                        [
                            html.Span(
                                model_label(r["model_name"]),
                                style={"color": model_color(r["model_name"])},
                                className="fw-semibold",
                            ),
                            html.Small(f" v{r['versions']}", className="text-muted", title="version(s) that answered"),
                        ]
                    ),
                    html.Td(r["predictions"]),
                    html.Td(f"{fmt(r['p50_inference_ms'])} / {fmt(r['p95_inference_ms'])}"),
                    html.Td(pct(r["accuracy"])),
                ],
                id=f"live-model-{r['model_name']}",
            )
            for r in rows
        ]
    )
    # Scrolls inside its column if it ever must, never the page.
    return html.Div(
        dbc.Table([head, body], size="sm", hover=True, className="models-table small mb-0"),
        className="table-responsive",
    )


def _health(snapshot: dict) -> html.Div:
    items = []
    for s in snapshot["services"]:
        if s["state"] == "disabled":
            continue
        up = s["state"] == "up"
        items.append(
            html.Li(
                [
                    html.Span("●", className="dot " + ("up" if up else "down")),
                    html.Span(s["name"], className="fw-semibold"),
                    html.Span(
                        f"{s['rss_mb']:.0f} MB" if s.get("rss_mb") else ("up" if up else "down"),
                        className="text-muted ms-auto",
                    ),
                ],
                id=f"live-health-{s['name']}",
            )
        )
    scaling = snapshot.get("scaling", {})
    for name, f in snapshot["functions"].items():
        if not f["desired"]:
            state, words = "idle", "at zero, wakes on demand"
        elif f["running"] >= f["desired"]:
            state, words = "up", f"{f['running']}/{f['desired']} running"
        elif f["starting"]:
            state, words = "starting", f"{f['running']}/{f['desired']} running, {f['starting']} starting"
        else:
            state, words = "down", f"{f['running']}/{f['desired']} running"
        if f["restarts"]:
            words += f", {f['restarts']} restarts"
        items.append(
            html.Li(
                [
                    html.Span("●", className=f"dot {state}"),
                    html.Span(name),
                    html.Span(words, className="text-muted ms-auto"),
                ],
                id=f"live-health-{name}",
            )
        )
        if name in scaling:  # the scaler's last change: "infer-resnet50 1 → 2 (lag 340)"
            last = scaling[name]
            items.append(
                html.Li(
                    html.Span(f"{last['message']} · {last['created_at']:%H:%M:%S}", className="small text-muted"),
                    className="health-scaling",
                    id=f"live-scaling-{name}",
                )
            )
    for problem in snapshot.get("replica_problems", []):
        items.append(html.Li([html.Span("●", className="dot down"), html.Span(problem, className="small")]))
    if not snapshot["functions"] and not snapshot.get("replica_problems"):
        items.append(
            html.Li(
                [
                    html.Span("●", className="dot down"),
                    html.Span("functions"),
                    html.Span(["not running: ", code("triptych up")], className="text-muted ms-auto"),
                ]
            )
        )
    return html.Div([*_alerts(snapshot.get("alerts", [])), html.Ul(items, className="health-list")])


def _alerts(alerts: list[dict]) -> list:
    """Prometheus alerts firing now (Alertmanager's reports in system_events), above the health list."""
    cards = []
    for alert in alerts:
        details = alert["details"]
        cards.append(
            html.Div(
                [
                    html.Div(
                        [
                            html.Span("▲ ", className="alert-icon"),
                            details.get("annotations", {}).get("summary") or alert["message"],
                        ],
                        className="fw-semibold",
                    ),
                    html.Div(
                        f"{details.get('alertname', 'alert')} · {alert['severity']} · since {alert['created_at']:%H:%M}",
                        className="small text-muted",
                    ),
                ],
                className="alert-card",
                id=f"live-alert-{details.get('fingerprint', '')}",
            )
        )
    return cards


# Two callbacks, not one: Dash applies a callback's outputs together, and the charts
# need plotly.js (3.5 MB, fetched and parsed on first use). In one callback the
# stream waited for it: 5-6 s on a busy 2-core machine before any image showed.
@callback(
    Output("live-counters", "children"),
    Output("live-stream", "children"),
    Output("live-updated", "children"),
    Input("live-interval", "n_intervals"),
)
def refresh(_n):
    minute = data.read(live_summary, 60)
    hour = data.read(live_summary, 3600)
    rows = data.read(recent_comparisons, STREAM_LENGTH)
    models = data.model_names()
    if rows:
        stream = html.Div([_stream_item(r, models) for r in rows], className="stream")
    else:
        stream = empty_state(
            "Nothing compared yet.",
            html.Span(
                [
                    "Start the labelled stream with ",
                    code("make demo"),
                    " (or ",
                    code("triptych stream synthetic"),
                    "), upload images on the ",
                    html.A("Upload", href="/upload"),
                    " page, or drop files into the ",
                    code("images"),
                    " bucket.",
                ]
            ),
            "Each image appears here with the three models' answers as soon as all three have answered.",
            id="live-empty",
        )
    return _counters(minute, hour), stream, f"updated {datetime.now():%H:%M:%S}"


@callback(
    Output("live-models", "children"),
    Output("live-latency", "figure"),
    Output("live-lag", "figure"),
    Input("live-interval", "n_intervals"),
)
def refresh_models_and_trends(_n):
    return _models_table(data.read(per_model, MODEL_WINDOW_S)), _latency_trend(), _lag_trend()


def _latency_trend() -> go.Figure:
    """p95 inference time per model over the last half hour: from Prometheus' histograms
    (a point every 15 s), else from the aggregate function's per-minute rows."""
    end = datetime.now(UTC)
    fig = go.Figure()
    series = prometheus.last_minutes(prometheus.INFERENCE_P95, TREND_MINUTES)
    if series:
        source = "Prometheus, 1 min windows"
        for model, (t, seconds) in sorted(series.items()):
            fig.add_scatter(
                x=t,
                y=[s * 1000 for s in seconds],
                name=model_label(model),
                mode="lines",
                line=dict(color=model_color(model)),
            )
    else:
        source = "per minute"
        rows = data.read(throughput_series, end - timedelta(minutes=TREND_MINUTES), end)["series"]
        if not rows:
            return empty_figure("The latency trend appears with the first predictions.", height=200)
        for model, s in rows.items():
            fig.add_scatter(
                x=s["t"],
                y=s["p95_ms"],
                name=model_label(model),
                mode="lines+markers",
                line=dict(color=model_color(model)),
                marker=dict(size=4),
            )
    fig.update_yaxes(title="p95 ms", rangemode="tozero")
    # The whole half hour on the axis, in minutes: a single early point must not
    # zoom the axis into milliseconds.
    fig.update_xaxes(range=[end - timedelta(minutes=TREND_MINUTES), end], tickformat="%H:%M")
    fig.update_layout(title=f"p95 inference time, last {TREND_MINUTES} min ({source})")
    return figure(fig, height=250, margin=dict(l=45, r=10, t=78, b=30))


def _lag_trend() -> go.Figure:
    """Each function's consumer lag (messages behind) over the last half hour, from Prometheus."""
    series = prometheus.last_minutes(prometheus.CONSUMER_LAG, TREND_MINUTES)
    if series is None:
        return empty_figure("Prometheus is not reachable: `triptych up` starts it.", height=160)
    if not series:
        return empty_figure("No consumer lag reported yet.", height=160)
    end = datetime.now(UTC)
    fig = go.Figure()
    for function, (t, lag) in sorted(series.items()):
        fig.add_scatter(
            x=t, y=lag, name=function, mode="lines", line=dict(color=model_color(function.removeprefix("infer-")))
        )
    fig.update_yaxes(title="messages", rangemode="tozero")
    fig.update_xaxes(range=[end - timedelta(minutes=TREND_MINUTES), end], tickformat="%H:%M")
    fig.update_layout(title="Consumer lag per function (Prometheus)")
    # Up to eight functions: their legend goes below the chart, not over its title.
    return figure(
        fig, height=280, margin=dict(l=45, r=10, t=40, b=95), legend=dict(orientation="h", yanchor="top", y=-0.18, x=0)
    )


@callback(Output("live-health", "children"), Input("live-interval", "n_intervals"), State("live-health", "children"))
def refresh_health(n, shown):
    probing = isinstance(shown, dict) and shown.get("props", {}).get("id") == "live-health-probing"
    if n and n % 3 and not probing:  # every 6 s is plenty for health, once it is on screen
        from dash import no_update

        return no_update
    snapshot = health.snapshot()
    if snapshot is None:  # this dashboard's first probe is still running: the next tick shows it
        return html.Div(
            [dbc.Spinner(size="sm"), " probing the stack…"], className="text-muted small", id="live-health-probing"
        )
    return _health(snapshot)
