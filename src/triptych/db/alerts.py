"""Prometheus alerts, as Alertmanager reports them, kept in `system_events`: a row
when an alert starts firing, one more for each of Alertmanager's reminders while
it still fires (every REPEAT_MINUTES; a repeat inside that window is deduplicated),
and one when it resolves. An alert is active while its latest row is a firing one
younger than ACTIVE_MINUTES: one that stopped being reported (its Prometheus
restarted and forgot it) drops out by itself."""

from __future__ import annotations

import json
import time

REPEAT_MINUTES = 10
ACTIVE_MINUTES = 15
SEVERITIES = {"info": "info", "warning": "warning", "critical": "critical", "page": "critical"}

ACTIVE = """
SELECT * FROM (
    SELECT DISTINCT ON (details->>'fingerprint')
           event_type, severity, component, message, details, created_at
    FROM system_events
    WHERE event_type IN ('alert_firing', 'alert_resolved') AND created_at > now() - interval '7 days'
    ORDER BY details->>'fingerprint', created_at DESC
) latest
WHERE event_type = 'alert_firing' AND created_at > now() - make_interval(mins => %(active)s)
ORDER BY created_at DESC
"""


def record_alert(cur, alert: dict) -> None:
    """One alert of an Alertmanager webhook (its `status`, `labels`, `annotations`,
    `startsAt`, `fingerprint`) as a `system_events` row."""
    labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
    status = "resolved" if alert.get("status") == "resolved" else "firing"
    name = labels.get("alertname", "alert")
    summary = annotations.get("summary") or annotations.get("description") or ""
    cur.execute(
        "SELECT log_system_event(%s, %s, %s, %s, %s::jsonb, NULL, %s)",
        (
            f"alert_{status}",
            "info" if status == "resolved" else SEVERITIES.get(labels.get("severity"), "warning"),
            labels.get("function") or labels.get("model") or "prometheus",
            f"{name} {'resolved' if status == 'resolved' else 'firing'}: {summary}"[:1000],
            json.dumps(
                {
                    "alertname": name,
                    "labels": labels,
                    "annotations": annotations,
                    "starts_at": alert.get("startsAt"),
                    "ends_at": alert.get("endsAt"),
                    "fingerprint": alert.get("fingerprint") or json.dumps(labels, sort_keys=True),
                }
            ),
            f"alert:{alert.get('fingerprint')}:{alert.get('startsAt')}:{status}"
            + (f":{int(time.time() // (REPEAT_MINUTES * 60))}" if status == "firing" else ""),
        ),
    )


def active_alerts(cur) -> list[dict]:
    """Alerts whose latest report is `firing`, newest first."""
    cur.execute(ACTIVE, {"active": ACTIVE_MINUTES})
    return [dict(row) for row in cur.fetchall()]
