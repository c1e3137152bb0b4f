"""The chaos run's pure parts: the seeded schedule (its rules, and the same seed
giving the same faults) and the checker (each broken promise found and named)."""

from __future__ import annotations

from triptych.chaos.checker import ImageRecord, check, percentile, recovery_times
from triptych.chaos.schedule import KINDS, Fault, active_at, from_dicts, overlapping, plan

HOSTS = {
    "worker": ["worker-1", "worker-2"],
    "kafka": ["kafka-1", "kafka-2", "kafka-3"],
    "minio": ["minio-1", "minio-2", "minio-3", "minio-4"],
    "postgres": ["db"],
}
MODELS = ["resnet50", "mobilenet_v2", "efficientnet_b0"]


def test_a_seed_gives_one_schedule_and_another_seed_another():
    assert plan(7, 30, HOSTS) == plan(7, 30, HOSTS)
    assert plan(7, 30, HOSTS) != plan(8, 30, HOSTS)
    again = from_dicts([f.as_dict() for f in plan(7, 30, HOSTS)])
    assert again == plan(7, 30, HOSTS)  # what --replay reads back is the schedule itself


def test_half_an_hour_draws_many_faults_of_every_kind_overlapping_but_never_two_on_a_host():
    faults = plan(3, 30, HOSTS)
    assert len(faults) >= 40
    assert {f.kind for f in faults} == set(KINDS)
    assert len(overlapping(faults)) >= 5
    for f in faults:
        at_once = active_at(faults, f.at_s)
        assert len(at_once) <= 2
        assert len({g.host for g in at_once}) == len(at_once), "two faults on one host at once"
        assert f.heal_s <= 30 * 60 - 30 + 1e-6, "healed before the drain"


def test_three_minutes_give_at_least_five_faults_two_overlapping():
    faults = plan(11, 3, HOSTS)
    assert len(faults) >= 5 and len(overlapping(faults)) >= 2


def _record(key, rows=1, comparisons=1, predictions=None, versions=None, at=5.0):
    return ImageRecord(
        key, rows, comparisons, predictions or dict.fromkeys(MODELS, 1), versions or dict.fromkeys(MODELS, 1), at
    )


def test_the_checker_passes_a_clean_history_and_measures_recovery():
    put = {"key:a": 1.0, "key:b": 2.0}
    faults = [Fault(1.0, 2.0, "broker", "kafka-1")]
    verdict = check(
        put, {"key:a": _record("key:a", at=4.0), "key:b": _record("key:b", at=6.0)}, MODELS, faults, 0, 0, 10.0
    )
    assert verdict.passed and verdict.compared_once == 2 and verdict.recovery_s == [1.0]
    assert verdict.as_dict()["overlapping"] == 0 and verdict.first_broken is None


def test_the_checker_names_lost_doubled_and_mixed_images_and_the_faults_then():
    put = {"key:lost": 1.0, "key:twice": 2.0, "key:mixed": 3.0, "key:ok": 4.0}
    records = {
        "key:twice": _record("key:twice", comparisons=2),
        "key:mixed": _record("key:mixed", versions={"resnet50": 2}),
        "key:ok": _record("key:ok"),
    }
    faults = [Fault(0.5, 10.0, "postgres", "db"), Fault(0.8, 5.0, "broker-link", "kafka-2")]
    verdict = check(put, records, MODELS, faults, dead_letters=1, explained_dead_letters=0, end_s=20.0)
    assert not verdict.passed
    assert verdict.lost == ["key:lost"] and verdict.doubled == ["key:twice"] and verdict.mixed_versions == ["key:mixed"]
    assert verdict.unexplained_dead_letters == 1 and verdict.overlapping == 2
    first = verdict.first_broken
    assert first["key"] == "key:lost" and {f["kind"] for f in first["faults_active"]} == {"postgres", "broker-link"}


def test_a_missing_prediction_is_not_once():
    verdict = check({"key:a": 1.0}, {"key:a": _record("key:a", predictions={"resnet50": 1})}, MODELS, [], 0, 0, 5.0)
    assert verdict.doubled == ["key:a"] and verdict.compared_once == 0


def test_recovery_that_never_came_counts_to_the_end_and_percentiles_are_nearest_rank():
    assert recovery_times([Fault(0.0, 5.0, "broker", "kafka-1")], [1.0, 2.0], end_s=30.0) == [25.0]
    assert percentile([1, 2, 3, 4, 100], 99) == 100 and percentile([], 99) is None
    assert percentile([3, 1, 2], 50) == 2
