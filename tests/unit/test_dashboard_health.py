"""The Live page's health list is answered from the last background probe: a page
never waits for a slow probe once one has finished (issue 25: the list within 2 s
of loading while training keeps the CPUs busy)."""

from __future__ import annotations

import threading
import time

from dash_app import health


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_pages_get_the_last_probe_at_once_while_the_next_one_is_slow(monkeypatch):
    release, probes = threading.Event(), []

    def slow_probe() -> dict:
        probes.append(time.monotonic())
        release.wait(10)
        return {"services": [], "functions": {}, "probe": len(probes)}

    monkeypatch.setattr(health, "probe", slow_probe)
    monkeypatch.setattr(health, "PROBE_EVERY_S", 0.01)
    monkeypatch.setattr(health, "_cached", {})
    monkeypatch.setattr(health, "_prober", None)
    try:
        # The first probe hangs: the page is told so after its short wait, not held.
        assert health.snapshot(wait_s=0.05) is None
        release.set()
        first = wait_for(lambda: health.snapshot(wait_s=0.05), 5)
        assert first["probe"] >= 1
        # The next probe hangs too: pages keep getting the last answer, at once.
        release.clear()
        wait_for(lambda: len(probes) > first["probe"], 5)
        started = time.monotonic()
        again = health.snapshot(wait_s=5)
        assert time.monotonic() - started < 1
        assert again["probe"] >= first["probe"]
        assert len([t for t in threading.enumerate() if t.name == "health-prober"]) == 1
    finally:
        # Nobody asks any more: the prober stops before the real probe is back in place.
        prober = health._prober
        health._asked_at = -1e9
        release.set()
        prober.join(5)
        assert not prober.is_alive()
