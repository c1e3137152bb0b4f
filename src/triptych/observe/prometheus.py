"""Prometheus' HTTP query API, with a short timeout: a caller (a page, `/health`)
must answer promptly whether Prometheus is there or not."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from ..config import Settings

TIMEOUT_S = 2.0


class PrometheusUnavailable(RuntimeError):
    """Prometheus did not answer, or refused the query."""


def _get(settings: Settings, path: str, params: dict[str, Any]) -> Any:
    url = f"{settings.prometheus_url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            body = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise PrometheusUnavailable(f"Prometheus at {settings.prometheus_url} did not answer: {exc}") from exc
    if body.get("status") != "success":
        raise PrometheusUnavailable(f"Prometheus refused {params.get('query')!r}: {body.get('error')}")
    return body["data"]


def instant(settings: Settings, promql: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
    """Each series of an instant query: (its labels, its value now, or at `at`)."""
    params = {"query": promql, **({"time": at} if at is not None else {})}
    return [(r["metric"], float(r["value"][1])) for r in _get(settings, "query", params)["result"]]


def range_query(settings: Settings, promql: str, start: float, end: float, step_s: int) -> list[dict[str, Any]]:
    """Prometheus' `result` list of a range query (each: metric, values)."""
    result: list[dict[str, Any]] = _get(
        settings, "query_range", {"query": promql, "start": start, "end": end, "step": step_s}
    )["result"]
    return result
