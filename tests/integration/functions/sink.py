"""A test function: records every event it handles in Postgres, idempotently.

Env: SINK_TABLE (rows keyed by message id), SINK_POISON_FILE (while this file
exists, messages with "poison": true raise), SINK_DELAY_MS (work per event).
A message with "fail_attempts": N raises on its first N attempts in this process;
the row records the attempt that succeeded. A cron event's body is a message too.
"""

import json
import os
import time
from collections import Counter
from pathlib import Path

import psycopg2

from triptych.config import get_settings
from triptych.sdk import delivered

ATTEMPTS: Counter = Counter()


def init_context(context):
    context.user_data.conn = psycopg2.connect(get_settings().postgres_url)
    context.user_data.conn.autocommit = True
    context.user_data.table = os.environ["SINK_TABLE"]


def _record(context, events, batch_size):
    delay = float(os.environ.get("SINK_DELAY_MS", "0")) / 1000
    poison_file = os.environ.get("SINK_POISON_FILE")
    rows = []
    for event in events:
        body = json.loads(event.body)
        if body.get("poison") and poison_file and Path(poison_file).exists():
            raise ValueError(f"poison message {body['id']} refused")
        ATTEMPTS[body["id"]] += 1
        if ATTEMPTS[body["id"]] <= body.get("fail_attempts", 0):
            raise RuntimeError(f"{body['id']}: failing attempt {ATTEMPTS[body['id']]} on purpose")
        time.sleep(delay)
        rows.append(
            (
                body["id"],
                event.topic,
                event.shard_id,
                event.offset,
                os.environ["TRIPTYCH_WORKER_ID"],
                batch_size,
                body.get("sent_at"),
                ATTEMPTS[body["id"]],
            )
        )
    with context.user_data.conn.cursor() as cur:
        for row in rows:
            cur.execute(
                f"""INSERT INTO {context.user_data.table} (id, topic, part, off, worker, batch_size, sent_at, attempt)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (id) DO UPDATE SET deliveries = {context.user_data.table}.deliveries + 1""",
                row,
            )


@delivered
def handler(context, event):
    _record(context, [event], 1)


@delivered(batches=True)
def batch(context, events):
    _record(context, events, len(events))
    return [None] * len(events)
