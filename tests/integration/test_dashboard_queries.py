"""The dashboard's read-side queries (triptych.db.queries) and the label write
(triptych.aggregation.labels) against the real Postgres, on labelled rows seeded in a
time window of their own, every figure checked against a value computed here
independently (numpy percentiles, Python counters)."""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from triptych.aggregation.compare import Answer, compare
from triptych.aggregation.labels import LabelRejected, set_ground_truth
from triptych.aggregation.store import upsert_comparison
from triptych.db.connection import Database
from triptych.db.queries import (
    HistoryFilter,
    agreement_matrix,
    answers_for,
    calibration_bins,
    confidence_distribution,
    confusion_counts,
    correctness_patterns,
    history_count,
    history_rows,
    image_detail,
    latency_distribution,
    quarantined,
    range_counts,
    review_queue,
    throughput_series,
    version_comparison,
)

MODELS = ["resnet50", "mobilenet_v2", "efficientnet_b0"]
CLASSES = ["cat", "dog", "owl", "fox"]
IMAGES = 80


@pytest.fixture(scope="module")
def seeded(stack):
    """IMAGES labelled images, one minute apart, in a window of the year 2001 that
    no other test writes to; each model right about 3 times in 4, so every
    agreement level occurs; the last 20 answered by a second model version."""
    rng = random.Random(11)
    window = random.SystemRandom()  # a fresh window each run, even on a stack kept between runs
    base = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(
        days=window.randrange(0, 5000), minutes=window.randrange(0, 1000)
    )
    tag = uuid.uuid4().hex[:8]
    db = Database(stack)
    images, answers = [], {}

    def write(cur):
        for k in range(IMAGES):
            image_id = str(uuid.uuid4())
            at = base + timedelta(minutes=k)
            truth = CLASSES[k % len(CLASSES)]
            cur.execute(
                """INSERT INTO images (image_id, bucket, object_key, sha256, filename, size_bytes, source,
                                       ground_truth_label, status, uploaded_at, registered_at)
                   VALUES (%s, 'images', %s, %s, %s, 100, %s, %s, 'classified', %s, %s)""",
                (
                    image_id,
                    f"q/{tag}/{k}",
                    uuid.uuid4().hex * 2,
                    f"{tag}-{k:03d}.png",
                    "upload" if k % 5 == 0 else "synthetic",
                    truth,
                    at,
                    at,
                ),
            )
            row = []
            for m in MODELS:
                cls = truth if rng.random() < 0.75 else rng.choice(CLASSES)
                a = Answer(
                    m, "1" if k < 60 else "2", cls, round(rng.uniform(0.2, 1.0), 4), round(rng.uniform(1, 50), 3)
                )
                row.append(a)
                cur.execute(
                    """INSERT INTO predictions (image_id, model_name, model_version, predicted_class, confidence,
                                                inference_ms, predicted_at, created_at)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                    (image_id, m, a.model_version, cls, a.confidence, a.inference_ms, at, at),
                )
            upsert_comparison(cur, image_id, compare(row, truth))
            cur.execute("UPDATE model_comparisons SET created_at = %s WHERE image_id = %s", (at, image_id))
            images.append(
                {
                    "image_id": image_id,
                    "at": at,
                    "truth": truth,
                    "source": "upload" if k % 5 == 0 else "synthetic",
                    "filename": f"{tag}-{k:03d}.png",
                }
            )
            answers[image_id] = row
        for m in MODELS:  # what the aggregate function keeps per minute
            cur.execute(
                """INSERT INTO model_metrics (model_name, model_version, window_start, window_seconds, prediction_count)
                   SELECT model_name, model_version, date_trunc('minute', predicted_at), 60, count(*)
                   FROM predictions WHERE model_name = %s AND predicted_at >= %s AND predicted_at < %s
                   GROUP BY 1, 2, 3""",
                (m, base, base + timedelta(minutes=IMAGES)),
            )

    db.transaction(write)
    yield {
        "db": db,
        "start": base,
        "end": base + timedelta(minutes=IMAGES),
        "images": images,
        "answers": answers,
        "tag": tag,
    }
    db.close()


def read(seeded, query, *args):
    return seeded["db"].transaction(lambda cur: query(cur, *args))


def test_latency_percentiles_and_histogram_match_numpy(seeded):
    result = read(seeded, latency_distribution, seeded["start"], seeded["end"])
    assert set(result["summary"]) == set(MODELS)
    for m in MODELS:
        times = [a.inference_ms for row in seeded["answers"].values() for a in row if a.model_name == m]
        s = result["summary"][m]
        assert s["n"] == IMAGES
        for q, key in ((50, "p50_ms"), (95, "p95_ms"), (99, "p99_ms")):
            assert s[key] == pytest.approx(np.percentile(times, q), rel=1e-9)
        assert sum(result["counts"][m]) == IMAGES
        # Every time falls in the bin its value says (the last bin holds the tail).
        edges = result["edges"]
        expected = Counter(min(int(t / edges[-1] * (len(edges) - 1)), len(edges) - 2) for t in times)
        assert {i: c for i, c in enumerate(result["counts"][m]) if c} == dict(expected)


def test_wide_ranges_read_the_newest_sample_only(seeded):
    newest = seeded["images"][-10:]  # one minute apart: the last ten are the newest
    result = read(seeded, latency_distribution, seeded["start"], seeded["end"], 40, 30)
    assert sum(s["n"] for s in result["summary"].values()) == 30
    for m in MODELS:
        times = [a.inference_ms for i in newest for a in seeded["answers"][i["image_id"]] if a.model_name == m]
        assert result["summary"][m]["p50_ms"] == pytest.approx(np.percentile(times, 50))
    confusion = read(seeded, confusion_counts, seeded["start"], seeded["end"], 10)
    assert all(sum(cells.values()) == 10 for cells in confusion.values())
    assert read(seeded, range_counts, seeded["start"], seeded["end"]) == {"answers": 3 * IMAGES, "images": IMAGES}


def test_correctness_patterns_count_who_was_right_on_each_labelled_image(seeded):
    result = read(seeded, correctness_patterns, seeded["start"], seeded["end"], MODELS)
    truth = {i["image_id"]: i["truth"] for i in seeded["images"]}
    expected = Counter(
        tuple(a.predicted_class == truth[image_id] for a in row) for image_id, row in seeded["answers"].items()
    )
    assert result == dict(expected) and sum(result.values()) == IMAGES
    # In the order asked, and only over the images every model asked for answered.
    reordered = read(seeded, correctness_patterns, seeded["start"], seeded["end"], MODELS[::-1])
    assert reordered == {k[::-1]: n for k, n in expected.items()}
    assert read(seeded, correctness_patterns, seeded["start"], seeded["end"], ["resnet50", "vgg"]) == {}


def test_calibration_bins_are_the_answers_binned_as_numpy_bins_them(seeded):
    from triptych.stats.calibration import from_samples, reliability

    result = read(seeded, calibration_bins, seeded["start"], seeded["end"])
    truth = {i["image_id"]: i["truth"] for i in seeded["images"]}
    assert set(result) == set(MODELS)
    for m in MODELS:
        answers = [
            (a.confidence, a.predicted_class == truth[image_id])
            for image_id, row in seeded["answers"].items()
            for a in row
            if a.model_name == m
        ]
        expected = from_samples(np.array([c for c, _ in answers]), np.array([ok for _, ok in answers]))
        got = reliability(result[m]["counts"], result[m]["confidence_sums"], result[m]["correct_sums"])
        assert got["n"] == IMAGES and got["ece"] == pytest.approx(expected["ece"])
        assert [b["count"] for b in got["bins"]] == [b["count"] for b in expected["bins"]]


def test_confidence_histogram_counts_every_answer_in_its_bin(seeded):
    result = read(seeded, confidence_distribution, seeded["start"], seeded["end"])
    for m in MODELS:
        conf = [a.confidence for row in seeded["answers"].values() for a in row if a.model_name == m]
        expected = Counter(min(int(c * 20), 19) for c in conf)
        assert {i: c for i, c in enumerate(result[m]) if c} == dict(expected)


def test_agreement_matrix_is_the_share_of_same_answers_per_pair(seeded):
    result = read(seeded, agreement_matrix, seeded["start"], seeded["end"], MODELS)
    for a, b in itertools.combinations(MODELS, 2):
        same = sum(
            1
            for row in seeded["answers"].values()
            if {x.model_name: x.predicted_class for x in row}[a] == {x.model_name: x.predicted_class for x in row}[b]
        )
        assert result["n"][(a, b)] == IMAGES
        assert result["rate"][(a, b)] == pytest.approx(same / IMAGES)
        assert result["rate"][(b, a)] == result["rate"][(a, b)]


def test_confusion_counts_match_a_counter(seeded):
    result = read(seeded, confusion_counts, seeded["start"], seeded["end"])
    truth = {i["image_id"]: i["truth"] for i in seeded["images"]}
    for m in MODELS:
        expected = Counter(
            (truth[image_id], a.predicted_class)
            for image_id, row in seeded["answers"].items()
            for a in row
            if a.model_name == m
        )
        assert result[m] == dict(expected)


def test_versions_are_compared_side_by_side(seeded):
    rows = read(seeded, version_comparison, seeded["start"], seeded["end"])
    by_key = {(r["model_name"], r["model_version"]): r for r in rows}
    assert set(by_key) == {(m, v) for m in MODELS for v in ("1", "2")}
    truth = {i["image_id"]: i["truth"] for i in seeded["images"]}
    for m in MODELS:
        for v, count in (("1", 60), ("2", IMAGES - 60)):
            mine = [
                (image_id, a)
                for image_id, row in seeded["answers"].items()
                for a in row
                if a.model_name == m and a.model_version == v
            ]
            assert by_key[(m, v)]["compared"] == count
            right = sum(a.predicted_class == truth[image_id] for image_id, a in mine)
            assert by_key[(m, v)]["accuracy"] == pytest.approx(right / count)


def test_throughput_series_sums_the_minutes(seeded):
    result = read(seeded, throughput_series, seeded["start"], seeded["end"])
    assert result["step_s"] == 60
    for m in MODELS:
        s = result["series"][m]
        assert len(s["t"]) == IMAGES and sum(s["per_s"]) * 60 == pytest.approx(IMAGES)


def test_long_ranges_read_hourly_snapshots_instead_of_minutes_never_both(seeded, stack):
    from triptych.aggregation.store import recompute_window
    from triptych.lifecycle.snapshots import HOUR

    db = Database(stack)
    hours = sorted({(seeded["start"] + timedelta(minutes=k)).replace(minute=0) for k in range(IMAGES)})
    versions = read(
        seeded,
        lambda cur: (
            cur.execute(
                "SELECT DISTINCT model_name, model_version FROM model_metrics WHERE window_seconds = 60 "
                "AND window_start >= %s AND window_start < %s",
                (seeded["start"], seeded["end"]),
            ),
            cur.fetchall(),
        )[1],
    )
    for v in versions:  # as the hourly metrics job snapshots them
        for hour in hours:
            db.transaction(lambda cur, v=v, h=hour: recompute_window(cur, v["model_name"], v["model_version"], h, HOUR))
    # A marker in one snapshot shows which rows the series read.
    db.transaction(
        lambda cur: cur.execute(
            "UPDATE model_metrics SET prediction_count = prediction_count + 1000 WHERE model_name = 'resnet50' "
            "AND window_seconds = 3600 AND window_start = %s",
            (hours[0],),
        )
    )
    try:
        wide = read(seeded, throughput_series, seeded["start"] - timedelta(days=5), seeded["end"] + timedelta(days=5))
        assert wide["step_s"] >= 3600
        for m in MODELS:
            total = sum(wide["series"][m]["per_s"]) * wide["step_s"]
            assert total == pytest.approx(IMAGES + (1000 if m == "resnet50" else 0))
    finally:
        db.transaction(
            lambda cur: cur.execute(
                "DELETE FROM model_metrics WHERE window_seconds = 3600 AND window_start = ANY(%s)", (hours,)
            )
        )


def _filter(seeded, **kw):
    return HistoryFilter(start=seeded["start"], end=seeded["end"], **kw)


def test_history_filters_pages_and_counts(seeded):
    everything = read(seeded, history_rows, _filter(seeded), 0, 1000)
    assert len(everything) == IMAGES
    assert [r["uploaded_at"] for r in everything] == sorted((r["uploaded_at"] for r in everything), reverse=True)
    assert read(seeded, history_count, _filter(seeded)) == (IMAGES, False)
    assert read(seeded, history_count, _filter(seeded), 10) == (10, True)
    page2 = read(seeded, history_rows, _filter(seeded), 10, 10)
    assert [r["image_id"] for r in page2] == [r["image_id"] for r in everything[10:20]]

    truth = {i["image_id"]: i["truth"] for i in seeded["images"]}
    wrong_owl = {
        image_id
        for image_id, row in seeded["answers"].items()
        for a in row
        if a.model_name == "mobilenet_v2" and a.predicted_class == "owl" and truth[image_id] != "owl"
    }
    rows = read(
        seeded, history_rows, _filter(seeded, model="mobilenet_v2", predicted_class="owl", correct=False), 0, 1000
    )
    assert {str(r["image_id"]) for r in rows} == wrong_owl

    levels = Counter(compare(row, truth[image_id]).agreement_level for image_id, row in seeded["answers"].items())
    for level in ("all", "majority", "none"):
        assert read(seeded, history_count, _filter(seeded, agreement=level))[0] == levels[level]
    assert read(seeded, history_count, _filter(seeded, source="upload"))[0] == IMAGES // 5
    hit = read(seeded, history_rows, _filter(seeded, search=f"{seeded['tag']}-007"), 0, 10)
    assert [r["filename"] for r in hit] == [f"{seeded['tag']}-007.png"]
    assert read(seeded, history_count, _filter(seeded, search="100%_"))[0] == 0  # LIKE wildcards are literal
    with pytest.raises(ValueError, match="unknown agreement"):
        read(seeded, history_count, _filter(seeded, agreement="sometimes"))


def test_history_count_gives_back_the_callers_statement_timeout(seeded):
    def count_inside_a_timeout(cur):
        cur.execute("SET LOCAL statement_timeout = '7s'")
        counted = history_count(cur, _filter(seeded))
        cur.execute("SHOW statement_timeout")
        return counted, cur.fetchone()["statement_timeout"]

    assert seeded["db"].transaction(count_inside_a_timeout) == ((IMAGES, False), "7s")


def test_image_detail_neighbours_and_unknown_id(seeded):
    images = seeded["images"]
    middle = read(seeded, image_detail, images[40]["image_id"])
    assert middle["older_id"] == images[39]["image_id"] and middle["newer_id"] == images[41]["image_id"]
    assert {p["model_name"] for p in middle["predictions"]} == set(MODELS)
    assert (
        middle["comparison"]["consensus_class"]
        == compare(seeded["answers"][images[40]["image_id"]], images[40]["truth"]).consensus_class
    )
    assert read(seeded, image_detail, str(uuid.uuid4())) is None
    found = read(seeded, answers_for, [images[3]["image_id"]])
    assert set(found[images[3]["image_id"]]["answers"]) == set(MODELS)


def test_label_recomputes_correctness_and_leaves_the_queue(seeded):
    db = seeded["db"]
    image = next(
        i for i in seeded["images"] if compare(seeded["answers"][i["image_id"]], i["truth"]).agreement_level != "all"
    )
    image_id = image["image_id"]
    queue, waiting = db.transaction(lambda cur: review_queue(cur, 10_000))
    assert image_id in {str(r["image_id"]) for r in queue} and waiting >= 1
    row = seeded["answers"][image_id]
    new_label = next(c for c in CLASSES if c != image["truth"])
    result = db.transaction(lambda cur: set_ground_truth(cur, image_id, new_label, set(CLASSES)))
    assert result["previous"] == image["truth"]
    assert result["per_model_correct"] == {a.model_name: a.predicted_class == new_label for a in row}
    stored = db.transaction(
        lambda cur: (
            cur.execute(
                """SELECT i.ground_truth_label, i.needs_review, c.consensus_correct, c.consensus_class, c.needs_review AS cr
           FROM images i JOIN model_comparisons c USING (image_id) WHERE image_id = %s""",
                (image_id,),
            ),
            cur.fetchone(),
        )[1]
    )
    assert stored["ground_truth_label"] == new_label and not stored["needs_review"] and not stored["cr"]
    assert stored["consensus_correct"] == (stored["consensus_class"] == new_label)
    queue, _ = db.transaction(lambda cur: review_queue(cur, 10_000))
    assert image_id not in {str(r["image_id"]) for r in queue}


def test_bad_labels_write_nothing(seeded, stack):
    db = seeded["db"]
    image_id = seeded["images"][1]["image_id"]

    def state():
        return db.transaction(
            lambda cur: (
                cur.execute(
                    "SELECT ground_truth_label, (SELECT count(*) FROM system_events WHERE image_id = %s) AS events "
                    "FROM images WHERE image_id = %s",
                    (image_id, image_id),
                ),
                dict(cur.fetchone()),
            )[1]
        )

    before = state()
    for label, message in (("zebra", "not a class the models know"), ("  ", "choose a label")):
        with pytest.raises(LabelRejected, match=message):
            db.transaction(lambda cur, label=label: set_ground_truth(cur, image_id, label, set(CLASSES)))
    with pytest.raises(LabelRejected, match="no image"):
        db.transaction(lambda cur: set_ground_truth(cur, str(uuid.uuid4()), "cat", set(CLASSES)))
    assert state() == before

    bad_id = str(uuid.uuid4())
    db.transaction(
        lambda cur: cur.execute(
            """INSERT INTO images (image_id, bucket, object_key, sha256, filename, size_bytes, status, quarantine_reason,
                               uploaded_at)
           VALUES (%s, 'images', %s, %s, 'junk.png', 5, 'quarantined', 'not an image', %s)""",
            (bad_id, f"q/{bad_id}", uuid.uuid4().hex * 2, seeded["start"]),
        )
    )
    with pytest.raises(LabelRejected, match="quarantined"):
        db.transaction(lambda cur: set_ground_truth(cur, bad_id, "cat", set(CLASSES)))
    listed, _ = db.transaction(lambda cur: quarantined(cur, 10_000))
    assert bad_id in {str(r["image_id"]) for r in listed}
