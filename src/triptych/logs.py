"""Structured logs: one JSON object a line, the same shape in every process, so
one image can be followed through every function (`triptych logs --image ID`).

Each line has `ts` (UTC, ISO 8601), `level`, `logger`, `msg`, the process'
`function` and `replica` when it is a function replica, and whatever fields the
call gave: by convention `image_id`, `model`, `version`, `stage` (ingest, infer,
aggregate, retry, dead-letter) and `duration_ms`. A Nuclio `context.logger`
call's keyword fields (`info_with("x", a=1)`) land there too.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

ROTATE_BYTES = 10 * 2**20
ROTATE_KEEP = 2

# Attributes every LogRecord has: the rest of a record's dict is the caller's fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "with"}


class JsonFormatter(logging.Formatter):
    def __init__(self, static: dict | None = None):
        super().__init__()
        self.static = {k: v for k, v in (static or {}).items() if v is not None}

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self.static,
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        line.update(getattr(record, "with", None) or {})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)[-4000:]
        return json.dumps(line, default=str)


def configure(
    function: str | None = None, replica: int | None = None, log_file: Path | None = None, level: int = logging.INFO
) -> JsonFormatter:
    """The one logging configuration: JSON lines. With `log_file` (a function
    replica's), everything goes there, rotated (the per-image lines add up: about
    250 bytes an image and function), and warnings also to stderr; else all to stderr."""
    formatter = JsonFormatter({"function": function, "replica": replica})
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers[0].setLevel(logging.WARNING)
        handlers.append(RotatingFileHandler(log_file, maxBytes=ROTATE_BYTES, backupCount=ROTATE_KEEP))
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python narrates every connection at INFO
    return formatter


def log_files(folder: Path) -> list[Path]:
    """The JSON logs in a folder, rotated ones included."""
    return sorted(p for p in folder.glob("*.jsonl*") if p.is_file())


def parse_line(line: str) -> dict | None:
    """A log line as a dict; None for what is not one of ours (a traceback's lines, a server's banner)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "ts" in entry and "msg" in entry else None


def _matches(entry: dict, function: str | None, image_id: str | None) -> bool:
    if function and entry.get("function") != function:
        return False
    if image_id:
        ids = entry.get("image_ids") or []
        return entry.get("image_id") == image_id or image_id in ids
    return True


def read_entries(files: Iterable[Path], function: str | None = None, image_id: str | None = None) -> list[dict]:
    """Every matching line of these files, in time order."""
    found: list[dict] = []
    for path in files:
        try:
            with open(path, errors="replace") as handle:
                found.extend(e for line in handle if (e := parse_line(line)) and _matches(e, function, image_id))
        except OSError:
            continue
    return sorted(found, key=lambda e: e["ts"])


def follow_entries(
    folder: Path, function: str | None = None, image_id: str | None = None, poll_s: float = 0.5
) -> Iterator[dict]:
    """Matching lines written to the folder's current logs (`*.jsonl`) from this call
    on (new files too), as they are written."""
    # Where each file ends now, taken at the call, not at the first next().
    offsets: dict[Path, int] = {path: path.stat().st_size for path in folder.glob("*.jsonl")}

    def lines() -> Iterator[dict]:
        while True:
            batch: list[dict] = []
            for path in sorted(folder.glob("*.jsonl")):
                start = offsets.get(path, 0)
                try:
                    if path.stat().st_size < start:
                        start = 0  # rotated: the file begins again
                    with open(path, "rb") as handle:
                        handle.seek(start)
                        data = handle.read()
                except OSError:
                    continue
                complete = data[: data.rfind(b"\n") + 1]  # a half-written last line waits for the next round
                offsets[path] = start + len(complete)
                batch.extend(
                    e
                    for line in complete.decode(errors="replace").splitlines()
                    if (e := parse_line(line)) and _matches(e, function, image_id)
                )
            yield from sorted(batch, key=lambda e: e["ts"])
            time.sleep(poll_s)

    return lines()


def render(entry: dict) -> str:
    """One entry as a readable line: time, where, what, and its fields."""
    where = entry.get("function") or entry.get("logger", "")
    if entry.get("replica") is not None:
        where += f"[{entry['replica']}]"
    skip = {"ts", "level", "logger", "msg", "function", "replica"}
    fields = " ".join(f"{k}={v}" for k, v in entry.items() if k not in skip and k != "error")
    level = "" if entry.get("level") in ("info", "debug") else f"{entry.get('level', '').upper()} "
    text = f"{entry['ts'][11:23]} {where:<24} {level}{entry['msg']}  {fields}".rstrip()
    if entry.get("error"):
        text += "\n    " + entry["error"].strip().replace("\n", "\n    ")
    return text
