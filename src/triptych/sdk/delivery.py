"""The delivery wrapper: bounded retries with backoff, dead letters and permanent
errors inside the handler, so the guarantees hold whoever calls it, the local
runner or Nuclio's own processor.

    from triptych.sdk import PermanentError, delivered

    @delivered(batches=True)
    def handler(context, events):      # a list of events; one result per event
        ...

For an event of a Kafka trigger the wrapper

- skips a replayed event addressed to another function (`triptych dlq replay`
  resends to the origin topic, which every consumer group reads);
- calls the handler; on an error retries with exponential backoff up to
  ``max_attempts`` (once for `PermanentError`); a batch that keeps failing is
  retried one event at a time so only the culprits are given up on;
- dead-letters what it gives up on (the `dead-letters` topic, a `system_events`
  row, a dedup key per consumer group and offset) and returns normally;
- returns only once every event is handled or dead-lettered. Nuclio's processor
  marks a Kafka offset when the handler returns without error (explicitAckMode
  "disable"), and the local runner commits after the call, so an offset is never
  marked before its event is settled. If a dead letter cannot be written (Kafka
  or Postgres away), the wrapper keeps trying rather than raise: a raise would
  let the next event's offset pass this one unsettled.

HTTP and cron events go straight to the handler.

Settings come from the function's environment: ``TRIPTYCH_DELIVERY``, which the
declaration (`triptych.runtime.declare.nuclio_function`) writes from the same
`Delivery` objects the Kafka triggers carry.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..config import get_settings
from ..contracts import HEADER_TARGET_FUNCTION, TOPIC_DEAD_LETTERS
from . import metrics
from .dead_letters import DeadLetterSink, dead_letter_for
from .errors import PermanentError

log = logging.getLogger("triptych.sdk.delivery")

DELIVERY_ENV = "TRIPTYCH_DELIVERY"
KAFKA_KINDS = ("kafka-cluster", "kafka")
# Read by the local runner: such a handler is called with a list of events.
BATCH_ATTRIBUTE = "triptych_takes_batches"
DELIVERED_ATTRIBUTE = "triptych_delivered"
MAX_BACKOFF_S = 10.0
MAX_DEAD_LETTER_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Delivery:
    """How a Kafka trigger's events are delivered to a handler. Batching is the
    local runner's (Nuclio 1.14 calls a handler once per Kafka record); retries
    and dead letters are the wrapper's, under either."""

    batch_size: int = 1
    batch_wait_ms: int = 0
    max_attempts: int = 3
    retry_backoff_ms: int = 200
    dead_letter_topic: str = TOPIC_DEAD_LETTERS

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_attempts < 1 or self.batch_wait_ms < 0 or self.retry_backoff_ms < 0:
            raise ValueError(f"invalid delivery settings: {self}")


@dataclass(frozen=True)
class TriggerDelivery:
    consumer_group: str
    delivery: Delivery


@dataclass(frozen=True)
class DeliveryPlan:
    """A function's name and, per Kafka trigger, its consumer group and delivery."""

    function: str
    triggers: dict[str, TriggerDelivery]

    def to_env(self) -> str:
        return json.dumps(
            {
                "function": self.function,
                "triggers": {
                    name: {"consumer_group": t.consumer_group, **asdict(t.delivery)}
                    for name, t in self.triggers.items()
                },
            },
            sort_keys=True,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DeliveryPlan:
        raw = json.loads(environ.get(DELIVERY_ENV) or "{}")
        function = raw.get("function") or environ.get("NUCLIO_FUNCTION_NAME") or "unknown"
        triggers: dict[str, TriggerDelivery] = {}
        for name, entry in (raw.get("triggers") or {}).items():
            entry = dict(entry)
            group = entry.pop("consumer_group", function)
            triggers[name] = TriggerDelivery(group, Delivery(**entry))
        return cls(function, triggers)

    def for_trigger(self, name: str) -> TriggerDelivery:
        return self.triggers.get(name) or TriggerDelivery(self.function, Delivery())


def _header(event: Any, name: str) -> str | None:
    for key, value in (event.headers or {}).items():
        key = key.decode(errors="replace") if isinstance(key, bytes) else key
        if key == name:
            return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)
    return None


def image_ids(events: list[Any]) -> list[str]:
    """The image ids the events' JSON bodies name (ImageMessage, PredictionMessage),
    so retries and dead letters show up in `triptych logs --image ID`. Only called
    on a failure, and never raises: the body may be anything (deeply nested JSON
    raises RecursionError, not ValueError), and the wrapper must not crash on it."""
    ids: list[str] = []
    for event in events:
        body = event.body
        try:
            body = json.loads(body) if isinstance(body, (bytes, str)) else body
        except (ValueError, RecursionError):  # not JSON (or not UTF-8): it names no image
            continue
        if isinstance(body, dict) and isinstance(body.get("image_id"), str):
            ids.append(body["image_id"])
    return ids


class _Sinks:
    """One dead-letter producer per topic and process, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: dict[str, Any] = {}

    def get(self, topic: str) -> Any:
        with self._lock:
            if topic not in self._sinks:
                self._sinks[topic] = DeadLetterSink(get_settings(), topic)
            return self._sinks[topic]


_SINKS = _Sinks()


class Deliverer:
    """Wraps one handler; see the module's docstring."""

    def __init__(
        self,
        fn: Callable[..., Any],
        batches: bool,
        plan: Callable[[], DeliveryPlan] | None = None,
        sink: Callable[[str], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.fn = fn
        self.batches = batches
        self._plan_source = plan or DeliveryPlan.from_env
        self._plan: DeliveryPlan | None = None
        self.sink = sink or _SINKS.get
        self.sleep = sleep

    @property
    def plan(self) -> DeliveryPlan:
        if self._plan is None:  # read once the function's env is in place, not at import
            self._plan = self._plan_source()
        return self._plan

    def __call__(self, context: Any, event_or_events: Any) -> Any:
        single = not isinstance(event_or_events, list)
        events = [event_or_events] if single else event_or_events
        if not events:
            return None if single else []
        if events[0].trigger.kind not in KAFKA_KINDS:
            results = self._call(context, events)
        else:
            results = self._deliver(context, events)
        return results[0] if single else results

    # -- calling the handler ---------------------------------------------------
    def _call(self, context: Any, events: list[Any]) -> list[Any]:
        if self.batches:
            results = self.fn(context, events)
            return list(results) if results is not None else [None] * len(events)
        return [self.fn(context, event) for event in events]

    def _deliver(self, context: Any, events: list[Any]) -> list[Any]:
        plan = self.plan
        trigger = events[0].trigger.name
        route = plan.for_trigger(trigger)
        labels = {"function": plan.function, "trigger": trigger}
        results: list[Any] = [None] * len(events)
        mine = [i for i, e in enumerate(events) if _header(e, HEADER_TARGET_FUNCTION) in (None, plan.function)]
        if len(mine) < len(events):
            metrics.SKIPPED.labels(**labels).inc(len(events) - len(mine))
        if not mine:
            return results
        chosen = [events[i] for i in mine]
        outcome, failure = self._with_retries(lambda: self._call(context, chosen), route.delivery, labels, chosen)
        if failure is None and outcome is not None:
            for i, result in zip(mine, outcome):
                results[i] = result
            return results
        if len(chosen) > 1:
            context.logger.warn_with(
                "batch failed, retrying its events one by one", size=len(chosen), error=str(failure and failure[0])
            )
        for i in mine:
            if len(chosen) > 1:
                one = events[i]
                outcome, failure = self._with_retries(
                    functools.partial(self._call, context, [one]), route.delivery, labels, [one]
                )
            if failure is None and outcome is not None:
                results[i] = outcome[0]
            elif failure is not None:
                self._dead_letter(context, events[i], plan.function, route, *failure)
                metrics.DEAD_LETTERS.labels(**labels).inc()
        return results

    def _with_retries(
        self, call: Callable[[], list[Any]], delivery: Delivery, labels: dict[str, str], events: list[Any]
    ) -> tuple[list[Any] | None, tuple[BaseException, int] | None]:
        """(results, None) on success, or (None, (last error, attempts made)). `events`:
        what the call handles, named in the log line of a retry."""
        for attempt in range(1, delivery.max_attempts + 1):
            try:
                return call(), None
            except PermanentError as exc:
                metrics.ERRORS.labels(**labels).inc()
                return None, (exc, attempt)
            except Exception as exc:  # noqa: BLE001 - any handler error is retried, then dead-lettered
                metrics.ERRORS.labels(**labels).inc()
                if attempt == delivery.max_attempts:
                    return None, (exc, attempt)
                metrics.RETRIES.labels(**labels).inc()
                log.warning(
                    "retrying",
                    extra={
                        "stage": "retry",
                        "attempt": attempt,
                        "image_ids": image_ids(events),
                        "error": f"{type(exc).__name__}: {exc}"[:500],
                    },
                )
                self.sleep(min(delivery.retry_backoff_ms / 1000 * 2 ** (attempt - 1), MAX_BACKOFF_S))
        raise AssertionError("unreachable: max_attempts >= 1")

    def _dead_letter(
        self, context: Any, event: Any, function: str, route: TriggerDelivery, error: BaseException, attempts: int
    ) -> None:
        letter = dead_letter_for(event, function, route.consumer_group, error, attempts=attempts)
        tries = 0
        while True:
            try:
                self.sink(route.delivery.dead_letter_topic).send(letter)
                break
            except Exception as exc:  # noqa: BLE001 - keep the event unsettled until its letter is written
                tries += 1
                log.error(
                    "%s: cannot write the dead letter for %s[%s]@%s (try %d): %r; retrying",
                    function,
                    letter.origin.topic,
                    letter.origin.partition,
                    letter.origin.offset,
                    tries,
                    exc,
                )
                self.sleep(min(0.5 * 2**tries, MAX_DEAD_LETTER_BACKOFF_S))
        context.logger.error_with(
            "dead-lettered",
            stage="dead-letter",
            image_ids=image_ids([event]),
            topic=letter.origin.topic,
            partition=letter.origin.partition,
            offset=letter.origin.offset,
            attempts=attempts,
            error=str(error)[:500],
        )


def delivered(fn: Callable[..., Any] | None = None, *, batches: bool = False, **options: Any) -> Any:
    """Give a handler the delivery guarantees. ``batches=True``: ``fn(context,
    events) -> results or None``; Nuclio's processor calls with one event, the
    wrapper passes ``[event]`` and returns the one result. Used bare
    (``@delivered``) or with arguments (``@delivered(batches=True)``); ``options``
    are `Deliverer`'s (tests pass a fake sink and sleep)."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        deliverer = Deliverer(handler, batches, **options)

        @functools.wraps(handler)
        def wrapper(context: Any, event_or_events: Any) -> Any:
            return deliverer(context, event_or_events)

        setattr(wrapper, BATCH_ATTRIBUTE, batches)
        setattr(wrapper, DELIVERED_ATTRIBUTE, True)
        wrapper.deliverer = deliverer  # type: ignore[attr-defined]  # tests reach the Deliverer through it
        return wrapper

    return wrap(fn) if fn is not None else wrap
