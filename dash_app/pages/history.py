"""History: every image and its results, searchable and filterable by model,
class, agreement, correctness, source and time range, a page at a time (paged in
Postgres, newest first), each row linking to its Image page; the filtered rows
export as CSV. Filters can come in the URL (?model=resnet50&cls=cat&agreement=none)."""

from __future__ import annotations

import csv
import io

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from triptych.db.queries import HistoryFilter, history_count, history_rows
from triptych.ingress.objects import SOURCES

from .. import data
from ..components import code, empty_state, model_label, page_header, when

PATH = "/history"
NAME = "History"
TITLE = "History"
PAGE_SIZE = 50
EXPORT_CAP = 50_000
DEFAULT_RANGE = "24h"
AGREEMENT_OPTIONS = {
    "all": "all three agree",
    "majority": "majority",
    "none": "no agreement",
    "pending": "not compared yet",
    "quarantined": "quarantined",
}
CORRECT_OPTIONS = {"yes": "correct", "no": "wrong"}


def _dropdown(id_, options, value, placeholder, width="10rem", clearable=True):
    return dcc.Dropdown(
        id=id_,
        options=options,
        value=value,
        placeholder=placeholder,
        clearable=clearable,
        style={"width": width},
        className="filter",
    )


def _check(query: dict) -> tuple[dict, list[str]]:
    """The URL's filters, with the ones that make no sense dropped and named."""
    models, problems, clean = data.model_names(), [], {}
    checks = {
        "range": lambda v: v in data.RANGES,
        "model": lambda v: v in models,
        "agreement": lambda v: v in AGREEMENT_OPTIONS,
        "correct": lambda v: v in CORRECT_OPTIONS,
        "source": lambda v: v in SOURCES,
        "cls": lambda v: True,
        "q": lambda v: True,
    }
    for key, value in query.items():
        if key in checks and checks[key](value):
            clean[key] = value
        else:
            problems.append(f"{key}={value}")
    return clean, problems


def layout(**query):
    q, problems = _check(query)
    classes = sorted(data.known_classes())
    filters = html.Div(
        [
            dbc.Input(
                id="history-search",
                placeholder="search file name or id",
                value=q.get("q"),
                debounce=True,
                size="sm",
                style={"width": "13rem"},
            ),
            _dropdown(
                "history-range",
                [{"label": v, "value": k} for k, v in data.RANGE_LABELS.items()],
                q.get("range", DEFAULT_RANGE),
                "time range",
                "9.5rem",
                clearable=False,
            ),
            _dropdown(
                "history-model",
                [{"label": model_label(m), "value": m} for m in data.model_names()],
                q.get("model"),
                "model: consensus",
                "11rem",
            ),
            _dropdown("history-class", classes, q.get("cls"), "any class", "8.5rem"),
            _dropdown(
                "history-agreement",
                [{"label": v, "value": k} for k, v in AGREEMENT_OPTIONS.items()],
                q.get("agreement"),
                "any agreement",
                "10.5rem",
            ),
            _dropdown(
                "history-correct",
                [{"label": v, "value": k} for k, v in CORRECT_OPTIONS.items()],
                q.get("correct"),
                "right or wrong",
                "8.5rem",
            ),
            _dropdown("history-source", list(SOURCES), q.get("source"), "any source", "8rem"),
        ],
        className="d-flex flex-wrap gap-2 mb-2 filters",
    )
    notice = (
        dbc.Alert(
            f"Ignored filter(s) that make no sense: {', '.join(problems)}.",
            color="warning",
            id="history-filter-error",
            className="py-2",
        )
        if problems
        else None
    )
    return html.Div(
        [
            page_header(
                "History",
                "Every image and its results. Click a file name for its details.",
                dbc.Button("Export CSV", id="history-export", color="primary", size="sm", outline=True),
            ),
            filters,
            notice,
            dcc.Store(id="history-offset", data=0),
            dcc.Download(id="history-download"),
            html.Div(id="history-error"),
            html.Div(id="history-empty"),
            html.Div(
                [
                    dag.AgGrid(
                        id="history-grid",
                        columnDefs=_columns(),
                        rowData=[],
                        defaultColDef={"resizable": True, "sortable": False, "suppressMovable": True},
                        dashGridOptions={"rowHeight": 56, "domLayout": "autoHeight", "suppressCellFocus": True},
                        columnSize="responsiveSizeToFit",
                        className="ag-theme-alpine history-grid",
                    ),
                    html.Div(
                        [
                            dbc.Button("← newer", id="history-prev", size="sm", color="light"),
                            html.Span(id="history-position", className="text-muted small"),
                            dbc.Button("older →", id="history-next", size="sm", color="light"),
                        ],
                        className="d-flex gap-3 align-items-center justify-content-center mt-2",
                    ),
                ],
                id="history-table",
            ),
        ]
    )


def _columns() -> list[dict]:
    answer_cols = [
        {
            "field": m,
            "headerName": model_label(m),
            "minWidth": 120,
            "cellClassRules": {"dissent": f"params.data.{m}_dissent"},
        }
        for m in data.model_names()
    ]
    return [
        {
            "field": "thumb",
            "headerName": "",
            "cellRenderer": "ThumbLink",
            "width": 68,
            "minWidth": 68,
            "maxWidth": 68,
            "suppressSizeToFit": True,
        },
        {"field": "file", "headerName": "file", "cellRenderer": "markdown", "minWidth": 220},
        {"field": "uploaded", "headerName": "uploaded", "minWidth": 150},
        {"field": "source", "headerName": "source", "minWidth": 95},
        {"field": "truth", "headerName": "true label", "minWidth": 100},
        *answer_cols,
        {"field": "consensus", "headerName": "consensus", "minWidth": 110},
        {
            "field": "agreement",
            "headerName": "agreement",
            "minWidth": 110,
            "cellClassRules": {
                "agree-all": "params.value == 'all agree'",
                "agree-majority": "params.value == 'majority'",
                "agree-none": "params.value == 'no agreement'",
                "agree-quarantined": "params.value.startsWith('quarantined')",
            },
        },
        {
            "field": "correct",
            "headerName": "right",
            "minWidth": 75,
            "maxWidth": 80,
            "cellClassRules": {"ok": "params.value == '✓'", "bad": "params.value == '✗'"},
        },
    ]


def _filter(range_key, model, cls, agreement, correct, source, search) -> HistoryFilter:
    start, end = data.time_range(range_key or DEFAULT_RANGE)
    return HistoryFilter(
        start=start,
        end=end,
        model=model,
        predicted_class=cls,
        agreement=agreement,
        correct={"yes": True, "no": False}.get(correct),
        source=source,
        search=(search or "").strip() or None,
    )


def _grid_row(r: dict, models: list[str]) -> dict:
    per = r["per_model"] or {}
    row = {
        "thumb": str(r["image_id"]),
        "file": f"[{r['filename'].replace('[', '(').replace(']', ')')}](/image/{r['image_id']})",
        "uploaded": when(r["uploaded_at"]),
        "source": r["source"],
        "truth": r["ground_truth_label"] or "",
        "consensus": r["consensus_class"] or "",
        "agreement": (
            f"quarantined: {r['quarantine_reason']}"
            if r["status"] == "quarantined"
            else {"all": "all agree", "majority": "majority", "none": "no agreement"}.get(
                r["agreement_level"], "pending"
            )
        ),
        "correct": {True: "✓", False: "✗"}.get(r["consensus_correct"], ""),
    }
    for m in models:
        answer = per.get(m)
        row[m] = f"{answer['class']} {answer['confidence']:.0%}" if answer else ""
        row[f"{m}_dissent"] = bool(answer and answer["class"] != r["consensus_class"])
    return row


FILTER_INPUTS = [
    Input("history-range", "value"),
    Input("history-model", "value"),
    Input("history-class", "value"),
    Input("history-agreement", "value"),
    Input("history-correct", "value"),
    Input("history-source", "value"),
    Input("history-search", "value"),
]


@callback(
    Output("history-grid", "rowData"),
    Output("history-position", "children"),
    Output("history-offset", "data"),
    Output("history-prev", "disabled"),
    Output("history-next", "disabled"),
    Output("history-empty", "children"),
    Output("history-table", "style"),
    *FILTER_INPUTS,
    Input("history-prev", "n_clicks"),
    Input("history-next", "n_clicks"),
    State("history-offset", "data"),
)
def page(range_key, model, cls, agreement, correct, source, search, _prev, _next, offset):
    f = _filter(range_key, model, cls, agreement, correct, source, search)
    offset = offset or 0
    if ctx.triggered_id == "history-next":
        offset += PAGE_SIZE
    elif ctx.triggered_id == "history-prev":
        offset = max(0, offset - PAGE_SIZE)
    else:
        offset = 0  # a new filter starts at the newest
    total, capped = data.read(history_count, f)
    if total is not None:
        offset = min(offset, max(0, (total - 1) // PAGE_SIZE * PAGE_SIZE))
    rows = data.read(history_rows, f, offset, PAGE_SIZE + 1)  # one more than a page: is there a next one?
    more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    models = data.model_names()
    if not rows and offset == 0:
        position = "no images"
        empty = empty_state(
            f"No images in the {data.RANGE_LABELS[range_key or DEFAULT_RANGE]} match these filters.",
            html.Span(
                [
                    "Widen the time range or clear a filter. With no images at all yet, upload some on the ",
                    html.A("Upload", href="/upload"),
                    " page or start a stream (",
                    code("make demo"),
                    ").",
                ]
            ),
            id="history-no-rows",
        )
    else:
        if total is None:
            of = "many (too many to count quickly)"
        else:
            of = f"{'more than ' if capped else ''}{total:,}"
        position = f"images {offset + 1:,}–{offset + len(rows):,} of {of}"
        empty = None
    return (
        [_grid_row(r, models) for r in rows],
        position,
        offset,
        offset == 0,
        not more,
        empty,
        {"display": "none"} if empty else {},
    )


@callback(
    Output("history-download", "data"),
    Output("history-error", "children"),
    Input("history-export", "n_clicks"),
    *[State(i.component_id, i.component_property) for i in FILTER_INPUTS],
    prevent_initial_call=True,
)
def export(_clicks, range_key, model, cls, agreement, correct, source, search):
    f = _filter(range_key, model, cls, agreement, correct, source, search)
    rows = data.read(history_rows, f, 0, EXPORT_CAP)
    if not rows:
        return no_update, dbc.Alert(
            "Nothing to export: no image matches these filters.", color="warning", className="py-2"
        )
    models = data.model_names()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "image_id",
            "uploaded_at",
            "filename",
            "source",
            "status",
            "ground_truth_label",
            "consensus_class",
            "agreement_level",
            "consensus_correct",
            *[f"{m}_{k}" for m in models for k in ("class", "confidence", "version", "correct")],
        ]
    )
    for r in rows:
        per = r["per_model"] or {}
        writer.writerow(
            [
                r["image_id"],
                r["uploaded_at"].isoformat(),
                r["filename"],
                r["source"],
                r["status"],
                r["ground_truth_label"] or "",
                r["consensus_class"] or "",
                r["agreement_level"] or "",
                "" if r["consensus_correct"] is None else r["consensus_correct"],
                *[
                    ("" if per.get(m, {}).get(k) is None else per[m][k])
                    for m in models
                    for k in ("class", "confidence", "version", "correct")
                ],
            ]
        )
    return dcc.send_string(out.getvalue(), f"triptych-history-{range_key or DEFAULT_RANGE}.csv"), None
