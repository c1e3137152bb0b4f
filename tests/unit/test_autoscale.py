"""The scaler's decisions (runtime/autoscale.py), tick by tick."""

import pytest

from triptych.runtime.autoscale import Bounds, Observation, Policy, Scaler

POLICY = Policy(lag_per_replica=100, target_busy=0.7, stabilisation_s=60, idle_to_zero_s=120)


def run(scaler: Scaler, ticks: list[tuple[float, int | None, float]], start: int) -> list[int]:
    """Feed (at, lag, busy) ticks, applying each decision; the replicas after each."""
    current, seen = start, []
    for at, lag, busy in ticks:
        current = scaler.decide(Observation(at=at, current=current, lag=lag, busy=busy)).desired
        seen.append(current)
    return seen


def test_a_backlog_scales_up_at_most_double_or_plus_four_a_step_and_never_past_the_partitions():
    scaler = Scaler(Bounds(1, 8, partitions=6), POLICY)
    assert run(scaler, [(0, 1500, 1.0), (5, 1400, 1.0), (10, 1300, 1.0)], start=1) == [5, 6, 6]
    decision = scaler.decide(Observation(at=15, current=6, lag=1200, busy=1.0))
    assert decision.desired == 6 and "held at 6 (its topic's partitions)" in decision.reason


def test_a_drained_backlog_scales_down_only_after_the_stabilisation_window():
    scaler = Scaler(Bounds(1, 6), POLICY)
    seen = run(scaler, [(0, 600, 1.0), (5, 0, 0.1), (30, 0, 0.1), (64, 0, 0.1), (70, 0, 0.1)], start=2)
    # Up to 6 at once; held there while the burst's recommendation is in the window; then down to 1.
    assert seen == [6, 6, 6, 1, 1]


def test_a_busy_function_without_backlog_scales_with_its_utilisation():
    scaler = Scaler(Bounds(1, 10), POLICY)
    decision = scaler.decide(Observation(at=0, current=2, lag=0, busy=0.95))
    assert decision.desired == 3 and decision.reason == "busy 95%"


def test_min_zero_goes_to_zero_after_the_idle_period_and_wakes_on_the_first_waiting_message():
    scaler = Scaler(Bounds(0, 3), POLICY)
    assert run(scaler, [(0, 0, 0.0), (60, 0, 0.0), (119, 0, 0.0)], start=1) == [1, 1, 1]
    decision = scaler.decide(Observation(at=125, current=1, lag=0, busy=0.0))
    assert decision.desired == 0 and decision.reason == "idle 120 s"
    assert scaler.decide(Observation(at=200, current=0, lag=0, busy=0.0)).desired == 0
    woken = scaler.decide(Observation(at=201, current=0, lag=1, busy=0.0))
    assert woken.desired == 1 and woken.reason == "woken: 1 waiting"


def test_an_http_request_held_at_zero_wakes_the_function():
    scaler = Scaler(Bounds(0, 2), POLICY)
    woken = scaler.decide(Observation(at=0, current=0, lag=None, busy=0.0, pending_requests=1))
    assert woken.desired == 1


def test_a_bursty_stream_does_not_flap():
    scaler = Scaler(Bounds(1, 6), POLICY)
    # Bursts every 20 s, shorter than the window: the scaler stays up instead of going up and down.
    ticks = [(t, 400 if t % 20 == 0 else 0, 0.9 if t % 20 == 0 else 0.2) for t in range(0, 600, 5)]
    seen = run(scaler, ticks, start=1)
    assert seen[-1] == max(seen) == 6 and scaler.flaps == 0


@pytest.mark.parametrize("low,high", [(-1, 2), (3, 2), (0, 0)])
def test_impossible_bounds_are_refused(low, high):
    with pytest.raises(ValueError):
        Bounds(low, high)


def test_without_a_stabilisation_window_the_same_bursts_flap_and_the_window_is_what_damps_them():
    ticks = [(t, 400 if t % 20 == 0 else 0, 0.9 if t % 20 == 0 else 0.2) for t in range(0, 300, 5)]
    undamped = Scaler(Bounds(1, 6), Policy(stabilisation_s=0))
    run(undamped, ticks, start=1)
    damped = Scaler(Bounds(1, 6), POLICY)
    run(damped, ticks, start=1)
    assert undamped.flaps > 10 and damped.flaps == 0


def test_hosts_share_the_lag_and_the_ceiling_and_each_keeps_its_min():
    scaler = Scaler(Bounds(1, 6, partitions=6), POLICY)
    shared = scaler.decide(Observation(at=0, current=1, lag=1500, busy=1.0, hosts=2))
    assert shared.desired == 3 and "held at 3 on each of 2 hosts" in shared.reason
    alone = Scaler(Bounds(1, 6, partitions=6), POLICY).decide(Observation(at=0, current=1, lag=1500, busy=1.0))
    assert alone.desired == 5  # x2 or +4 a step: 1 -> 5, toward 6
    quiet = Scaler(Bounds(1, 6), POLICY).decide(Observation(at=0, current=1, lag=0, busy=0.0, hosts=3))
    assert quiet.desired == 1


def test_something_held_keeps_an_http_function_awake_and_says_what_waits():
    scaler = Scaler(Bounds(0, 2), POLICY)
    awake = scaler.decide(Observation(at=0, current=1, lag=None, busy=0.0, pending_requests=1))
    assert awake.desired == 1
    assert scaler.recommend(Observation(at=1, current=1, lag=None, busy=0.0, pending_requests=3)) == (1, "3 waiting")


def test_replicas_started_after_a_long_sleep_get_the_whole_idle_period_before_stopping_again():
    scaler = Scaler(Bounds(0, 1), POLICY)
    assert scaler.decide(Observation(at=0, current=0, lag=0, busy=0.0)).desired == 0
    # Pinned at 1 for a while (the scaler saw it at zero long ago), then handed back.
    assert scaler.decide(Observation(at=1000, current=1, lag=0, busy=0.0)).desired == 1
    assert scaler.decide(Observation(at=1119, current=1, lag=0, busy=0.0)).desired == 1
    assert scaler.decide(Observation(at=1121, current=1, lag=0, busy=0.0)).desired == 0


def test_no_scale_up_onto_a_host_whose_cores_are_all_busy():
    scaler = Scaler(Bounds(1, 6), POLICY)
    held = scaler.decide(Observation(at=0, current=1, lag=1500, busy=1.0, host_busy=0.97))
    assert held.desired == 1 and "held: the host's cores are 97% busy" in held.reason
    assert scaler.decide(Observation(at=5, current=1, lag=1500, busy=1.0, host_busy=0.5)).desired == 5
    # Waking from zero is never held: a function at zero has no replica to do the work.
    assert (
        Scaler(Bounds(0, 2), POLICY).decide(Observation(at=0, current=0, lag=5, busy=0.0, host_busy=1.0)).desired == 1
    )
