"""The cron trigger: Nuclio's `interval` ("30s", "1h30m") or `schedule` (cron syntax).

A tick whose handler raises is logged and counted; the next tick runs as planned
(a cron job is not retried, as in Nuclio).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import nuclio_sdk
from croniter import croniter

from ..durations import parse_duration
from ..sdk import metrics
from .nuclio_compat import LoadedHandler, trigger_context
from .spec import CronTriggerSpec


def parse_interval(text: str) -> float:
    """A cron interval: a duration above zero (an interval of 0s would tick without pause)."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"a cron interval must be above zero, not {text!r}")
    return seconds


class CronTriggerRunner:
    def __init__(
        self,
        function: str,
        trigger: CronTriggerSpec,
        handler: LoadedHandler,
        stop: threading.Event,
        context,
        now: Callable[[], float] = time.time,
    ):
        if not trigger.interval and not trigger.schedule:
            raise ValueError(f"cron trigger {trigger.name!r} needs an interval or a schedule")
        self.now = now
        self.trigger = trigger
        self.handler = handler
        self.stop = stop
        self.context = trigger_context(context, "cron", trigger.name)
        self.labels = {"function": function, "trigger": trigger.name}
        self.interval = parse_interval(trigger.interval) if trigger.interval else None
        self.schedule = croniter(trigger.schedule, datetime.fromtimestamp(now(), UTC)) if trigger.schedule else None

    def next_delay(self) -> float:
        """Seconds until the next tick: the interval, or the schedule's next time from now."""
        if self.interval is not None:
            return self.interval
        assert self.schedule is not None  # __init__ refuses a trigger with neither
        return max(self.schedule.get_next(float) - self.now(), 0.0)

    def run(self) -> None:
        while not self.stop.wait(self.next_delay()):
            event = nuclio_sdk.Event(
                body=self.trigger.body,
                trigger=nuclio_sdk.TriggerInfo("cron", self.trigger.name),
                timestamp=datetime.now(UTC),
            )
            started = time.perf_counter()
            try:
                self.handler.handler(self.context, event)
                metrics.EVENTS.labels(**self.labels).inc()
            except Exception as exc:  # noqa: BLE001 - the next tick still runs
                metrics.ERRORS.labels(**self.labels).inc()
                self.context.logger.error_with("cron handler raised", error=repr(exc))
            finally:
                metrics.HANDLER_SECONDS.labels(**self.labels).observe(time.perf_counter() - started)
