"""The Compare page's cards and figures, built from what its callbacks read:
significance in words, drift, the latency budget's Pareto front, confusion
matrices, model versions and the int8 twin. Nothing here reads data."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import html

from .. import data
from ..components import (
    code,
    figure,
    fmt,
    model_color,
    model_label,
    pct,
    when,
)

# 0 % white to 100 % deep blue, spelled out: plotly.js and plotly.py read the name "Blues" in opposite directions.
SHARE_SCALE = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]]


def _model_cells(row: dict) -> list[html.Td]:
    """A table row's first two cells: the model in its colour, and the version that answered."""
    return [
        html.Td(
            model_label(row["model_name"]), style={"color": model_color(row["model_name"])}, className="fw-semibold"
        ),
        html.Td(f"v{row['model_version']}"),
    ]


def verdict_item(settled: bool, text, id: str) -> html.Li:  # noqa: A002 - Dash's own name for it
    """One verdict in words, badged "clear" once it is beyond noise (p < 0.05), else "not yet"."""
    return html.Li(
        [
            dbc.Badge("clear" if settled else "not yet", color="success" if settled else "secondary", className="me-2"),
            text,
        ],
        id=id,
    )


def significance_card(result: dict, range_key: str) -> dbc.Card:
    from triptych.stats.paired import format_p

    header = dbc.CardHeader(html.Span("Which model is really more accurate?", className="fw-semibold"))
    if not result["n"]:
        return dbc.Card(
            [
                header,
                dbc.CardBody(
                    html.P(
                        f"No labelled image answered by every model in the {data.RANGE_LABELS[range_key]}: label images on the "
                        "Review page, or stream a labelled set, and the verdicts appear here.",
                        className="text-muted mb-0",
                    )
                ),
            ],
            id="compare-significance-card",
        )
    lines = []
    for pair in result["pairs"]:
        settled = pair["p_value"] < 0.05
        lines.append(verdict_item(settled, pair["verdict"], f"compare-verdict-{'-'.join(pair['models'])}"))
    q = result["cochran_q"]
    if q:
        overall = (
            f"All {len(result['models'])} together (Cochran's Q = {q['q']:.1f}, df {q['df']}, "
            f"{format_p(q['p_value'])}, {result['n']:,} labelled images): "
            + ("at least one differs in accuracy." if q["p_value"] < 0.05 else "no model stands out yet.")
        )
    else:
        overall = f"All {len(result['models'])} together: no labelled image splits them yet."
    return dbc.Card(
        [
            header,
            dbc.CardBody(
                [
                    html.Ul(lines, className="verdicts mb-2"),
                    html.P(overall, className="mb-1", id="compare-cochran"),
                    html.P(
                        "Only the images where exactly one of two models was right tell them apart (McNemar's exact test); "
                        "intervals are 95 % paired bootstraps of the accuracy difference. Each pair's p is its own; "
                        "Cochran's Q judges all models at once.",
                        className="text-muted small mb-0",
                    ),
                ]
            ),
        ],
        id="compare-significance-card",
    )


STATUS_COLOURS = {"ok": "success", "drift": "danger", "warming up": "secondary"}


FEATURE_NAMES = {
    "brightness": "brightness",
    "contrast": "contrast",
    "saturation": "saturation",
    "sharpness": "sharpness (Laplacian variance)",
    "red": "mean red",
    "green": "mean green",
    "blue": "mean blue",
}


def _detector_name(detector: str) -> str:
    if detector.startswith("confidence:"):
        return f"{model_label(detector.split(':', 1)[1])}'s confidence"
    return {"agreement": "All three agree", "input:pixels": "Input images against the training set"}.get(
        detector, detector
    )


def _detector_line(d: dict):
    summary = d["summary"] or {}
    badge = dbc.Badge(d["status"], color=STATUS_COLOURS.get(d["status"], "secondary"), className="me-2 drift-badge")
    if d["kind"] == "output":
        level = (
            f"now {pct(summary['estimate'])} over the last {summary['window']:,} images"
            if summary.get("estimate") is not None
            else f"{summary.get('seen', 0):,} images so far"
        )
        what = [html.Strong(_detector_name(d["detector"])), f": {level}"]
    else:
        worst = summary.get("worst")
        what = [html.Strong(_detector_name(d["detector"])), ": "]
        if summary.get("error"):
            what.append(f"no reference yet ({summary['error']})")
        elif worst is None:
            what.append(f"{summary.get('n_live', 0):,} live images with statistics; the test starts at 100")
        else:
            what.append(
                f"{summary['n_live']:,} newest live images against {summary['n_reference']:,} training images; "
                f"most changed: {FEATURE_NAMES.get(worst['feature'], worst['feature'])} "
                f"(median {worst['reference_median']:.3g} → {worst['live_median']:.3g}, "
                f"KS p = {worst['p_value']:.2g})"
            )
    if d["drift_at"]:
        what.append(html.Span(f" · last change {when(d['drift_at'])}", className="text-muted"))
    return html.Li([badge, *what], id=f"compare-drift-{d['detector'].replace(':', '-').replace('_', '-')}")


def drift_card(detectors: list[dict]) -> dbc.Card:
    header = dbc.CardHeader(html.Span("Is the stream still what the models learned from?", className="fw-semibold"))
    if not detectors:
        return dbc.Card(
            [
                header,
                dbc.CardBody(
                    html.P(
                        "The drift job has not run yet: it runs every minute in the jobs function "
                        "(or now: triptych jobs run drift).",
                        className="text-muted mb-0",
                    )
                ),
            ],
            id="compare-drift-card",
        )
    settings = data.settings()
    drifting = [d for d in detectors if d["status"] == "drift"]
    headline = (
        html.P(f"{len(drifting)} of {len(detectors)} detectors see a change.", className="text-danger mb-2")
        if drifting
        else html.P("No detector sees a change.", className="text-success mb-2")
    )
    return dbc.Card(
        [
            header,
            dbc.CardBody(
                [
                    headline,
                    html.Ul([_detector_line(d) for d in detectors], className="verdicts mb-2"),
                    html.P(
                        "Confidence and agreement are watched by ADWIN over the live stream (it fires when the recent mean "
                        "leaves the older one's bound). The input test compares each image's pixel statistics with the "
                        f"training set's (Kolmogorov-Smirnov per statistic, Bonferroni, α = {settings.drift_alpha:.0%}). "
                        f"A detector stays at 'drift' for {settings.drift_hold_minutes:g} minutes after it fires, and the "
                        "StreamDrifting alert with it.",
                        className="text-muted small mb-0",
                    ),
                ]
            ),
        ],
        id="compare-drift-card",
    )


def pareto_figure(
    points: list[dict], front: list[dict], cost: str, title_x: str, title: str, budget: float | None = None
) -> go.Figure:
    fig = go.Figure()
    if len(front) > 1:
        fig.add_scatter(
            x=[p[cost] for p in front],
            y=[p["accuracy"] for p in front],
            mode="lines",
            line=dict(color="#9ca3af", dash="dot", shape="hv"),
            name="Pareto front",
            hoverinfo="skip",
        )
    for p in points:
        if p[cost] is None:
            continue
        fig.add_scatter(
            x=[p[cost]],
            y=[p["accuracy"]],
            mode="markers+text",
            name=model_label(p["model_name"]),
            text=[f"v{p['model_version']}"],
            textposition="top center",
            showlegend=False,
            marker=dict(size=14, color=model_color(p["model_name"]), symbol="circle" if p in front else "circle-open"),
            hovertemplate=f"{model_label(p['model_name'])} v{p['model_version']}: "
            "%{y:.1%} at %{x:.1f}<extra></extra>",
        )
    if budget:
        fig.add_vline(
            x=budget,
            line=dict(color="#dc2626", dash="dash"),
            annotation_text=f"budget {budget:g} ms",
            annotation_position="top right",
        )
    fig.update_layout(title=title)
    fig.update_xaxes(title=title_x, rangemode="tozero")
    shown = [p["accuracy"] for p in points if p[cost] is not None]
    # Room above the top point for its version label.
    fig.update_yaxes(title="accuracy", tickformat=".0%", range=[max(0, min(shown) - 0.08), min(1.05, max(shown) + 0.1)])
    return figure(fig, height=300)


def confusion_figure(confusion: dict, classes: list[str]) -> dict:
    """One heatmap per model side by side, sharing the true-class axis. Built as a
    plain figure dict: plotly's make_subplots costs ~70 ms a call, a third of this
    callback's budget on 100k images."""
    count = len(confusion)
    gap = 0.04
    width = (1 - gap * (count - 1)) / count
    traces, layout = [], {"annotations": []}
    for k, (model, cells) in enumerate(confusion.items()):
        axis = "" if k == 0 else str(k + 1)
        left = k * (width + gap)
        totals = {t: sum(n for (tt, _), n in cells.items() if tt == t) for t in classes}
        traces.append(
            {
                "type": "heatmap",
                "xaxis": f"x{axis}",
                "yaxis": "y",
                "x": classes,
                "y": classes,
                "z": [[cells.get((t, p), 0) / totals[t] if totals[t] else None for p in classes] for t in classes],
                "customdata": [[cells.get((t, p), 0) for p in classes] for t in classes],
                "zmin": 0,
                "zmax": 1,
                "colorscale": SHARE_SCALE,
                "showscale": False,
                "hovertemplate": "true %{y}, answered %{x}: %{customdata} images<extra></extra>",
            }
        )
        layout[f"xaxis{axis}"] = {"domain": [left, left + width], "tickangle": 45, "title": {"text": "answered"}}
        layout["annotations"].append(
            {
                "text": model_label(model),
                "x": left + width / 2,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"color": model_color(model), "size": 13},
            }
        )
    layout["yaxis"] = {"autorange": "reversed", "title": {"text": "true class"}}
    layout.update(
        template="plotly_white",
        height=360,
        margin={"l": 80, "r": 20, "t": 78, "b": 70},
        title={
            "text": "Confusion matrices (share of each true class)",
            "x": 0,
            "xanchor": "left",
            "y": 0.985,
            "yanchor": "top",
            "font": {"size": 14},
        },
        font={"size": 12},
    )
    return {"data": traces, "layout": layout}


def versions_table(rows: list[dict]):
    if not rows:
        return html.P("No compared images in this range.", className="text-muted")
    return dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th(h)
                        for h in (
                            "model",
                            "version",
                            "images",
                            "p50 ms",
                            "agrees with consensus",
                            "accuracy",
                            "labelled",
                        )
                    ]
                )
            ),
            html.Tbody(
                [
                    html.Tr(
                        [
                            *_model_cells(r),
                            html.Td(f"{r['compared']:,}"),
                            html.Td(fmt(r["p50_inference_ms"])),
                            html.Td(pct(r["agrees_with_consensus"])),
                            html.Td(pct(r["accuracy"])),
                            html.Td(f"{r['labelled']:,}"),
                        ]
                    )
                    for r in rows
                ]
            ),
        ],
        size="sm",
        hover=True,
        className="models-table",
        id="compare-versions-table",
    )


def int8_card(rows: list[dict], range_key: str) -> dbc.Card:
    """Each champion's int8 export beside its fp32 self, on the live images both answered."""
    header = dbc.CardHeader(
        [
            html.Span("int8 beside fp32, live", className="fw-semibold"),
            html.Span(
                " the same version, the same images: quantised against full precision", className="text-muted small"
            ),
        ]
    )
    if not rows:
        return dbc.Card(
            [
                header,
                dbc.CardBody(
                    [
                        html.P(
                            f"No int8 answers in the {data.RANGE_LABELS[range_key]}. int8 is off by default: it answers only "
                            "for a champion whose int8 export passed its agreement gate.",
                            className="mb-1",
                        ),
                        html.P(
                            [
                                "Quantise one with ",
                                code("triptych models quantize resnet50"),
                                "; the infer-int8 function then wakes and answers beside it.",
                            ],
                            className="text-muted mb-0",
                        ),
                    ]
                ),
            ],
            id="compare-int8-card",
        )
    body, verdicts = [], []
    seen: set[str] = set()
    for r in rows:
        test = r["test"]
        # One id per element: a model answered by two versions in the range gets a second, versioned one.
        suffix = f"-v{r['model_version']}" if r["model_name"] in seen else ""
        seen.add(r["model_name"])
        settled = bool(test["n"]) and test["p_value"] < 0.05
        speed = f" ({r['fp32_p50_ms'] / r['int8_p50_ms']:.2f}× as fast)" if r["int8_p50_ms"] else ""
        body.append(
            html.Tr(
                [
                    *_model_cells(r),
                    html.Td(f"{r['answered']:,}"),
                    html.Td(pct(r["agreement"])),
                    html.Td(f"{fmt(r['fp32_p50_ms'])} → {fmt(r['int8_p50_ms'])} ms{speed}"),
                    html.Td(
                        f"{pct(test['accuracy'][0])} → {pct(test['accuracy'][1])} on {test['n']:,}"
                        if test["n"]
                        else "no labelled image yet"
                    ),
                ],
                id=f"compare-int8-{r['model_name']}{suffix}",
            )
        )
        words = test["verdict"] if test["n"] else f"{model_label(r['model_name'])}: label images to compare accuracy."
        verdicts.append(verdict_item(settled, words, f"compare-int8-verdict-{r['model_name']}{suffix}"))
    table = dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th(h)
                        for h in (
                            "model",
                            "version",
                            "images",
                            "top-1 agreement",
                            "p50 forward, fp32 → int8",
                            "accuracy, fp32 → int8",
                        )
                    ]
                )
            ),
            html.Tbody(body),
        ],
        size="sm",
        hover=True,
        className="models-table mb-2",
    )
    return dbc.Card(
        [
            header,
            dbc.CardBody(
                [
                    table,
                    html.Ul(verdicts, className="verdicts mb-2"),
                    html.P(
                        "Agreement: the share of images where int8's top class is fp32's. Accuracy is judged only on the "
                        "images where exactly one of the two was right (McNemar's exact test): a quantised model that "
                        "loses accuracy shows here before its agreement looks bad.",
                        className="text-muted small mb-0",
                    ),
                ]
            ),
        ],
        id="compare-int8-card",
    )
