"""Alerts: Alertmanager's webhook receiver (it writes `system_events`, so the
dashboard and `GET /alerts` show what fires) and the list of active alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, Field

from ...db.alerts import active_alerts, record_alert
from ..deps import Admin, Reader, Svc
from ..errors import responses

router = APIRouter(tags=["admin"])


def storable(text: str) -> str:
    """Text PostgreSQL can hold: no NUL, no lone UTF-16 surrogate (JSON allows both)."""
    if "\x00" in text:
        raise ValueError("text with a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text that is not valid Unicode (a lone surrogate)") from exc
    return text


Text = Annotated[str, Field(max_length=2000), AfterValidator(storable)]


class AlertmanagerAlert(BaseModel):
    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[Text, Text] = Field(default_factory=dict, max_length=64)
    annotations: dict[Text, Text] = Field(default_factory=dict, max_length=64)
    startsAt: Text | None = Field(default=None, max_length=64)  # noqa: N815 - Alertmanager's field names
    endsAt: Text | None = Field(default=None, max_length=64)  # noqa: N815
    fingerprint: Text | None = Field(default=None, max_length=64)


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook payload (version 4); fields this receiver does not use are ignored."""

    status: str = Field(pattern="^(firing|resolved)$")
    alerts: list[AlertmanagerAlert] = Field(max_length=1000)


class Alert(BaseModel):
    alertname: str
    severity: str
    component: str
    message: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    firing_since: datetime


@router.post("/alerts/alertmanager", status_code=204, responses=responses(401, 403, 422))
def alertmanager_webhook(body: AlertmanagerWebhook, svc: Svc, _: Admin) -> None:
    """Alertmanager's receiver (scope `admin`): each alert firing or resolved becomes a `system_events` row."""

    def record_all(cur) -> None:
        for alert in body.alerts:
            record_alert(cur, alert.model_dump())

    svc.db.transaction(record_all)


@router.get("/alerts", response_model=list[Alert], responses=responses(401))
def alerts(svc: Svc, _: Reader):
    """Alerts firing now (as Alertmanager last reported them), newest first."""
    return [
        {
            "alertname": a["details"].get("alertname", "alert"),
            "severity": a["severity"],
            "component": a["component"],
            "message": a["message"],
            "labels": a["details"].get("labels", {}),
            "annotations": a["details"].get("annotations", {}),
            "firing_since": a["created_at"],
        }
        for a in svc.read(active_alerts)
    ]
