"""The delivery wrapper on its own: retries, dead letters, the batch split and
the skip of replays for other functions, with a fake dead-letter sink."""

import json
from types import SimpleNamespace

import nuclio_sdk
import pytest

from triptych.sdk import (
    Delivery,
    DeliveryPlan,
    PermanentError,
    TriggerDelivery,
    delivered,
)
from triptych.sdk.dead_letters import dead_letter_for


class FakeSink:
    def __init__(self, fail_first: int = 0):
        self.letters, self.fail_first = [], fail_first

    def send(self, letter):
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("kafka away")
        self.letters.append(letter)


class Logger:
    def __init__(self):
        self.lines = []

    def warn_with(self, message, **kw):
        self.lines.append(("warn", message, kw))

    def error_with(self, message, **kw):
        self.lines.append(("error", message, kw))


PLAN = DeliveryPlan("sink", {"in": TriggerDelivery("sink-group", Delivery(max_attempts=3, retry_backoff_ms=100))})


def kafka(body, offset=0, headers=None, kind="kafka-cluster"):
    return nuclio_sdk.Event(
        body=body,
        trigger=nuclio_sdk.TriggerInfo(kind, "in"),
        topic="t",
        shard_id=2,
        offset=offset,
        headers=headers or {},
        fields={"key": f"k{offset}"},
    )


def wrap(fn, batches=False, sink=None):
    sink = sink or FakeSink()
    sleeps = []
    handler = delivered(fn, batches=batches, plan=lambda: PLAN, sink=lambda topic: sink, sleep=sleeps.append)
    return handler, sink, sleeps, SimpleNamespace(logger=Logger())


def test_an_error_is_retried_with_backoff_then_succeeds():
    calls = []

    def fn(context, event):
        calls.append(event.offset)
        if len(calls) < 3:
            raise RuntimeError("flaky")
        return "ok"

    handler, sink, sleeps, context = wrap(fn)
    assert handler(context, kafka(b"x")) == "ok"
    assert len(calls) == 3 and sleeps == [0.1, 0.2] and sink.letters == []


def test_an_event_that_keeps_failing_is_dead_lettered_with_its_origin():
    def fn(context, event):
        raise ValueError("bad body")

    handler, sink, sleeps, context = wrap(fn)
    assert handler(context, kafka(b"poison", offset=7, headers={"h": b"v"})) is None  # settled: returns
    (letter,) = sink.letters
    assert (letter.function, letter.consumer_group, letter.attempts) == ("sink", "sink-group", 3)
    assert (letter.origin.topic, letter.origin.partition, letter.origin.offset) == ("t", 2, 7)
    assert letter.value() == b"poison" and letter.key() == b"k7" and letter.original_headers() == [("h", b"v")]
    assert letter.error_type == "ValueError" and "bad body" in letter.traceback
    assert letter.dedup_key == "dlq:sink-group:t:2:7"


def test_a_permanent_error_is_dead_lettered_at_once():
    def fn(context, event):
        raise PermanentError("not an image")

    handler, sink, sleeps, context = wrap(fn)
    handler(context, kafka(b"x"))
    assert [letter.attempts for letter in sink.letters] == [1] and sleeps == []


def test_a_failing_batch_is_split_so_only_the_culprit_is_dead_lettered():
    seen = []

    def fn(context, events):
        seen.append([e.offset for e in events])
        if any(e.body == b"poison" for e in events):
            raise PermanentError("poison inside")
        return [e.body.upper() for e in events]

    handler, sink, sleeps, context = wrap(fn, batches=True)
    results = handler(context, [kafka(b"a", 0), kafka(b"poison", 1), kafka(b"c", 2)])
    assert results == [b"A", None, b"C"]
    assert seen == [[0, 1, 2], [0], [1], [2]]
    assert [letter.origin.offset for letter in sink.letters] == [1]
    assert context.logger.lines[0][1] == "batch failed, retrying its events one by one"


def test_a_batch_handler_takes_one_event_as_nuclio_delivers_it():
    handler, *_ = wrap(lambda context, events: [e.body.upper() for e in events], batches=True)
    assert handler(None, kafka(b"c")) == b"C"
    assert handler(None, [kafka(b"a"), kafka(b"b")]) == [b"A", b"B"]


def test_a_replay_addressed_to_another_function_is_skipped():
    handled = []
    handler, sink, _, context = wrap(lambda context, events: handled.extend(events), batches=True)
    results = handler(
        context,
        [
            kafka(b"a", 0, headers={"triptych-target-function": b"other"}),
            kafka(b"b", 1, headers={"triptych-target-function": b"sink"}),
            kafka(b"c", 2),
        ],
    )
    assert [e.offset for e in handled] == [1, 2] and results == [None, None, None]


def test_a_dead_letter_that_cannot_be_written_is_retried_until_it_is():
    def fn(context, event):
        raise PermanentError("bad")

    sink = FakeSink(fail_first=2)
    handler, sink, sleeps, context = wrap(fn, sink=sink)
    handler(context, kafka(b"x", 4))
    assert [letter.origin.offset for letter in sink.letters] == [4] and sleeps == [1.0, 2.0]


def test_http_and_cron_events_go_straight_to_the_handler():
    def fn(context, event):
        raise RuntimeError("a web error is the trigger's to answer")

    handler, sink, sleeps, context = wrap(fn)
    with pytest.raises(RuntimeError):
        handler(context, kafka(b"x", kind="http"))
    assert sink.letters == [] and sleeps == []


def test_the_plan_travels_in_the_environment():
    env = {"TRIPTYCH_DELIVERY": PLAN.to_env()}
    assert DeliveryPlan.from_env(env) == PLAN
    assert DeliveryPlan.from_env({"NUCLIO_FUNCTION_NAME": "f"}).for_trigger("x") == TriggerDelivery("f", Delivery())


def test_a_dead_letter_from_a_nuclio_event_with_byte_headers_and_a_decoded_body():
    event = nuclio_sdk.Event(
        body={"a": 1},
        trigger=nuclio_sdk.TriggerInfo("kafka-cluster", "in"),
        topic=b"t",
        shard_id=0,
        offset=3,
        headers={b"h": b"\x00\x01"},
    )
    letter = dead_letter_for(event, "f", "g", ValueError("x"), attempts=1)
    assert json.loads(letter.value()) == {"a": 1} and letter.key() is None
    assert letter.original_headers() == [("h", b"\x00\x01")] and letter.origin.topic == "t"


def test_a_hostile_body_is_dead_lettered_not_a_crash_of_the_wrapper():
    nested = b"[" * 100_000 + b"]" * 100_000  # json.loads raises RecursionError, not ValueError

    def fn(context, events):
        raise RuntimeError("cannot handle it")

    handler, sink, sleeps, context = wrap(fn, batches=True)
    assert handler(context, [kafka(nested, 5), kafka(b'{"image_id": "abc"}', 6)]) == [None, None]
    assert [letter.origin.offset for letter in sink.letters] == [5, 6]
    assert context.logger.lines[-1][2]["image_ids"] == ["abc"]
