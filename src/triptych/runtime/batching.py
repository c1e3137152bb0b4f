"""Handlers that take a list of events at once (one batched forward pass, one
multi-row upsert).

Under the local runner a Kafka trigger with ``batch_size > 1`` calls such a handler
with a list. Nuclio's own Kafka trigger delivers one event per call; the wrapper
then passes ``[event]`` and returns the single result, so the same handler deploys
unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .nuclio_compat import BATCH_ATTRIBUTE


def batch_handler(fn: Callable[[Any, list], list | None]) -> Callable:
    """Mark ``fn(context, events) -> results or None`` as taking batches."""

    @functools.wraps(fn)
    def handler(context, event_or_events):
        if isinstance(event_or_events, list):
            return fn(context, event_or_events)
        results = fn(context, [event_or_events])
        return results[0] if results else None

    setattr(handler, BATCH_ATTRIBUTE, True)
    return handler
