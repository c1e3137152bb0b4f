"""The one since/until reading of the API (api.time_window): lists and statistics differ
only in their defaults and bound."""

from datetime import UTC, datetime, timedelta

import pytest

from triptych.api.errors import ApiError
from triptych.api.time_window import EPOCH, list_window, stats_window

NOON = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_a_list_looks_at_everything_by_default_up_to_a_day_ahead():
    start, end = list_window(None, None)
    assert start == EPOCH
    assert timedelta(hours=23) < end - datetime.now(UTC) <= timedelta(days=1)


def test_a_statistic_takes_the_last_hour_by_default_and_before_until():
    start, end = stats_window(None, None)
    assert end - start == timedelta(hours=1) and abs(datetime.now(UTC) - end) < timedelta(seconds=5)
    assert stats_window(None, NOON) == (NOON - timedelta(hours=1), NOON)


@pytest.mark.parametrize("window", [list_window, stats_window])
def test_since_after_until_is_a_400_naming_both(window):
    with pytest.raises(ApiError) as refused:
        window(NOON, NOON - timedelta(minutes=1))
    assert refused.value.status == 400 and refused.value.code == "bad_time_range"
    assert "must be before" in str(refused.value)


def test_a_statistic_spans_31_days_at_most_and_a_list_any_span():
    with pytest.raises(ApiError) as refused:
        stats_window(NOON - timedelta(days=32), NOON)
    assert refused.value.code == "bad_time_range" and "31 days" in str(refused.value)
    assert stats_window(NOON - timedelta(days=31), NOON)[0] == NOON - timedelta(days=31)
    assert list_window(NOON - timedelta(days=3000), NOON)[0] == NOON - timedelta(days=3000)


def test_an_until_too_early_for_the_default_span_is_a_400_not_a_crash():
    with pytest.raises(ApiError) as refused:
        stats_window(None, datetime.min.replace(tzinfo=UTC))
    assert refused.value.code == "bad_time_range"
