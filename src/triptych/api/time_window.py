"""The one reading of a request's `since` and `until` (REST and GraphQL alike).

Lists look at everything by default: from an early epoch to a day ahead of now (a
row stamped by a host whose clock runs ahead still counts), cheap because they read
newest first on indexed timestamps. Statistics aggregate, so by default they take
the last hour and never more than 31 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import ApiError

# The earliest instant a list looks at when no `since` is given.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def time_window(
    since: datetime | None,
    until: datetime | None,
    default_span: timedelta | None = None,
    max_span: timedelta | None = None,
) -> tuple[datetime, datetime]:
    """[since, until). Unset `until`: now, or a day ahead of now when there is no
    `default_span`; unset `since`: `default_span` before `until`, or EPOCH.
    400 `bad_time_range` when since is not before until, or the window is longer
    than `max_span`."""
    now = datetime.now(UTC)
    end = until or (now if default_span else now + timedelta(days=1))
    try:
        start = since or (end - default_span if default_span else EPOCH)
    except OverflowError as exc:
        raise ApiError(400, "bad_time_range", "`until` is out of range") from exc
    if start >= end:
        raise ApiError(
            400, "bad_time_range", f"`since` ({start.isoformat()}) must be before `until` ({end.isoformat()})"
        )
    if max_span is not None and end - start > max_span:
        raise ApiError(400, "bad_time_range", f"`since` must be at most {max_span.days} days before `until`")
    return start, end


def list_window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """A list's window: everything by default."""
    return time_window(since, until)


def stats_window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """A statistic's window: the last hour by default, 31 days at most."""
    return time_window(since, until, default_span=timedelta(hours=1), max_span=timedelta(days=31))
