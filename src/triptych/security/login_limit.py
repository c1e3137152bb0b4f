"""Brute-force guard for the dashboard's sign-in: failed attempts are counted per user
name and per client address over a sliding window, in Postgres (every dashboard
replica shares the count). Past a limit, sign-in is refused (429) until the window
slides: a locked user does not lock anyone else, and one address hammering many
names is stopped by its own count. Successful sign-ins are not counted."""

from __future__ import annotations

WINDOW_S = 60


def wait_before_trying(cur, limits: dict[str, int]) -> float | None:
    """Seconds to wait when any subject ({subject: limit}) has used its failures in the window; else None."""
    waits = []
    for subject, limit in limits.items():
        cur.execute(
            """SELECT count(*) AS n, extract(epoch FROM min(failed_at) + make_interval(secs => %s) - now())
                              AS left_s
                       FROM (SELECT failed_at FROM dashboard_login_failures
                             WHERE subject = %s AND failed_at > now() - make_interval(secs => %s)
                             ORDER BY failed_at DESC LIMIT %s) recent""",
            (WINDOW_S, subject, WINDOW_S, limit),
        )
        row = cur.fetchone()
        if row["n"] >= limit:
            waits.append(max(float(row["left_s"] or 1.0), 1.0))
    return max(waits) if waits else None


def record_failure(cur, subjects: list[str]) -> None:
    for subject in subjects:
        cur.execute("INSERT INTO dashboard_login_failures (subject) VALUES (%s)", (subject,))
    cur.execute(
        "DELETE FROM dashboard_login_failures WHERE failed_at < now() - make_interval(secs => %s)", (WINDOW_S * 10,)
    )
