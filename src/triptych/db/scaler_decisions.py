"""The scaler's decisions as the supervisors record them in `system_events`
(`function_scaled`): the latest per function, for the Live page's health list."""

from __future__ import annotations

LATEST = """
SELECT DISTINCT ON (component) component AS function, message, details, created_at
FROM system_events
WHERE event_type = 'function_scaled' AND created_at > now() - make_interval(mins => %(minutes)s)
ORDER BY component, created_at DESC
"""


def latest_scaling(cur, minutes: int = 60) -> dict[str, dict]:
    """{function: {message, details (from, to, reason), created_at}} of the last hour."""
    cur.execute(LATEST, {"minutes": minutes})
    return {row["function"]: dict(row) for row in cur.fetchall()}
