"""The dashboard's pure pieces: time ranges, series steps, URL filters, thumbnails."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image, UnidentifiedImageError

from dash_app import data
from dash_app.media import make_thumbnail
from triptych.db.queries import HistoryFilter, series_step

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_time_ranges_end_now_and_unknown_ones_are_refused():
    assert data.time_range("1h", NOW) == (NOW - timedelta(hours=1), NOW)
    assert data.time_range("30d", NOW)[0] == NOW - timedelta(days=30)
    with pytest.raises(ValueError, match="unknown time range 'forever'"):
        data.time_range("forever", NOW)
    assert set(data.RANGES) == set(data.RANGE_LABELS)


@pytest.mark.parametrize(
    "span, minutes",
    [(timedelta(minutes=15), 1), (timedelta(hours=1), 1), (timedelta(hours=24), 7), (timedelta(days=30), 181)],
)
def test_series_steps_are_whole_minutes_and_bound_the_points(span, minutes):
    step = series_step(NOW - span, NOW)
    assert step == timedelta(minutes=minutes)
    assert span / step <= 240


def test_url_filters_that_make_no_sense_are_named_and_dropped():
    from dash_app.pages.history import _check

    clean, problems = _check(
        {"range": "7d", "model": "resnet50", "agreement": "sometimes", "correct": "maybe", "colour": "red", "q": "cat"}
    )
    assert clean == {"range": "7d", "model": "resnet50", "q": "cat"}
    assert problems == ["agreement=sometimes", "correct=maybe", "colour=red"]


def test_history_filter_binds_values_as_parameters_never_as_sql():
    f = HistoryFilter(
        start=NOW, end=NOW, model="resnet50'; DROP TABLE images; --", predicted_class="cat", search="50%_off"
    )
    where = f.where()
    assert "DROP" not in where and "%(model)s" in where
    assert f.params["search"] == "%50\\%\\_off%"
    with pytest.raises(ValueError, match="unknown agreement"):
        HistoryFilter(start=NOW, end=NOW, agreement="sometimes").where()


def test_thumbnails_are_small_jpegs_and_garbage_is_refused():
    big = io.BytesIO()
    Image.new("RGB", (1600, 900), (10, 200, 30)).save(big, "JPEG")
    thumb = Image.open(io.BytesIO(make_thumbnail(big.getvalue(), 160)))
    assert thumb.format == "JPEG" and max(thumb.size) == 160 and thumb.size[0] > thumb.size[1]
    with pytest.raises(UnidentifiedImageError):
        make_thumbnail(b"not an image", 160)


def test_health_says_which_functions_run_start_or_are_down():
    from dash_app.pages.live import _health

    snapshot = {
        "services": [
            {"name": "postgres", "state": "up", "rss_mb": 120.0},
            {"name": "functions", "state": "disabled", "rss_mb": None},
        ],
        "functions": {
            "ingest": {"desired": 2, "running": 2, "starting": 0, "restarts": 1},
            "infer-resnet50": {"desired": 1, "running": 0, "starting": 1, "restarts": 0},
            "aggregate": {"desired": 1, "running": 0, "starting": 0, "restarts": 3},
            "retrain": {"desired": 0, "running": 0, "starting": 0, "restarts": 0},
        },
    }
    *alerts, health_list = _health(snapshot).children
    assert alerts == []
    items = {li.id: li for li in health_list.children}
    words = {name: items[f"live-health-{name}"].children[2].children for name in snapshot["functions"]}
    dots = {name: items[f"live-health-{name}"].children[0].className for name in snapshot["functions"]}
    assert words == {
        "ingest": "2/2 running, 1 restarts",
        "infer-resnet50": "0/1 running, 1 starting",
        "aggregate": "0/1 running, 3 restarts",
        "retrain": "at zero, wakes on demand",
    }
    assert dots == {
        "ingest": "dot up",
        "infer-resnet50": "dot starting",
        "aggregate": "dot down",
        "retrain": "dot idle",
    }
    assert "live-health-functions" not in items  # a disabled service is left out
    assert not any(key.startswith("live-scaling-") for key in items)  # no decision in the last hour


def test_the_scalers_last_decision_shows_under_its_function():
    from datetime import datetime

    from dash_app.pages.live import _health

    snapshot = {
        "services": [],
        "functions": {"infer-resnet50": {"desired": 2, "running": 2, "starting": 0, "restarts": 0}},
        "scaling": {
            "infer-resnet50": {
                "message": "infer-resnet50 1 → 2 (lag 340)",
                "created_at": datetime(2026, 12, 3, 14, 5, 9),
            }
        },
    }
    *_, health_list = _health(snapshot).children
    items = {li.id: li for li in health_list.children}
    assert items["live-scaling-infer-resnet50"].children.children == "infer-resnet50 1 → 2 (lag 340) · 14:05:09"


def test_firing_alerts_show_above_the_health_list_with_their_summary():
    from datetime import datetime

    from dash_app.pages.live import _health

    alert = {
        "severity": "critical",
        "message": "FunctionHasNoHealthyReplica firing: ingest has no healthy replica",
        "created_at": datetime(2026, 11, 27, 1, 24),
        "details": {
            "alertname": "FunctionHasNoHealthyReplica",
            "fingerprint": "abc",
            "annotations": {"summary": "ingest has no healthy replica"},
        },
    }
    card, health_list = _health({"services": [], "functions": {}, "alerts": [alert]}).children
    assert card.id == "live-alert-abc" and card.children[0].children[1] == "ingest has no healthy replica"
    assert card.children[1].children == "FunctionHasNoHealthyReplica · critical · since 01:24"


def test_rates_keep_the_digits_that_matter():
    from dash_app.components import rate

    assert [rate(v) for v in (None, 0, 0.0025, 0.13, 42.4)] == ["–", "0 img/s", "0.1 img/min", "0.13 img/s", "42 img/s"]
