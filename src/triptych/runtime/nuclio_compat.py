"""Calling a Nuclio handler the way Nuclio's Python wrapper does: a module with an
optional ``init_context(context)`` and a ``handler(context, event)``, with
nuclio-sdk's own Context, Event, Logger and Response types."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import nuclio_sdk

from ..sdk import BATCH_ATTRIBUTE, DELIVERED_ATTRIBUTE, delivered
from .spec import FunctionSpec


@dataclass
class LoadedHandler:
    module: ModuleType
    handler: Callable[[Any, Any], Any]
    init_context: Callable[[Any], None] | None

    @property
    def takes_batches(self) -> bool:
        return bool(getattr(self.handler, BATCH_ATTRIBUTE, False))


def load_handler(spec: FunctionSpec) -> LoadedHandler:
    # The function's folder goes on sys.path, as in a Nuclio image, so a handler
    # may import sibling modules.
    folder = str(spec.source.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_spec = importlib.util.spec_from_file_location(
        f"triptych_function_{spec.name.replace('-', '_')}", spec.source
    )
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {spec.source}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    handler = getattr(module, spec.handler, None)
    if not callable(handler):
        raise ImportError(f"{spec.source} has no handler function {spec.handler!r}")
    if not getattr(handler, DELIVERED_ATTRIBUTE, False):
        # A plain handler gets the same guarantees here; under Nuclio only `@delivered` gives them.
        handler = delivered(handler)
    return LoadedHandler(module=module, handler=handler, init_context=getattr(module, "init_context", None))


def make_logger(name: str) -> nuclio_sdk.Logger:
    """Nuclio's logger, its records passed on to the process' JSON logging
    (`triptych.logs`): its keyword fields become the line's fields."""
    return nuclio_sdk.Logger(logging.INFO, f"function.{name}")


def make_context(function: str, worker_id: int, trigger_kind: str, trigger_name: str) -> nuclio_sdk.Context:
    return nuclio_sdk.Context(
        logger=make_logger(function),
        platform=nuclio_sdk.Platform("local"),
        worker_id=worker_id,
        trigger=nuclio_sdk.TriggerInfo(trigger_kind, trigger_name),
    )


def trigger_context(base: nuclio_sdk.Context, trigger_kind: str, trigger_name: str) -> nuclio_sdk.Context:
    """A context for one trigger that shares the replica's user_data and logger."""
    context = nuclio_sdk.Context(
        logger=base.logger,
        platform=base.platform,
        worker_id=base.worker_id,
        trigger=nuclio_sdk.TriggerInfo(trigger_kind, trigger_name),
    )
    context.user_data = base.user_data
    return context


def decode_body(body: bytes, content_type: str | None) -> Any:
    """Nuclio's Python wrapper hands JSON bodies to handlers already decoded."""
    if content_type and content_type.split(";")[0].strip() == "application/json":
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def kafka_event(record, trigger_name: str) -> nuclio_sdk.Event:
    headers = {name: value.decode(errors="replace") for name, value in (record.headers or [])}
    return nuclio_sdk.Event(
        body=record.value,
        content_type=headers.get("content-type"),
        trigger=nuclio_sdk.TriggerInfo("kafka-cluster", trigger_name),
        headers=headers,
        fields={"key": record.key.decode(errors="replace") if record.key else None},
        _id=f"{record.topic}/{record.partition}/{record.offset}",
        path=record.topic,
        size=len(record.value or b""),
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp else None,
        shard_id=record.partition,
        offset=record.offset,
        topic=record.topic,
    )


def response_parts(output: Any) -> tuple[int, bytes, str, dict[str, str]]:
    """(status, body, content type, headers) of a handler's return value, as Nuclio answers it."""
    if isinstance(output, nuclio_sdk.Response):
        body = output.body
        content_type = output.content_type or "text/plain"
        if isinstance(body, (dict, list)):
            body, content_type = json.dumps(body).encode(), "application/json"
        elif isinstance(body, str):
            body = body.encode()
        return output.status_code or 200, body or b"", content_type, dict(output.headers or {})
    if output is None:
        return 200, b"", "text/plain", {}
    if isinstance(output, (dict, list)):
        return 200, json.dumps(output, default=str).encode(), "application/json", {}
    if isinstance(output, bytes):
        return 200, output, "application/octet-stream", {}
    return 200, str(output).encode(), "text/plain", {}
