"""The drift detectors on planted data: quiet on the training distribution, firing
on a shifted one, each statistic checked against an independent computation."""

import pickle
from datetime import UTC

import cv2
import numpy as np
import pytest

from triptych.datasets.synthetic import SHIFTS, render
from triptych.stats.drift import StreamWatch, input_drift
from triptych.stats.pixels import FEATURES, pixel_features


def stats_of(start: int, count: int, shift=lambda image: image) -> list[dict]:
    return [pixel_features(shift(render(start + k, "train").image)) for k in range(count)]


@pytest.fixture(scope="module")
def reference():
    return stats_of(0, 600)


def test_pixel_statistics_move_the_way_their_names_say():
    image = render(7, "train").image
    base = pixel_features(image)
    assert set(base) == set(FEATURES)
    assert pixel_features((image * 0.5).astype(np.uint8))["brightness"] == pytest.approx(
        base["brightness"] * 0.5, rel=0.05
    )
    assert pixel_features(cv2.GaussianBlur(image, (5, 5), 2))["sharpness"] < base["sharpness"] / 3
    gray = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert pixel_features(gray)["saturation"] == 0
    # independent: brightness is the mean of the luma, computed here with OpenCV's own weights
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(float) / 255
    assert base["brightness"] == pytest.approx(luma.mean(), abs=2e-3)


def test_the_input_test_stays_quiet_on_new_images_from_the_training_distribution(reference):
    result = input_drift(reference, stats_of(50_000, 300))
    assert not result.drifted, result.worst
    assert len(result.tests) == len(FEATURES)


@pytest.mark.parametrize(
    "shift, feature", [("blur", "sharpness"), ("dark", "brightness"), ("palette", "saturation"), ("noise", "sharpness")]
)
def test_the_input_test_fires_on_a_shifted_stream_and_names_what_moved(reference, shift, feature):
    result = input_drift(reference, stats_of(60_000, 150, SHIFTS[shift]))
    assert result.drifted
    assert feature in {t.feature for t in result.tests if t.p_value < result.alpha / len(FEATURES)}


def test_the_ks_statistic_is_the_largest_gap_between_the_two_empirical_distributions(reference):
    live = stats_of(70_000, 200, lambda image: cv2.GaussianBlur(image, (3, 3), 1))
    test = {t.feature: t for t in input_drift(reference, live).tests}["sharpness"]
    a = np.sort([r["sharpness"] for r in reference])
    b = np.sort([r["sharpness"] for r in live])
    grid = np.concatenate([a, b])
    gap = np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)).max()
    assert test.statistic == pytest.approx(gap)


def test_too_few_live_images_say_nothing(reference):
    result = input_drift(reference, stats_of(80_000, 20))
    assert not result.drifted and result.tests == []


def test_adwin_rarely_fires_on_a_steady_stream_and_soon_on_a_drop():
    rng = np.random.default_rng(1)
    false_alarms = sum(bool(StreamWatch().update(rng.random(2000) < 0.8)) for _ in range(40))
    assert false_alarms <= 2  # ADWIN's delta 0.002 bounds it well below this
    delays = []
    for _ in range(20):
        watch = StreamWatch()
        watch.update(rng.normal(0.8, 0.1, 1000))
        found = watch.update(rng.normal(0.6, 0.1, 500))
        assert found, "a drop of 0.2 in mean confidence must be seen"
        delays.append(found[0]["at"] - 1000)
    assert np.median(delays) < 150
    assert watch.estimate == pytest.approx(0.6, abs=0.03)


def test_a_watch_resumes_where_it_stopped_after_a_round_trip_through_the_database():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0.8, 0.1, 800), rng.normal(0.5, 0.1, 400)])
    whole = StreamWatch()
    whole.update(values)
    split = StreamWatch()
    split.update(values[:500])
    split = pickle.loads(pickle.dumps(split))  # what the drift job stores between runs
    split.update(values[500:])
    assert [d["at"] for d in split.detections] == [d["at"] for d in whole.detections]
    assert split.seen == whole.seen == 1200


def test_the_job_feeds_each_comparison_to_agreement_and_to_each_models_confidence():
    from triptych.lifecycle.drift import _streams

    rows = [
        {"agreement_level": "all", "per_model": {"resnet50": {"confidence": 0.9}, "mobilenet_v2": {"confidence": 0.7}}},
        {"agreement_level": "majority", "per_model": {"resnet50": {"confidence": 0.4}, "mobilenet_v2": "garbled"}},
    ]
    assert _streams(rows) == {
        "agreement": [1.0, 0.0],
        "confidence:resnet50": [0.9, 0.4],
        "confidence:mobilenet_v2": [0.7],
    }


def test_a_detection_holds_drift_for_the_hold_time_then_it_is_ok_again():
    from datetime import datetime, timedelta

    from triptych.lifecycle.drift import _status

    now, hold = datetime.now(UTC), timedelta(minutes=15)
    assert _status(now - timedelta(minutes=14), now, hold, ready=True) == "drift"
    assert _status(now - timedelta(minutes=16), now, hold, ready=True) == "ok"
    assert _status(None, now, hold, ready=False) == "warming up"
