"""Upload rate limits, counted in Postgres so every replica of the API and of the
upload function shares one budget per caller.

A fixed one-minute window: simple and exact to test; a caller may burst up to twice
its limit across a minute boundary, which is acceptable for a guard against floods.
"""

from __future__ import annotations

import random

# Windows older than this are dropped now and then by a writer (no cron needed).
_KEEP = "1 hour"
_CLEANUP_CHANCE = 0.01


def charge(cur, caller: str, count: int, limit: int) -> float | None:
    """Count `count` uploads for `caller` in this minute. None when within `limit`;
    else the seconds until the window ends, and nothing is counted."""
    cur.execute(
        """INSERT INTO api_rate_windows (caller, window_start, used) VALUES (%s, date_trunc('minute', now()), %s)
           ON CONFLICT (caller, window_start) DO UPDATE SET used = api_rate_windows.used + EXCLUDED.used
           RETURNING used, extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now()) AS left_s""",
        (caller, count),
    )
    row = cur.fetchone()
    used, left_s = (row["used"], row["left_s"]) if isinstance(row, dict) else row
    if used > limit:
        cur.execute(
            "UPDATE api_rate_windows SET used = used - %s WHERE caller = %s AND window_start = "
            "date_trunc('minute', now())",
            (count, caller),
        )
        return max(float(left_s), 1.0)
    if random.random() < _CLEANUP_CHANCE:
        cur.execute(f"DELETE FROM api_rate_windows WHERE window_start < now() - interval '{_KEEP}'")
    return None
