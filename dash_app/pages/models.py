"""Models: each model's champion and challenger, their versions, data set and
held-out accuracy (from the MLflow registry), training as it happens, and the
promotion decisions and labels that shaped them (from `system_events`), with a
link to the MLflow UI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from triptych.db.queries import lifecycle_events

from .. import data
from ..components import code, empty_state, model_color, model_label, page_header, pct, when

PATH = "/models"
NAME = "Models"
TITLE = "Models"

# A run with no epoch reported for this long is taken as stopped (a killed job
# never reports its end); the longest epoch measured here took about 6 minutes.
STALLED = timedelta(minutes=30)
EVENT_WORDS = {"model_promoted": ("promoted", "success"), "model_not_promoted": ("kept as challenger", "secondary"),
               "training_started": ("training started", "info"), "training_epoch": ("epoch", "light"),
               "label_set": ("label set", "primary")}


def layout(**_query):
    mlflow = data.settings().mlflow_url
    return html.Div([
        page_header("Models", "Champions serve the stream; challengers wait for a better score.",
                    dbc.Button("Open MLflow ↗", href=f"{mlflow}/#/models", target="_blank", size="sm",
                               color="primary", outline=True, id="models-mlflow-link")),
        dcc.Interval(id="models-interval", interval=5000),
        html.Div(id="models-training"),
        html.Div(id="models-registry", className="mb-4"),
        html.H5("Decisions and labels"),
        html.Div(id="models-events"),
    ])


def _training(events: list[dict]) -> html.Div | None:
    """Runs that started and have no promotion decision yet, with their last epoch."""
    running = []
    for model in data.model_names():
        mine = [e for e in events if (e["details"] or {}).get("model_name") == model]  # newest first
        starts = [e for e in mine if e["event_type"] == "training_started"]
        if not starts:
            continue
        start = starts[0]
        after = [e for e in mine if e["created_at"] >= start["created_at"]]
        if any(e["event_type"] in ("model_promoted", "model_not_promoted") for e in after):
            continue
        epochs = [e for e in after if e["event_type"] == "training_epoch"
                  and e["details"].get("run") == start["details"].get("run")]
        latest = epochs[0]["created_at"] if epochs else start["created_at"]
        if datetime.now(timezone.utc) - latest > STALLED:
            continue  # no word for too long: the run was stopped, not training
        total = start["details"].get("epochs") or 1
        done = max((e["details"]["epoch"] for e in epochs), default=0)
        last = epochs[0]["details"] if epochs else None
        minutes = (datetime.now(timezone.utc) - start["created_at"]).total_seconds() / 60
        running.append(dbc.Card(dbc.CardBody([
            html.Div([html.Strong(f"Training {model_label(model)}"),
                      html.Span(f" on {start['details'].get('dataset_id')} · {minutes:.0f} min so far",
                                className="text-muted small")]),
            dbc.Progress(value=max(100 * done / total, 8), label=f"epoch {done}/{total}", className="my-2",
                         striped=True, animated=True, style={"height": "1.1rem"}),
            html.Div(f"held-out accuracy after epoch {last['epoch']}: {last['test_accuracy']:.1%}" if last else
                     "first epoch running…", className="small"),
        ]), className="mb-2 training-card", id=f"models-training-{model}"))
    return html.Div([html.H5("Training now"), *running], className="mb-4") if running else None


def _registry_cards() -> html.Div:
    try:
        from triptych.models.registry import overview

        versions = overview(data.settings())
    except Exception as exc:  # noqa: BLE001 - the page still shows decisions without the registry
        return dbc.Alert(f"The MLflow registry at {data.settings().mlflow_url} cannot be read ({type(exc).__name__}). "
                         "Is the stack up? (triptych status)", color="warning")
    if not any(versions.values()):
        return empty_state("No model is registered yet.",
                           html.Span([code("make demo"), " trains a champion for each model on the generated set "
                                      "(progress shows here); ", code("triptych models bootstrap --train"),
                                      " does only that."]), id="models-empty")
    cards = []
    for model, rows in versions.items():
        champion = next((v for v in rows if "champion" in v.aliases), None)
        challenger = next((v for v in rows if "challenger" in v.aliases and v is not champion), None)

        def line(title, v):
            if v is None:
                return html.Div([html.Span(title, className="stat-label"), html.Div("none", className="text-muted")])
            return html.Div([html.Span(title, className="stat-label"),
                             html.Div([html.Span(f"v{v.version}", className="fs-4 fw-semibold me-2"),
                                       html.Span(pct(v.accuracy), className="fs-5")]),
                             html.Div(f"held-out accuracy · {v.origin} on {v.dataset_id}",
                                      className="small text-muted")])

        table = dbc.Table([
            html.Thead(html.Tr([html.Th(h) for h in ("version", "alias", "accuracy", "registered")])),
            html.Tbody([html.Tr([html.Td(f"v{v.version}"), html.Td(", ".join(v.aliases) or "–"),
                                 html.Td(pct(v.accuracy), title=f"held-out accuracy on {v.dataset_id}"),
                                 html.Td(datetime.fromtimestamp(v.created_ms / 1000, timezone.utc).astimezone()
                                         .strftime("%b %d %H:%M"), className="text-nowrap")])
                        for v in rows]),
        ], size="sm", className="mt-3 mb-0 small versions") if rows else html.P(
            "No version registered yet.", className="text-muted small mt-3 mb-0")
        cards.append(dbc.Col(dbc.Card([
            dbc.CardHeader(html.Span(model_label(model), className="fw-semibold", style={"color": model_color(model)})),
            dbc.CardBody([html.Div([line("champion", champion), line("challenger", challenger)],
                                   className="d-flex gap-5"), table]),
        ], id=f"models-card-{model}"), lg=4))
    return dbc.Row(cards, className="g-3")


def _events_table(events: list[dict]):
    shown = [e for e in events if e["event_type"] != "training_epoch"][:40]
    if not shown:
        return empty_state("No decisions yet.", "Promotions, challengers kept back and labels set on the Review "
                           "page are listed here as they happen.")
    return dbc.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("when", "what", "details")])),
        html.Tbody([html.Tr([html.Td(when(e["created_at"]), className="text-nowrap"),
                             html.Td(dbc.Badge(EVENT_WORDS.get(e["event_type"], (e["event_type"], "light"))[0],
                                               color=EVENT_WORDS.get(e["event_type"], ("", "light"))[1])),
                             html.Td(e["message"])]) for e in shown]),
    ], size="sm", hover=True, id="models-events-table")


@callback(
    Output("models-training", "children"), Output("models-registry", "children"), Output("models-events", "children"),
    Input("models-interval", "n_intervals"),
)
def refresh(_n):
    events = data.read(lifecycle_events, 200)
    return _training(events), _registry_cards(), _events_table(events)
