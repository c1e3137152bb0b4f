"""Images through ingest, the three inference functions and aggregate, against
real Kafka, MinIO, Postgres and MLflow: exact counts, correct comparisons,
replay safety, hot swap, and a corrupt image."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from triptych.aggregation.compare import Answer, compare
from triptych.bus import producer as make_producer
from triptych.contracts import TOPIC_DEAD_LETTERS, TOPIC_IMAGES_INPUT, TOPIC_PREDICTIONS, DeadLetter
from triptych.db.connection import Database
from triptych.lifecycle.drift import watch_drift
from triptych.lifecycle.jobs import run_job
from triptych.models import local_copies, registry
from triptych.models.bootstrap import QUICK, train_as_mlrun_job
from triptych.models.champion_alias import promote
from triptych.models.zoo import ARCHITECTURES

from .pipeline_helpers import (
    TopicWatcher,
    image_ids_for,
    send_corrupt_image,
    start_pipeline,
    stream,
    train_missing_champions,
    unique,
    wait_comparisons,
)
from .runtime_helpers import query as rows_of
from .runtime_helpers import wait_caught_up, wait_for

MODELS = list(ARCHITECTURES)


@pytest.fixture(scope="module")
def pipeline(stack, tmp_path_factory):
    train_missing_champions(stack)
    run = {"ingest": 1, "aggregate": 1, **{a.function: 1 for a in ARCHITECTURES.values()}}
    sup = start_pipeline(tmp_path_factory.mktemp("pipeline"), run, {})
    yield sup
    sup.stop()


def query(stack, sql, params=()):
    return rows_of(stack, sql, params, dicts=True)


def test_200_labelled_images_give_exact_rows_and_correct_comparisons(stack, pipeline):
    tag = unique("p200")
    stream(stack, 200, 0, tag)
    ids = image_ids_for(stack, tag, 200)
    wait_comparisons(stack, ids)
    # Every function has committed past everything sent: a late extra row can no longer come.
    wait_caught_up(stack, [a.function for a in ARCHITECTURES.values()], TOPIC_IMAGES_INPUT)
    wait_caught_up(stack, ["aggregate"], TOPIC_PREDICTIONS)
    predictions = query(stack, "SELECT * FROM predictions WHERE image_id = ANY(%s::uuid[])", (ids,))
    comparisons = query(stack, "SELECT * FROM model_comparisons WHERE image_id = ANY(%s::uuid[])", (ids,))
    assert len(predictions) == 600 and len(comparisons) == 200
    assert Counter(p["model_name"] for p in predictions) == {m: 200 for m in MODELS}
    truth = {
        str(r["image_id"]): r["ground_truth_label"]
        for r in query(
            stack, "SELECT image_id, ground_truth_label FROM images WHERE image_id = ANY(%s::uuid[])", (ids,)
        )
    }
    by_image: dict[str, list] = {}
    for p in predictions:
        by_image.setdefault(str(p["image_id"]), []).append(
            Answer(p["model_name"], p["model_version"], p["predicted_class"], p["confidence"], p["inference_ms"])
        )
    for c in comparisons:
        expected = compare(by_image[str(c["image_id"])], truth[str(c["image_id"])])
        assert (c["consensus_class"], c["agreement_level"], c["fastest_model"], c["consensus_correct"]) == (
            expected.consensus_class,
            expected.agreement_level,
            expected.fastest_model,
            expected.consensus_correct,
        )
        for entry in c["per_model"].values():
            assert entry["correct"] == (entry["class"] == truth[str(c["image_id"])])
    assert all(p["total_ms"] >= p["inference_ms"] > 0 and p["worker_id"] for p in predictions)
    assert len(json.loads(json.dumps(predictions[0]["top_k"]))) == 5
    metrics = query(
        stack,
        "SELECT model_name, sum(prediction_count) AS n FROM model_metrics "
        "WHERE updated_at > now() - interval '30 minutes' GROUP BY model_name",
    )
    assert {m["model_name"] for m in metrics} >= set(MODELS)

    # Replaying every prediction for these images changes nothing.
    before = {(str(c["image_id"]), c["model_set"]): (c["consensus_class"], c["agreement_level"]) for c in comparisons}
    watcher = TopicWatcher(stack, TOPIC_PREDICTIONS)
    watcher.consumer.seek_to_beginning()
    records = watcher.collect(lambda r: r.key.decode() in set(ids), 600, 60)
    watcher.close()
    # At-least-once: the topic may hold a redelivered duplicate; the table may not.
    assert len({(r.key, json.loads(r.value)["model_name"]) for r in records}) == 600
    marker = time.time() - 1  # before the resend; DB and test share a clock
    producer = make_producer(stack)
    for record in records:
        producer.send(TOPIC_PREDICTIONS, key=record.key, value=record.value)
    producer.flush()
    producer.close()
    wait_for(
        lambda: (
            query(
                stack,
                "SELECT count(*) AS n FROM predictions WHERE image_id = ANY(%s::uuid[]) "
                "AND updated_at >= to_timestamp(%s)",
                (ids, marker),
            )[0]["n"]
            >= 600
        ),
        120,
        message="the replay to be processed",
    )
    assert query(stack, "SELECT count(*) AS n FROM predictions WHERE image_id = ANY(%s::uuid[])", (ids,))[0]["n"] == 600
    after = query(stack, "SELECT * FROM model_comparisons WHERE image_id = ANY(%s::uuid[])", (ids,))
    assert {(str(c["image_id"]), c["model_set"]): (c["consensus_class"], c["agreement_level"]) for c in after} == before


def test_hot_swap_during_a_stream_loses_and_duplicates_nothing(stack, pipeline):
    old = registry.version_for_alias("mobilenet_v2", registry.CHAMPION, stack)
    # Any new version will do: a hot swap is about versions, not accuracy.
    new = train_as_mlrun_job("mobilenet_v2", QUICK, policy="never", train_count=200, epochs=1)["version"]
    try:
        _hot_swap(stack, old, new)
    finally:
        # A one-epoch model must not stay champion for the tests after this one (on a kept
        # stack, the lifecycle tests judge candidates against the champions).
        promote("mobilenet_v2", old, "test cleanup", stack)


def _hot_swap(stack, old: str, new: str) -> None:
    tag = unique("swap")
    stream(stack, 30, 1000, tag)
    first = image_ids_for(stack, tag, 30)
    wait_comparisons(stack, first)  # these were answered by the old champion

    # A steady stream until the new version has answered some of it: however fast the
    # pipeline and however long the new version takes to load, the swap lands mid-stream.
    stop, sent = threading.Event(), [0]

    def streaming():
        while not stop.is_set() and sent[0] < 1000:
            stream(stack, 1, 1030 + sent[0], tag)
            sent[0] += 1
            time.sleep(0.05)

    streamer = threading.Thread(target=streaming)
    streamer.start()
    try:
        wait_for(lambda: sent[0] >= 20, 60, message="20 images streamed before the swap")
        promote("mobilenet_v2", new, "hot-swap test", stack)  # mid-stream
        swapped_at = time.time()
        wait_for(
            lambda: query(
                stack,
                "SELECT 1 FROM predictions p JOIN images i USING (image_id) "
                "WHERE p.model_name = 'mobilenet_v2' AND p.model_version = %s "
                "AND i.filename LIKE %s LIMIT 1",
                (new, f"{tag}-%"),
            ),
            180,
            message="an answer from the new version",
        )
        answered_at = sent[0]
        wait_for(lambda: sent[0] >= answered_at + 20, 60, message="20 more images after the swap")
    finally:
        stop.set()
        streamer.join()
    total = 30 + sent[0]
    ids = image_ids_for(stack, tag, total)
    wait_comparisons(stack, ids)
    rows = query(
        stack,
        "SELECT image_id, model_version, predicted_at FROM predictions "
        "WHERE model_name = 'mobilenet_v2' AND image_id = ANY(%s::uuid[])",
        (ids,),
    )
    assert len(rows) == total and len({r["image_id"] for r in rows}) == total, "none lost, none duplicated"
    versions = Counter(r["model_version"] for r in rows)
    assert set(versions) == {old, new}, versions
    assert all(r["model_version"] == old for r in rows if str(r["image_id"]) in set(first))
    late = [r for r in rows if r["predicted_at"].timestamp() > swapped_at + 15]
    assert all(r["model_version"] == new for r in late)
    assert (
        query(stack, "SELECT count(*) AS n FROM model_comparisons WHERE image_id = ANY(%s::uuid[])", (ids,))[0]["n"]
        >= total
    )
    # Every replica fetched the new version into the machine's model cache, which
    # stays bounded however many swaps and restarts (it once leaked 180 MB a time).
    copies = [p.name for p in (stack.cache_dir / "models" / "mobilenet_v2").iterdir()]
    source = registry.source_of("mobilenet_v2", new, stack)
    assert local_copies.key_for(new, source) in copies
    assert len([c for c in copies if not c.startswith(".")]) <= local_copies.KEEP_PER_MODEL, copies


def test_one_images_way_through_every_function_is_in_triptych_logs(stack, pipeline):
    tag = unique("logged")
    stream(stack, 1, 3000, tag)
    (image_id,) = image_ids_for(stack, tag, 1)
    wait_comparisons(stack, [image_id])

    def lines():
        shown = pipeline.cli("logs", "--image", image_id, "--json")
        entries = [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]
        return entries if any(e["msg"] == "compared" for e in entries) else None

    entries = wait_for(lines, 30, message="the image's log lines")  # a log handler may flush a moment later
    steps = [(e["function"], e["msg"]) for e in entries]
    assert steps[0] == ("ingest", "ingested") and steps[-1] == ("aggregate", "compared"), steps
    assert sorted(steps[1:-1]) == sorted((a.function, "classified") for a in ARCHITECTURES.values()), steps
    assert [e["ts"] for e in entries] == sorted(e["ts"] for e in entries)
    assert all(e["image_id"] == image_id and e["duration_ms"] >= 0 for e in entries)
    assert {e["model"] for e in entries if e["msg"] == "classified"} == set(MODELS)
    readable = pipeline.cli("logs", "--image", image_id).stdout
    assert readable.index("ingest") < readable.index("infer-") < readable.index("aggregate"), readable


def test_a_corrupt_image_is_dead_lettered_once_per_model_and_the_others_flow(stack, pipeline):
    dlq = TopicWatcher(stack, TOPIC_DEAD_LETTERS)
    image_id = send_corrupt_image(stack)
    tag = unique("after-corrupt")
    stream(stack, 5, 2000, tag)
    ids = image_ids_for(stack, tag, 5)
    wait_comparisons(stack, ids)
    letters = [
        DeadLetter.model_validate_json(r.value)
        for r in dlq.collect(lambda r: image_id in r.value.decode(errors="ignore"), 3, 60)
    ]
    dlq.close()
    assert sorted(letter.function for letter in letters) == sorted(a.function for a in ARCHITECTURES.values())
    assert all(letter.attempts == 1 and "cannot decode" in letter.error for letter in letters)
    assert query(stack, "SELECT count(*) AS n FROM predictions WHERE image_id = %s", (image_id,))[0]["n"] == 0


def test_the_quick_bench_reports_every_figure_and_every_image_is_compared(stack, pipeline, tmp_path):
    """`triptych bench --quick` on the running pipeline: speed is reported, not
    asserted; what is checked is that the report is whole and that it measured
    every image it sent."""
    from triptych.control import status_path

    from .conftest import triptych

    proc = triptych(
        "bench",
        "--quick",
        "--out",
        str(tmp_path),
        "--functions-status",
        str(status_path(pipeline.settings)),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next(tmp_path.glob("bench-*.json")).read_text())
    assert (tmp_path / next(tmp_path.glob("bench-*.json")).name.replace(".json", ".md")).exists()
    assert "## Pipeline, backend onnx" in proc.stdout
    assert report["models"] == MODELS and report["cores"] >= 1
    assert {(c["batch"], c["backend"]) for c in report["ceiling"]} == {(1, "onnxruntime-cpu"), (8, "onnxruntime-cpu")}
    [alone] = report["inprocess"]
    assert alone["images"] > 0 and alone["images_per_s"] > 0 and alone["forward_ms_per_image"] > 0
    assert all(c["images_per_s"] > 0 and set(c["ms_per_image_alone"]) == set(MODELS) for c in report["ceiling"])
    [run] = report["pipeline"]
    assert run["compared"] == run["images"] > 0 and run["images_per_s"] > 0  # every image put was compared
    assert run["steady_seconds"] == pytest.approx(5.0, abs=0.5) and 0 < run["compared_in_steady_state"] <= run["images"]
    assert 0 < run["cores_busy"] <= report["cores"] + 0.5 and run["null_models"] is False
    assert all(ms >= 0 for ms in run["cpu_ms_per_image"].values())
    assert 0 < run["pipeline_over_ceiling"] and run["inference_cpu_over_forward"] > 0
    latency = run["latency"]
    assert latency["compared"] == latency["images"] == 16
    assert latency["timed"] == 16 and latency["total_ms"]["n"] == 16  # every image's way, stage by stage
    assert latency["total_ms"]["p50"] > 0 and set(latency["stages_ms"]) >= {"event_delay", "ingest", "inference"}
    functions = {name.split("[")[0] for name in run["cpu_ms_per_image"]}
    assert {"ingest", "aggregate", *(a.function for a in ARCHITECTURES.values())} <= functions
    assert {"kafka", "minio", "postgres"} <= set(run["peak_rss_mb"])
    assert all(run["peak_rss_mb"][name] > 0 for name in ("kafka", "ingest[0]", "infer-resnet50[0]"))


def test_drift_stays_quiet_on_the_usual_stream_and_fires_on_a_blurred_one(stack, pipeline):
    """The drift job on the real pipeline: ingest's pixel statistics against the
    training set's, ADWIN over the models' live answers, events and state in Postgres."""
    Database(stack).transaction(
        lambda cur: cur.execute(  # the training set's reference stays
            "DELETE FROM drift_detectors; DELETE FROM drift_watermarks WHERE name = 'comparisons'"
        )
    )
    window = stack.model_copy(update={"drift_window": 120})  # only this test's newest images

    usual = unique("usual")
    stream(stack, 120, 40_000, usual)
    wait_comparisons(stack, image_ids_for(stack, usual, 120))
    quiet = watch_drift(window)
    assert quiet["input:pixels"]["status"] == "ok", quiet["input:pixels"]["worst"]
    assert quiet["input:pixels"]["n_live"] == 120 and quiet["input:pixels"]["n_reference"] >= 500
    for model in MODELS:
        assert quiet[f"confidence:{model}"]["seen"] >= 120  # every comparison fed each model's watch once

    blurred = unique("blurred")
    stream(stack, 120, 41_000, blurred, shift="blur")
    wait_comparisons(stack, image_ids_for(stack, blurred, 120))
    events_before = rows_of(stack, "SELECT count(*) FROM system_events WHERE event_type = 'drift_detected'")[0][0]
    fired = watch_drift(window)
    assert fired["input:pixels"]["status"] == "drift"
    assert fired["input:pixels"]["worst"]["feature"] == "sharpness"
    assert fired["agreement"]["seen"] == quiet["agreement"]["seen"] + 120  # each comparison read once
    events = rows_of(
        stack, "SELECT details FROM system_events WHERE event_type = 'drift_detected' ORDER BY event_id DESC"
    )
    assert len(events) > events_before and "input:pixels" in {e[0]["detector"] for e in events}
    state = {r[0]: r[1] for r in rows_of(stack, "SELECT detector, status FROM drift_detectors")}
    assert state["input:pixels"] == "drift"

    # The scheduled job's own path (MLRun, as the jobs function's cron runs it) finds the same.
    run = run_job("drift", stack)
    assert run["state"] == "succeeded", run["error"]
    assert "input:pixels" in run["result"]["drifting"]
