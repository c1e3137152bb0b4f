"""Durations as people and Nuclio write them: "30s", "5m", "1h30m", "500ms", "1.5h"."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration such as '1h30m', '90s' or '500ms'."""
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (use e.g. '30s', '5m', '1h30m')")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
