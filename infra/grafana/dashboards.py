"""Triptych's Grafana dashboard, generated from code with grafana-foundation-sdk
(Grafana's own builders, so the JSON follows its schema). For users who run
Grafana (`infra/compose` provisions it); the Dash app needs none of this.

    python infra/grafana/dashboards.py            # write infra/grafana/dashboards/triptych.json
    python infra/grafana/dashboards.py --check    # exit 1 if that file is stale

Every query reads metrics the functions, the supervisor, the API or the dashboard
export; tests/integration/test_observability.py checks them against a live scrape.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders.common import VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUT = Path(__file__).resolve().parent / "dashboards" / "triptych.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    return Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def series(title: str, unit: str, *queries: Dataquery, width: int = 12, description: str = "") -> Timeseries:
    panel = (
        Timeseries()
        .title(title)
        .description(description)
        .unit(unit)
        .span(width)
        .height(8)
        .datasource(DATASOURCE)
        .legend(
            VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM).show_legend(True)
        )
    )
    for q in queries:
        panel = panel.with_target(q)
    return panel


def stat(title: str, unit: str, expr: str, width: int = 6) -> Stat:
    return Stat().title(title).unit(unit).span(width).height(4).datasource(DATASOURCE).with_target(query(expr))


def build() -> dict:
    dashboard = (
        Dashboard("Triptych")
        .uid("triptych")
        .tags(["triptych", "generated"])
        .refresh("10s")
        .time("now-1h", "now")
        .timezone("browser")
        .description("Three image classifiers on one stream: throughput, agreement, latency, lag, failures.")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_row(Row("Pipeline"))
        .with_panel(stat("Images compared / s", "reqps", "sum(rate(triptych_comparisons_total[1m]))"))
        .with_panel(
            stat(
                "All three agree",
                "percentunit",
                'sum(rate(triptych_comparisons_total{agreement="all"}[5m]))'
                " / sum(rate(triptych_comparisons_total[5m]))",
            )
        )
        .with_panel(stat("Dead letters, last hour", "short", "sum(increase(triptych_function_dead_letters_total[1h]))"))
        .with_panel(
            stat(
                "Replicas running / wanted",
                "percentunit",
                "sum(triptych_function_replicas_running) / sum(triptych_function_replicas_desired)",
            )
        )
        .with_panel(
            series(
                "Events handled / s",
                "reqps",
                query("sum by (function) (rate(triptych_function_events_total[1m]))", "{{function}}"),
            )
        )
        .with_panel(
            series(
                "Consumer lag",
                "short",
                query("sum by (function) (triptych_function_consumer_lag)", "{{function}}"),
                description="Messages each function's consumer group is behind.",
            )
        )
        .with_panel(
            series(
                "Errors and retries / s",
                "reqps",
                query("sum by (function) (rate(triptych_function_errors_total[5m]))", "{{function}} errors"),
                query("sum by (function) (rate(triptych_function_retries_total[5m]))", "{{function}} retries", "B"),
            )
        )
        .with_panel(
            series(
                "Dead letters",
                "short",
                query("sum by (function) (increase(triptych_function_dead_letters_total[5m]))", "{{function}}"),
            )
        )
        .with_row(Row("Models"))
        .with_panel(
            series(
                "p95 inference time per image",
                "s",
                query(
                    "histogram_quantile(0.95, sum by (model, le) (rate(triptych_inference_seconds_bucket[5m])))",
                    "{{model}}",
                ),
            )
        )
        .with_panel(
            series(
                "p95 image time (fetch, decode, preprocess, inference)",
                "s",
                query(
                    "histogram_quantile(0.95, sum by (model, le) (rate(triptych_image_seconds_bucket[5m])))",
                    "{{model}}",
                ),
            )
        )
        .with_panel(
            series(
                "p95 handler time per call",
                "s",
                query(
                    "histogram_quantile(0.95, sum by (function, le) "
                    "(rate(triptych_function_handler_seconds_bucket[5m])))",
                    "{{function}}",
                ),
            )
        )
        .with_panel(
            series(
                "Mean batch size",
                "short",
                query(
                    "sum by (function) (rate(triptych_function_batch_size_sum[5m]))"
                    " / sum by (function) (rate(triptych_function_batch_size_count[5m]))",
                    "{{function}}",
                ),
            )
        )
        .with_panel(
            series(
                "Predictions / s by model",
                "reqps",
                query("sum by (model) (rate(triptych_predictions_total[1m]))", "{{model}}"),
            )
        )
        .with_panel(
            series(
                "Challengers in shadow: live accuracy",
                "percentunit",
                query("triptych_shadow_accuracy", "{{model}} {{role}}"),
            )
        )
        .with_row(Row("API and dashboard"))
        .with_panel(
            series(
                "API requests / s",
                "reqps",
                query("sum by (status) (rate(triptych_api_requests_total[1m]))", "{{status}}"),
            )
        )
        .with_panel(
            series(
                "Dashboard requests / s",
                "reqps",
                query("sum by (kind) (rate(triptych_dashboard_requests_total[1m]))", "{{kind}}"),
            )
        )
    )
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(dashboard.build()))


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON file is stale")
    text = render()
    if parser.parse_args().check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            sys.stdout.writelines(
                difflib.unified_diff(current.splitlines(True), text.splitlines(True), str(OUT), "generated")
            )
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
