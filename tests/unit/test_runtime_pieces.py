import json

import nuclio_sdk
import pytest

from triptych.runtime.cron_trigger import parse_duration
from triptych.sdk import Delivery
from triptych.runtime.nuclio_compat import decode_body, response_parts


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("1.5s", 1.5)])
def test_go_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "1d", "5 m", "m5"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("bad", [dict(batch_size=0), dict(max_attempts=0), dict(batch_wait_ms=-1),
                                 dict(retry_backoff_ms=-5)])
def test_delivery_settings_are_validated(bad):
    with pytest.raises(ValueError):
        Delivery(**bad)


def test_responses_are_shaped_like_nuclio():
    assert response_parts({"a": 1}) == (200, b'{"a": 1}', "application/json", {})
    assert response_parts("hi") == (200, b"hi", "text/plain", {})
    assert response_parts(None) == (200, b"", "text/plain", {})
    status, body, ctype, _ = response_parts(nuclio_sdk.Response(body={"x": 2}, status_code=201))
    assert (status, json.loads(body), ctype) == (201, {"x": 2}, "application/json")


def test_json_bodies_are_decoded_like_nuclios_wrapper():
    assert decode_body(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    assert decode_body(b"raw", "application/octet-stream") == b"raw"
    assert decode_body(b"not json", "application/json") == b"not json"
