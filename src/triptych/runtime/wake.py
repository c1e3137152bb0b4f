"""What a function that may sleep (min 0) waits for besides its topic's lag:

- **a cron tick**: a `schedule` trigger wakes it `scale_cron_lead_s` before its
  next time, so the replica is up when the tick comes (its own cron runner fires
  it); an `interval` trigger keeps it awake (it would tick before it could sleep);
- **a declared condition** (`wake_when` in the declaration, the annotation
  `triptych.io/wake-when` in project.yaml): `challenger` for `infer-shadow`, which
  has nothing to do, however many images arrive, while no model has a challenger;
  `int8` for `infer-int8`, idle likewise while no champion has a published int8 export.

HTTP requests held at zero are the supervisor's sockets' business (`listeners`).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime

from croniter import croniter

from ..config import Settings
from ..models.zoo import architecture
from .spec import CronTriggerSpec, FunctionSpec

log = logging.getLogger("triptych.runtime.wake")


def cron_due(spec: FunctionSpec, lead_s: float, now: float | None = None) -> bool:
    """A cron tick of the function comes within `lead_s` (an interval cron: always)."""
    now = time.time() if now is None else now
    for trigger in spec.triggers:
        if not isinstance(trigger, CronTriggerSpec):
            continue
        if trigger.interval:
            return True
        upcoming = croniter(trigger.schedule, datetime.fromtimestamp(now, UTC)).get_next(float)
        if upcoming - now <= lead_s:
            return True
    return False


def _alias_versions(settings: Settings, alias: str) -> list[dict]:
    """Each active model's version under `alias` in the MLflow registry, as its REST
    API returns it (tags included), for the models that have one. Read over REST:
    the supervisor stays free of MLflow's client and its imports."""
    found = []
    for model in settings.active_models:
        query = urllib.parse.urlencode({"name": architecture(model).registered_name, "alias": alias})
        url = f"{settings.mlflow_url}/api/2.0/mlflow/registered-models/alias?{query}"
        try:
            with urllib.request.urlopen(url, timeout=3) as reply:
                if version := json.load(reply).get("model_version"):
                    found.append(version)
        except urllib.error.HTTPError as exc:
            # 404: no such model yet; 400 with "alias ... not found": a model without that alias.
            if (
                exc.code == 400
                and "alias" in (reason := json.loads(exc.read() or b"{}").get("message", ""))
                and "not found" in reason
            ):
                continue
            if exc.code != 404:
                raise
    return found


def challenger_exists(settings: Settings) -> bool:
    """Some active model has a `challenger` alias: `infer-shadow` has work."""
    return bool(_alias_versions(settings, "challenger"))


def int8_published(settings: Settings) -> bool:
    """Some active model's champion has a published int8 export (tag `int8.published`,
    set by `triptych models quantize`): the int8 twin, `infer-int8`, has work."""
    return any(
        {t["key"]: t.get("value") for t in version.get("tags", [])}.get("int8.published") == "true"
        for version in _alias_versions(settings, "champion")
    )


CONDITIONS: dict[str, Callable[[Settings], bool]] = {"challenger": challenger_exists, "int8": int8_published}
# Each condition in words, for `triptych functions` ("wakes on ...").
DESCRIPTIONS = {"challenger": "a challenger", "int8": "a champion's published int8 export"}


def condition(name: str) -> Callable[[Settings], bool]:
    if name not in CONDITIONS:
        raise ValueError(f"unknown wake condition {name!r}; known: {', '.join(sorted(CONDITIONS))}")
    return CONDITIONS[name]
