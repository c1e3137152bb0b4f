"""Compare: the models side by side over a chosen time range: which is really
more accurate (paired significance, in words), latency distributions with
p50/p95/p99, throughput over time, confidence distributions and calibration,
accuracy per class and a confusion matrix per model (labelled images), how often
each pair of models agrees, and every model version that answered (a champion and
its challenger side by side), and each champion's int8 export beside its fp32
self on the same live images, once the int8 twin answers."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html, no_update

from triptych.db.queries import (
    SAMPLE_ANSWERS,
    SAMPLE_IMAGES,
    agreement_matrix,
    confidence_distribution,
    confusion_counts,
    drift_state,
    latency_distribution,
    range_counts,
    throughput_series,
    version_comparison,
)

from .. import data, prometheus
from ..components import (
    code,
    empty_figure,
    empty_state,
    figure,
    fmt,
    graph,
    model_color,
    model_label,
    page_header,
    pct,
)
from .compare_cards import (
    SHARE_SCALE,
    confusion_figure,
    drift_card,
    int8_card,
    pareto_figure,
    significance_card,
    versions_table,
)

PATH = "/compare"
NAME = "Compare"
TITLE = "Compare models"
DEFAULT_RANGE = "1h"
DEFAULT_BUDGET_MS = 50


def layout(range: str | None = None, **_query):  # noqa: A002 - the URL's query parameter is called range
    problem = None
    if range is not None and range not in data.RANGES:
        problem = dbc.Alert(
            f"Unknown time range “{range}”: showing the {data.RANGE_LABELS[DEFAULT_RANGE]}. "
            f"Ranges: {', '.join(data.RANGES)}.",
            color="warning",
            id="compare-range-error",
        )
        range = None
    picker = dcc.Dropdown(
        id="compare-range",
        options=[{"label": v, "value": k} for k, v in data.RANGE_LABELS.items()],
        value=range or DEFAULT_RANGE,
        clearable=False,
        style={"width": "14rem"},
    )
    return html.Div(
        [
            page_header("Compare", "The three models side by side: speed, certainty, accuracy and agreement.", picker),
            problem,
            html.Div(id="compare-empty"),
            html.Div(
                [
                    html.Div(id="compare-significance", className="mb-3"),
                    html.Div(id="compare-latency-table", className="mb-2"),
                    dbc.Row(
                        [dbc.Col(graph("compare-latency"), lg=6), dbc.Col(graph("compare-throughput"), lg=6)],
                        className="g-3",
                    ),
                    dbc.Row(
                        [dbc.Col(graph("compare-confidence"), lg=6), dbc.Col(graph("compare-calibration"), lg=6)],
                        className="g-3",
                    ),
                    dbc.Row(
                        [dbc.Col(graph("compare-class-accuracy"), lg=7), dbc.Col(graph("compare-agreement"), lg=5)],
                        className="g-3",
                    ),
                    graph("compare-confusion"),
                    html.H5("Which model for my budget?", className="mt-3"),
                    html.Div(
                        [
                            dbc.Label("p95 inference budget (ms):", html_for="compare-budget", className="me-2 mb-0"),
                            dcc.Input(
                                id="compare-budget",
                                type="number",
                                min=1,
                                max=10_000,
                                step=1,
                                value=DEFAULT_BUDGET_MS,
                                debounce=True,
                                className="form-control form-control-sm",
                                style={"width": "6rem"},
                            ),
                            html.Span(id="compare-budget-answer", className="ms-3"),
                        ],
                        className="d-flex align-items-center mb-2",
                    ),
                    dbc.Row(
                        [dbc.Col(graph("compare-pareto-latency"), lg=6), dbc.Col(graph("compare-pareto-cpu"), lg=6)],
                        className="g-3",
                    ),
                    html.Div(id="compare-drift", className="mt-3"),
                    html.H5("Model versions in this range", className="mt-3"),
                    html.P(
                        "Each version that answered, on the same images: a challenger beside its champion shows here.",
                        className="text-muted small",
                    ),
                    html.Div(id="compare-versions"),
                    html.Div(id="compare-int8", className="mt-3"),
                ],
                id="compare-charts",
            ),
        ]
    )


def _no_data(what: str, range_key: str) -> go.Figure:
    return empty_figure(f"No {what} in the {data.RANGE_LABELS[range_key]}. Widen the range, or start a stream.")


@callback(
    Output("compare-latency", "figure"),
    Output("compare-latency-table", "children"),
    Output("compare-confidence", "figure"),
    Output("compare-empty", "children"),
    Output("compare-charts", "style"),
    Input("compare-range", "value"),
)
def speed_and_confidence(range_key):
    start, end = data.time_range(range_key)
    latency = data.read(latency_distribution, start, end)
    if not latency["summary"]:
        # One clear message instead of six empty charts.
        message = empty_state(
            f"No predictions in the {data.RANGE_LABELS[range_key]}.",
            html.Span(
                [
                    "Choose a wider range above, or send images: start a stream (",
                    code("make demo"),
                    ") or upload some on the ",
                    html.A("Upload", href="/upload"),
                    " page.",
                ]
            ),
            id="compare-no-data",
        )
        return no_update, None, no_update, message, {"display": "none"}
    edges = latency["edges"]
    centers = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    fig = go.Figure()
    for model, counts in latency["counts"].items():
        total = sum(counts) or 1
        fig.add_bar(
            x=centers,
            y=[c / total for c in counts],
            name=model_label(model),
            marker_color=model_color(model),
            opacity=0.75,
            width=edges[1] - edges[0],
        )
    fig.update_layout(barmode="overlay", title="Inference time per image (share of answers)")
    fig.update_xaxes(title="ms (last bar: everything above)")
    fig.update_yaxes(tickformat=".0%")
    table = dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in ("model", "answers", "mean ms", "p50 ms", "p95 ms", "p99 ms")])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(model_label(m), style={"color": model_color(m)}, className="fw-semibold"),
                            html.Td(f"{s['n']:,}"),
                            html.Td(fmt(s["mean_ms"])),
                            html.Td(fmt(s["p50_ms"])),
                            html.Td(fmt(s["p95_ms"])),
                            html.Td(fmt(s["p99_ms"])),
                        ],
                        id=f"compare-latency-{m}",
                    )
                    for m, s in latency["summary"].items()
                ]
            ),
        ],
        size="sm",
        className="models-table",
    )
    counts = data.read(range_counts, start, end)
    if counts["answers"] > SAMPLE_ANSWERS or counts["images"] > SAMPLE_IMAGES:
        note = html.P(
            f"The {data.RANGE_LABELS[range_key]} hold {counts['images']:,} compared images and "
            f"{counts['answers']:,} answers. Distributions, agreement and accuracy below use the newest "
            f"{SAMPLE_IMAGES:,} images ({SAMPLE_ANSWERS:,} answers), so any range answers at once; "
            "throughput counts every minute. Choose a shorter range to see every image.",
            className="text-muted small mb-1",
            id="compare-sample-note",
        )
        table = html.Div([note, table])

    confidence = data.read(confidence_distribution, start, end)
    conf = go.Figure()
    bins = len(next(iter(confidence.values()))) if confidence else 20
    for model, counts in confidence.items():
        total = sum(counts) or 1
        conf.add_scatter(
            x=[(k + 0.5) / bins for k in range(bins)],
            y=[c / total for c in counts],
            mode="lines+markers",
            name=model_label(model),
            line=dict(color=model_color(model)),
        )
    conf.update_layout(title="Confidence of the top answer")
    conf.update_xaxes(range=[0, 1], tickformat=".0%", title="confidence")
    conf.update_yaxes(tickformat=".0%", title="share of answers")
    return figure(fig), table, figure(conf), None, {}


@callback(Output("compare-throughput", "figure"), Input("compare-range", "value"))
def throughput(range_key):
    """Answers per second by model: Prometheus' rate of the aggregate function's
    counter (about 120 points over the range) when its history covers the range,
    else counted from Postgres rows."""
    start, end = data.time_range(range_key)
    step_s = max(15, int((end - start).total_seconds() / 120))
    series = prometheus.query_range(prometheus.ANSWERS_PER_S.format(window=max(step_s, 60)), start, end, step_s)
    fig = go.Figure()
    # Prometheus only when its history covers the range (it keeps days; Postgres keeps all).
    if series and min(t[0] for t, _ in series.values()) <= start + (end - start) / 10:
        for model, (t, per_s) in sorted(series.items()):
            fig.add_scatter(x=t, y=per_s, name=model_label(model), mode="lines", line=dict(color=model_color(model)))
        title = f"Throughput (answers per second, Prometheus, {step_s}-second steps)"
    else:
        result = data.read(throughput_series, start, end)
        if not result["series"]:
            return _no_data("predictions", range_key)
        for model, s in result["series"].items():
            fig.add_scatter(
                x=s["t"],
                y=s["per_s"],
                name=model_label(model),
                mode="lines",
                line=dict(color=model_color(model), shape="hv"),
            )
        title = f"Throughput (answers per second, {result['step_s'] / 60:.0f}-minute steps)"
    fig.update_layout(title=title)
    fig.update_xaxes(range=[start, end])  # the whole chosen range, so a burst shows where it was
    fig.update_yaxes(title="answers / s", rangemode="tozero")
    return figure(fig)


def _heatmap_text(values):
    return [[("" if v is None else f"{v:.0%}") for v in row] for row in values]


@callback(
    Output("compare-agreement", "figure"),
    Output("compare-class-accuracy", "figure"),
    Output("compare-confusion", "figure"),
    Input("compare-range", "value"),
)
def agreement_and_accuracy(range_key):
    start, end = data.time_range(range_key)
    models = data.model_names()
    agreement = data.read(agreement_matrix, start, end, models)
    if not any(agreement["n"].values()):
        agree_fig = _no_data("compared images", range_key)
    else:
        labels = [model_label(m) for m in models]
        z = [[1.0 if a == b else agreement["rate"].get((a, b)) for b in models] for a in models]
        agree_fig = go.Figure(
            go.Heatmap(
                z=z,
                x=labels,
                y=labels,
                zmin=0,
                zmax=1,
                colorscale=SHARE_SCALE,
                text=_heatmap_text(z),
                texttemplate="%{text}",
                showscale=False,
            )
        )
        agree_fig.update_layout(title="Same answer, pair by pair")
        agree_fig.update_yaxes(autorange="reversed")
        agree_fig = figure(agree_fig)

    confusion = data.read(confusion_counts, start, end)
    if not confusion:
        accuracy_fig = empty_figure(
            f"No labelled images compared in the {data.RANGE_LABELS[range_key]}. "
            "Label images on the Review page, or stream a labelled set."
        )
        confusion_fig = empty_figure("A confusion matrix needs labelled images.")
    else:
        classes = sorted(
            {t for cells in confusion.values() for t, _ in cells}
            | {p for cells in confusion.values() for _, p in cells}
        )
        truths = sorted({t for cells in confusion.values() for t, _ in cells})
        accuracy_fig = go.Figure()
        for model, cells in confusion.items():
            rows = {t: sum(n for (tt, _), n in cells.items() if tt == t) for t in truths}
            acc = [cells.get((t, t), 0) / rows[t] if rows[t] else None for t in truths]
            accuracy_fig.add_bar(x=truths, y=acc, name=model_label(model), marker_color=model_color(model))
        accuracy_fig.update_layout(title="Accuracy per true class", barmode="group")
        accuracy_fig.update_yaxes(range=[0, 1], tickformat=".0%")
        accuracy_fig = figure(accuracy_fig)

        confusion_fig = confusion_figure(confusion, classes)
    return agree_fig, accuracy_fig, confusion_fig


@callback(Output("compare-significance", "children"), Input("compare-range", "value"))
def significance(range_key):
    from triptych.figures.ranges import range_significance  # scipy and statsmodels: loaded on first use

    start, end = data.time_range(range_key)
    result = data.read(range_significance, start, end, data.model_names(), model_label)
    return significance_card(result, range_key)


@callback(Output("compare-drift", "children"), Input("compare-range", "value"))
def drift(_range_key):
    """The drift job's detectors as it last left them (every minute; not tied to the range)."""
    return drift_card(data.read(drift_state))


@callback(Output("compare-calibration", "figure"), Input("compare-range", "value"))
def calibration(range_key):
    """The reliability diagram: per model, accuracy against mean confidence in each
    confidence bin; on the diagonal, 90 % confidence means 90 % right."""
    from triptych.figures.ranges import range_calibration

    start, end = data.time_range(range_key)
    models = data.read(range_calibration, start, end)
    if not models:
        return empty_figure("Calibration needs labelled images: label some on the Review page.")
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#9ca3af", dash="dot"), name="calibrated", hoverinfo="skip"
    )
    for model, c in models.items():
        shown = [b for b in c["bins"] if b["count"]]
        fig.add_scatter(
            x=[b["confidence"] for b in shown],
            y=[b["accuracy"] for b in shown],
            mode="lines+markers",
            name=f"{model_label(model)} · ECE {c['ece']:.1%}",
            line=dict(color=model_color(model)),
            marker=dict(size=[6 + 10 * (b["count"] / c["n"]) ** 0.5 for b in shown]),
            customdata=[[b["count"], b["lower"], b["upper"]] for b in shown],
            hovertemplate="confidence %{customdata[1]:.0%}–%{customdata[2]:.0%}: %{customdata[0]} answers, "
            "mean %{x:.0%}, right %{y:.0%}<extra></extra>",
        )
    fig.update_layout(title="Calibration: how often each confidence is right")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="mean confidence in the bin (marker size: answers)")
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title="right")
    # Inside the plot, under the diagonal, where a calibration curve rarely goes: four
    # entries above the plot wrapped onto the title.
    return figure(
        fig,
        legend=dict(
            orientation="v", x=0.99, xanchor="right", y=0.02, yanchor="bottom", bgcolor="rgba(255,255,255,0.8)"
        ),
    )


@callback(
    Output("compare-budget-answer", "children"),
    Output("compare-pareto-latency", "figure"),
    Output("compare-pareto-cpu", "figure"),
    Input("compare-range", "value"),
    Input("compare-budget", "value"),
)
def budget(range_key, budget_ms):
    """Accuracy against cost, one point per model version, the Pareto front drawn:
    p95 inference time (Postgres) and CPU per 1,000 images (Prometheus: the
    inference function's CPU over the answers it gave, everything it does included)."""
    from triptych.models.zoo import ARCHITECTURES
    from triptych.stats.pareto import best_within, pareto_front

    start, end = data.time_range(range_key)
    versions = [v for v in data.read(version_comparison, start, end) if v["accuracy"] is not None]
    if not versions:
        empty = empty_figure("Cost against accuracy needs labelled images in this range.")
        return "", empty, empty
    cpu = (
        prometheus.cpu_ms_per_image(
            end, (end - start).total_seconds(), {name: a.function for name, a in ARCHITECTURES.items()}
        )
        or {}
    )
    newest: dict[str, str] = {}
    for v in versions:  # CPU is measured per function, which serves the newest version of its model
        if not v["model_version"].isdigit():
            continue  # not a registry version: the bench's null stand-in ("3+null") serves nothing
        newest[v["model_name"]] = max(newest.get(v["model_name"], v["model_version"]), v["model_version"], key=int)
    points = [
        {
            **v,
            "cpu_s_per_1000": cpu[v["model_name"]]
            if v["model_version"] == newest.get(v["model_name"]) and v["model_name"] in cpu
            else None,
        }
        for v in versions
    ]
    budget_ms = budget_ms or DEFAULT_BUDGET_MS
    best = best_within(points, "p95_inference_ms", budget_ms)
    if best:
        answer = html.Span(
            [
                f"Within {budget_ms:g} ms at p95: ",
                html.Strong(f"{model_label(best['model_name'])} v{best['model_version']}"),
                f", {pct(best['accuracy'])} accurate at {best['p95_inference_ms']:.1f} ms p95 "
                f"(over {best['labelled']:,} labelled images).",
            ],
            id="compare-budget-best",
        )
    else:
        fastest = min(points, key=lambda p: p["p95_inference_ms"])
        answer = html.Span(
            f"No model answers within {budget_ms:g} ms at p95; the fastest, "
            f"{model_label(fastest['model_name'])}, needs {fastest['p95_inference_ms']:.1f} ms.",
            className="text-warning",
            id="compare-budget-best",
        )
    latency = pareto_figure(
        points,
        pareto_front(points, "p95_inference_ms"),
        "p95_inference_ms",
        "p95 inference time (ms)",
        "Accuracy against p95 latency",
        budget_ms,
    )
    if any(p["cpu_s_per_1000"] is not None for p in points):
        cpu_fig = pareto_figure(
            points,
            pareto_front(points, "cpu_s_per_1000"),
            "cpu_s_per_1000",
            "CPU seconds per 1,000 images (inference function, all of it)",
            "Accuracy against CPU cost",
        )
    else:
        cpu_fig = empty_figure("CPU per image comes from Prometheus, which has no figures for this range.")
    return answer, latency, cpu_fig


@callback(Output("compare-versions", "children"), Input("compare-range", "value"))
def versions(range_key):
    start, end = data.time_range(range_key)
    return versions_table(data.read(version_comparison, start, end))


@callback(Output("compare-int8", "children"), Input("compare-range", "value"))
def int8(range_key):
    from triptych.figures.ranges import range_int8  # scipy and statsmodels: loaded on first use

    start, end = data.time_range(range_key)
    return int8_card(data.read(range_int8, start, end, model_label), range_key)
