"""The model lifecycle against the real stack (MLflow, MinIO, Postgres, Kafka):
the retrain workflow with its recorded steps, the review loop feeding it, the
gate's shadow phase with a hot swap during a stream, and the data-quality job."""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from triptych.aggregation.aggregate import Aggregator
from triptych.aggregation.labels import set_ground_truth
from triptych.config import Settings
from triptych.contracts import ClassScore, PredictionMessage, Timings
from triptych.datasets.bucket import read_manifest
from triptych.datasets.sources import synthetic_items
from triptych.db import runs
from triptych.db.connection import Database
from triptych.db.images import NewImage, register_image
from triptych.ingress.objects import image_id_for
from triptych.lifecycle import gate
from triptych.lifecycle.quality import run_data_quality
from triptych.lifecycle.workflow import run_retrain_workflow
from triptych.models import registry
from triptych.models.bootstrap import QUICK, missing_champions, train_as_mlrun_job
from triptych.models.zoo import ARCHITECTURES, architecture
from triptych.storage import minio_client

from .conftest import triptych
from .pipeline_helpers import start_pipeline, unique
from .runtime_helpers import query, wait_for

TINY = {"train_count": 300, "test_count": 100, "epochs": 1}


def rows(stack, sql, params=()):
    return query(stack, sql, params, dicts=True)


def put_image(stack, data: bytes, label: str | None, tag: str, uploaded_ago_s: float = 0.0) -> str:
    """An object in the images bucket and its registered row (as ingest would leave it)."""
    key = f"{tag}/{uuid.uuid4().hex}.png"
    minio_client(stack).put_object(stack.images_bucket, key, io.BytesIO(data), len(data))
    sha = hashlib.sha256(data).hexdigest()
    image_id = image_id_for(stack.images_bucket, key, "", sha)
    db = Database(stack)
    db.transaction(
        lambda cur: register_image(
            cur,
            NewImage(
                image_id=image_id,
                bucket=stack.images_bucket,
                object_key=key,
                object_version="",
                sha256=sha,
                filename=f"{tag}.png",
                size_bytes=len(data),
                source="upload",
                ground_truth_label=label,
                content_type="image/png",
                image_format="png",
            ),
        )
    )
    if uploaded_ago_s:
        db.transaction(
            lambda cur: cur.execute(
                "UPDATE images SET uploaded_at = now() - make_interval(secs => %s) WHERE image_id = %s",
                (uploaded_ago_s, image_id),
            )
        )
    return image_id


def answer(image_id: str, model: str, version: str, label: str) -> PredictionMessage:
    return PredictionMessage(
        image_id=image_id,
        model_name=model,
        model_version=version,
        top_k=[ClassScore(label=label, confidence=0.9)],
        timings=Timings(fetch_ms=1.0, decode_ms=1.0, preprocess_ms=1.0, inference_ms=5.0, total_ms=8.0),
        backend="torch",
        batch_size=1,
        worker_id="test",
    )


@pytest.fixture(scope="module")
def champions(stack):
    for name in missing_champions(stack):
        train_as_mlrun_job(name, QUICK, policy="always")
    return {name: registry.version_for_alias(name, registry.CHAMPION, stack) for name in ARCHITECTURES}


def test_review_label_feeds_a_parallel_workflow_run_with_recorded_lineage(stack, champions):
    tag = unique("review")
    samples = [item for _, item in zip(range(12), synthetic_items("train", start=50_000))]
    # A disagreement among the champions lands in the review queue...
    disputed = put_image(stack, samples[0].data, None, tag)
    Aggregator.from_settings(stack).handle(
        [
            answer(disputed, m, champions[m], label).model_dump_json()
            for m, label in zip(ARCHITECTURES, ("circle", "square", "star"))
        ]
    )
    queue = json.loads(triptych("review", "list", "--limit", "500", "--json").stdout)
    assert disputed in {str(r["image_id"]) for r in queue["images"]}
    # ... and a person's label takes it out and into the next training set.
    labelled = triptych("label", disputed, samples[0].label)
    assert labelled.returncode == 0, labelled.stderr
    assert rows(stack, "SELECT ground_truth_label, needs_review FROM images WHERE image_id = %s", (disputed,)) == [
        {"ground_truth_label": samples[0].label, "needs_review": False}
    ]
    refused = triptych("label", disputed, "zebra")
    assert refused.returncode == 1 and "not a class" in refused.stderr
    others = [put_image(stack, s.data, s.label, tag) for s in samples[1:]]

    db = Database(stack)
    run_id = str(db.transaction(lambda cur: runs.create_run(cur, "retrain", {"test": tag}, "test"))["run_id"])
    models = list(ARCHITECTURES)
    db.transaction(lambda cur: runs.start_run(cur, run_id))
    result = run_retrain_workflow(run_id, models, stack, quick=True, overrides=TINY, db=db)
    db.transaction(lambda cur: runs.finish_run(cur, run_id, result))
    steps = {s["step"]: s for s in db.transaction(lambda cur: runs.steps_of(cur, [run_id]))[run_id]}
    assert set(steps) == {"gather", *(f"{p}:{m}" for m in models for p in ("train", "evaluate", "gate"))}
    assert all(s["state"] == "succeeded" and s["ended_at"] for s in steps.values())

    # The training set: the base set plus every labelled image, split by content hash.
    gathered = steps["gather"]["result"]
    assert gathered["labelled"] and gathered["dataset_id"] == f"{gathered['base']}+{gathered['labelled']}"
    manifest = read_manifest(gathered["labelled"], stack)
    assert sum(manifest.counts.values()) == gathered["labelled_train"] + gathered["labelled_test"] >= 12
    published = {
        o.object_name
        for o in minio_client(stack).list_objects(
            stack.datasets_bucket, prefix=f"{gathered['labelled']}/", recursive=True
        )
    }
    assert any(disputed in key for key in published), "the label set on the review queue is in the training set"
    assert all(any(i in key for key in published) for i in others)

    # Trainings overlapped in time: they ran in parallel (two at a time on two cores).
    trainings = sorted((steps[f"train:{m}"] for m in models), key=lambda s: s["started_at"])
    first, second = trainings[:2]
    assert first["started_at"] < second["ended_at"] and second["started_at"] < first["ended_at"]

    client = MlflowClient(stack.mlflow_url)
    for model in models:
        evaluated = steps[f"evaluate:{model}"]["result"]
        version = evaluated["version"]
        # Candidate and champion judged on the same held-out images.
        assert evaluated["champion"] == champions[model] and evaluated["champion_accuracy"] is not None
        assert evaluated["held_out_images"] == TINY["test_count"] + gathered["labelled_test"]
        tags = client.get_model_version(architecture(model).registered_name, version).tags
        assert tags["dataset_id"] == gathered["dataset_id"] and tags["workflow_run_id"] == run_id
        assert tags["split"] == gathered["split"]
        mlflow_run = client.get_run(steps[f"train:{model}"]["mlflow_run_id"])
        assert {"heldout_accuracy", "champion_heldout_accuracy", "epoch_test_accuracy"} <= set(mlflow_run.data.metrics)
        with tempfile.TemporaryDirectory() as tmp:
            matrix = json.loads(
                Path(client.download_artifacts(mlflow_run.info.run_id, "confusion_matrix.json", tmp)).read_text()
            )
        assert sum(map(sum, matrix["matrix"])) == evaluated["held_out_images"]
        # One epoch on 300 images is far worse than the champions: rejected, champion unchanged, recorded.
        outcome = result["outcomes"][model]
        assert outcome["outcome"] == gate.REJECTED, outcome
        assert registry.version_for_alias(model, registry.CHAMPION, stack) == champions[model]
        assert tags["decision"] == "rejected"
        assert (
            rows(
                stack,
                "SELECT count(*) AS n FROM system_events WHERE event_type = 'model_rejected' AND dedup_key = %s",
                (f"gate:{model}:{version}:rejected",),
            )[0]["n"]
            == 1
        )

    shown = json.loads(triptych("runs", "show", run_id, "--json").stdout)
    assert [s["step"] for s in shown["steps"]][0] == "gather" and len(shown["steps"]) == 1 + 3 * len(models)


def copy_of_champion(stack, model: str, champion: str) -> str:
    """A new version with the champion's weights: as accurate as the champion on any image."""
    import torch

    from triptych.models.zoo import build

    with tempfile.TemporaryDirectory() as tmp:
        card, folder = registry.download(model, champion, Path(tmp), stack)
        net = build(model, len(card.labels))
        net.load_state_dict(torch.load(folder / "model.pt"))
        return registry.register(net.eval(), card.model_copy(update={"version": None}), settings=stack).version


def test_a_challenger_in_shadow_is_promoted_on_live_labels_and_hot_swapped_during_a_stream(stack, champions, tmp_path):
    from triptych.datasets.sources import Item
    from triptych.ingress.producers import BucketWriter

    # Two challengers: one as good as its champion (a copy), one trained far too little.
    good = copy_of_champion(stack, "mobilenet_v2", champions["mobilenet_v2"])
    poor = train_as_mlrun_job("efficientnet_b0", QUICK, policy="never", **TINY)["version"]
    run = {"ingest": 1, "aggregate": 1, "infer-shadow": 1, **{a.function: 1 for a in ARCHITECTURES.values()}}
    sup = start_pipeline(tmp_path, run, {})
    try:
        for model, version in (("mobilenet_v2", good), ("efficientnet_b0", poor)):
            gate.apply(model, version, gate.decide(0.9, 0.5, 0.02), stack)  # better by the margin: into shadow
            assert registry.version_for_alias(model, registry.CHALLENGER, stack) == version

        tag = unique("shadow")
        writer = BucketWriter(stack, "synthetic")
        stop = threading.Event()
        sent = Counter()

        def stream():
            for item in synthetic_items("test", start=20_000):
                if stop.is_set():
                    return
                writer.put(Item(f"{tag}-{item.filename}", item.data, item.label, item.client))
                sent["n"] += 1
                time.sleep(0.1)

        streamer = threading.Thread(target=stream)
        streamer.start()
        try:
            # The shadow replica answers the live stream: its answers are stored, marked shadow.
            shadowed = wait_for(
                lambda: (
                    (
                        r := rows(
                            stack,
                            """
                SELECT p.image_id FROM predictions p JOIN images i USING (image_id)
                WHERE p.role = 'shadow' AND p.model_name = 'efficientnet_b0' AND p.model_version = %s
                  AND i.filename LIKE %s""",
                            (poor, f"{tag}-%"),
                        )
                    )
                    and len(r) >= 30
                    and r
                ),
                300,
                message="30 shadow answers from the poor challenger",
            )
            ids = [str(r["image_id"]) for r in shadowed]
            compared = wait_for(
                lambda: (
                    (r := rows(stack, "SELECT * FROM model_comparisons WHERE image_id = ANY(%s::uuid[])", (ids,)))
                    and len(r) == len(ids)
                    and r
                ),
                240,
                message="their comparisons",
            )
            for c in compared:  # never part of the consensus, shown beside it
                assert c["model_versions"] == {m: champions[m] for m in ARCHITECTURES}
            wait_for(
                lambda: all(
                    c["shadow"].get("efficientnet_b0", {}).get("version") == poor
                    for c in rows(
                        stack, "SELECT shadow FROM model_comparisons WHERE image_id = ANY(%s::uuid[])", (ids,)
                    )
                ),
                60,
                message="shadow answers beside the comparisons",
            )

            decided = gate.review_shadow(Settings(**{**stack.model_dump(), "shadow_label_budget": 30}))
            by_model = {d["model_name"]: d for d in decided}
            assert by_model["mobilenet_v2"]["outcome"] == gate.CHAMPION, by_model
            assert by_model["efficientnet_b0"]["outcome"] == gate.REJECTED, by_model
            assert registry.version_for_alias("mobilenet_v2", registry.CHAMPION, stack) == good
            assert (
                registry.version_for_alias("efficientnet_b0", registry.CHAMPION, stack) == champions["efficientnet_b0"]
            )
            assert registry.version_for_alias("mobilenet_v2", registry.CHALLENGER, stack) is None
            assert registry.version_for_alias("efficientnet_b0", registry.CHALLENGER, stack) is None
            # The champion replica hot-swaps: new images get the promoted version, without a restart.
            wait_for(
                lambda: rows(
                    stack,
                    """SELECT 1 FROM predictions p JOIN images i USING (image_id)
                WHERE p.role = 'champion' AND p.model_name = 'mobilenet_v2' AND p.model_version = %s
                  AND i.filename LIKE %s LIMIT 1""",
                    (good, f"{tag}-%"),
                ),
                120,
                message="the promoted version serving",
            )
        finally:
            stop.set()
            streamer.join()
        images = wait_for(
            lambda: (
                (r := rows(stack, "SELECT image_id FROM images WHERE filename LIKE %s", (f"{tag}-%",)))
                and len(r) >= sent["n"]
                and r
            ),
            120,
            message=f"{sent['n']} images registered",
        )
        all_ids = [str(r["image_id"]) for r in images]
        wait_for(
            lambda: (
                rows(stack, "SELECT count(*) AS n FROM model_comparisons WHERE image_id = ANY(%s::uuid[])", (all_ids,))[
                    0
                ]["n"]
                >= len(all_ids)
            ),
            300,
            message="every image compared",
        )
        # Every image compared exactly once, from exactly one champion answer per model.
        per_image = rows(
            stack,
            "SELECT image_id, count(*) AS n FROM model_comparisons WHERE image_id = ANY(%s::uuid[]) GROUP BY image_id",
            (all_ids,),
        )
        assert len(per_image) == len(all_ids) and {r["n"] for r in per_image} == {1}
        answers = rows(
            stack,
            "SELECT image_id, model_name, count(*) AS n FROM predictions WHERE role = 'champion' "
            "AND image_id = ANY(%s::uuid[]) GROUP BY 1, 2",
            (all_ids,),
        )
        assert len(answers) == 3 * len(all_ids) and {r["n"] for r in answers} == {1}
        events = {
            r["event_type"]
            for r in rows(
                stack,
                "SELECT event_type FROM system_events WHERE dedup_key IN (%s, %s)",
                (f"promote:mobilenet_v2:{good}", f"gate:efficientnet_b0:{poor}:rejected"),
            )
        }
        assert events == {"model_promoted", "model_rejected"}
        assert registry.tag_of("mobilenet_v2", good, "decision", stack) == "champion"
    finally:
        sup.stop()
        # Leave the champions the other tests expect.
        from triptych.models.champion_alias import promote

        promote("mobilenet_v2", champions["mobilenet_v2"], "test cleanup", stack)


def test_the_int8_twin_answers_the_live_stream_beside_its_champion_and_is_compared_with_it(stack, champions, tmp_path):
    """`infer-int8` running beside the champions serves nothing until `triptych models
    quantize` publishes a champion's int8 export and announces it; then it answers the
    live stream with it, into `int8_predictions` only (no comparison, consensus or
    fp32 row changes), and the Compare page's figures pair each int8 answer with the
    same version's fp32 answer to the same image. The gate is lowered to 0: what is
    under test is the live twin, not the quick champion's agreement."""
    from datetime import datetime, timedelta

    from triptych.datasets.sources import Item
    from triptych.figures.ranges import range_int8
    from triptych.ingress.producers import BucketWriter
    from triptych.lifecycle.int8 import export_int8_champions, quantize_version
    from triptych.runtime.wake import int8_published

    from .runtime_helpers import wait_group_stable

    model, version = "mobilenet_v2", champions["mobilenet_v2"]
    started = datetime.now(UTC)
    run = {"ingest": 1, "aggregate": 1, "infer-int8": 1, **{a.function: 1 for a in ARCHITECTURES.values()}}
    sup = start_pipeline(tmp_path, run, {})
    try:
        wait_group_stable(stack, "infer-int8", 1)  # its replica is up, watching model-updates
        result = quantize_version(model, version, stack, calibration_count=64, held_out_count=100, min_agreement=0.0)
        assert result["published"]
        assert int8_published(stack), "the supervisor's wake condition sees the published export"
        assert model in export_int8_champions(stack), "and so does KEDA's, through the jobs function's gauge"

        tag = unique("int8")
        writer = BucketWriter(stack, "synthetic")
        stop = threading.Event()

        def stream():
            for item in synthetic_items("test", start=30_000):
                if stop.is_set():
                    return
                writer.put(Item(f"{tag}-{item.filename}", item.data, item.label, item.client))
                time.sleep(0.1)

        twin_rows = """SELECT q.image_id, q.predicted_class, q.backend, p.predicted_class AS fp32_class, p.role,
                              i.ground_truth_label FROM int8_predictions q JOIN images i USING (image_id)
                       LEFT JOIN predictions p USING (image_id, model_name, model_version)
                       WHERE q.model_name = %s AND q.model_version = %s AND i.filename LIKE %s"""
        streamer = threading.Thread(target=stream)
        streamer.start()
        try:
            wait_for(
                lambda: len(rows(stack, twin_rows, (model, version, f"{tag}-%"))) >= 30, 300, message="30 int8 answers"
            )
        finally:
            stop.set()
            streamer.join()

        # One snapshot for both reads (the twin may still be answering): the page's figures and the rows.
        def snapshot(cur):
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            figures = range_int8(cur, started, datetime.now(UTC) + timedelta(minutes=1))
            cur.execute(twin_rows + " AND p.predicted_class IS NOT NULL", (model, version, f"{tag}-%"))
            return {(r["model_name"], r["model_version"]): r for r in figures}, cur.fetchall()

        figures, twin = Database(stack).transaction(snapshot)
        assert len(twin) >= 30
        assert {r["backend"] for r in twin} == {"onnxruntime-cpu-int8"} and {r["role"] for r in twin} == {"champion"}
        ids = [str(r["image_id"]) for r in twin]
        compared = wait_for(
            lambda: (
                (r := rows(stack, "SELECT * FROM model_comparisons WHERE image_id = ANY(%s::uuid[])", (ids,)))
                and len(r) == len(ids)
                and r
            ),
            240,
            message="their comparisons",
        )
        for c in compared:  # the fp32 champions' comparison, untouched by the int8 answers
            assert c["model_versions"] == {m: champions[m] for m in ARCHITECTURES}
            assert set(c["per_model"]) == set(ARCHITECTURES)

        mine = figures[(model, version)]
        # The same figures from the rows themselves, image by image (the range holds only this test's answers).
        assert mine["answered"] == len(twin) and mine["labelled"] == len(twin)  # the stream is labelled
        assert mine["agreement"] == pytest.approx(
            sum(r["fp32_class"] == r["predicted_class"] for r in twin) / len(twin)
        )
        fp32_right = [r["fp32_class"] == r["ground_truth_label"] for r in twin]
        int8_right = [r["predicted_class"] == r["ground_truth_label"] for r in twin]
        test = mine["test"]
        assert test["n"] == len(twin) and test["accuracy"] == pytest.approx(
            [sum(fp32_right) / len(twin), sum(int8_right) / len(twin)]
        )
        assert test["b"] == sum(a and not b for a, b in zip(fp32_right, int8_right))
        assert test["c"] == sum(b and not a for a, b in zip(fp32_right, int8_right))
        assert 0 <= test["p_value"] <= 1 and "fp32" in test["verdict"] and "int8" in test["verdict"]
        assert mine["int8_p50_ms"] > 0 and mine["fp32_p50_ms"] > 0
        print(
            f"\n[int8 live] {model} v{version}: {mine['answered']} images, agreement {mine['agreement']:.1%}, "
            f"p50 forward fp32 {mine['fp32_p50_ms']:.2f} / int8 {mine['int8_p50_ms']:.2f} ms; {test['verdict']}"
        )
    finally:
        sup.stop()


def test_data_quality_quarantines_reports_and_applies_retention(stack, champions):
    tag = unique("dq")
    good = next(iter(synthetic_items("test", start=70_000)))
    corrupt = put_image(stack, b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, None, tag)  # sha matches; does not decode
    waiting = put_image(stack, good.data, None, tag, uploaded_ago_s=90)  # no comparison, past the timeout
    old = put_image(stack, good.data + b"old", good.label, tag, uploaded_ago_s=40 * 86400)
    kept = put_image(stack, good.data + b"kept", good.label, tag, uploaded_ago_s=10 * 86400)
    reviewed = put_image(stack, good.data + b"reviewed", None, tag, uploaded_ago_s=40 * 86400)
    out_of_step = put_image(stack, good.data + b"step", good.label, tag)
    aggregator = Aggregator.from_settings(stack)
    aggregator.handle([answer(out_of_step, m, champions[m], "circle").model_dump_json() for m in ARCHITECTURES])
    aggregator.handle([answer(old, m, champions[m], "circle").model_dump_json() for m in ARCHITECTURES])
    db = Database(stack)
    db.transaction(lambda cur: set_ground_truth(cur, reviewed, good.label, set(), who="test"))  # a person's label
    db.transaction(
        lambda cur: cur.execute(
            """UPDATE model_comparisons SET per_model = jsonb_set(per_model, '{resnet50,class}', '"square"'),
               updated_at = now() WHERE image_id = %s""",
            (out_of_step,),
        )
    )
    old_key = rows(stack, "SELECT object_key FROM images WHERE image_id = %s", (old,))[0]["object_key"]
    db.transaction(
        lambda cur: cur.execute(
            """INSERT INTO model_metrics (model_name, model_version, window_start, window_seconds, prediction_count)
           VALUES ('resnet50', %(v)s, now() - interval '40 days', 60, 1), ('resnet50', %(v)s, now() - interval '40 days', 3600, 1)
           ON CONFLICT DO NOTHING""",
            {"v": f"dq-{tag}"},
        )
    )

    # A dead letter in the last day, and a threshold any dead letter crosses: an alert.
    db.transaction(
        lambda cur: cur.execute(
            "SELECT log_system_event('dead_letter', 'error', 'test', 'planted', '{}'::jsonb, NULL, %s)", (f"dq-{tag}",)
        )
    )
    settings = Settings(**{**stack.model_dump(), "comparison_timeout_s": 60, "alert_dead_letter_rate": 0.0})
    summary = run_data_quality(settings)

    quarantined = rows(
        stack, "SELECT status, object_key, quarantine_reason FROM images WHERE image_id = %s", (corrupt,)
    )[0]
    assert quarantined["status"] == "quarantined" and quarantined["object_key"].startswith("quarantine/")
    assert "undecodable" in quarantined["quarantine_reason"]
    minio_client(stack).stat_object(stack.images_bucket, quarantined["object_key"])  # kept, moved aside

    report = json.loads(
        minio_client(stack).get_object(stack.reports_bucket, summary["report_json"].split("/", 3)[3]).read()
    )
    assert corrupt in report["objects"]["quarantined_examples"]
    assert waiting in report["integrity"]["images_without_comparison"]["examples"]
    assert out_of_step in report["integrity"]["comparisons_out_of_step"]["examples"]
    html = minio_client(stack).get_object(stack.reports_bucket, summary["report_html"].split("/", 3)[3]).read()
    assert b"<h1>Data quality" in html and b"Retention" in html

    # Retention: the 40-day-old image, its predictions, comparison and object are gone; the 10-day one
    # stays, and so does an old one a person labelled (training data).
    assert {
        r["image_id"]
        for r in rows(stack, "SELECT image_id FROM images WHERE image_id = ANY(%s::uuid[])", ([old, kept, reviewed],))
    } == {kept, reviewed}
    assert rows(stack, "SELECT count(*) AS n FROM predictions WHERE image_id = %s", (old,))[0]["n"] == 0
    with pytest.raises(Exception, match="NoSuchKey|does not exist"):
        minio_client(stack).stat_object(stack.images_bucket, old_key)
    windows = rows(stack, "SELECT window_seconds FROM model_metrics WHERE model_version = %s", (f"dq-{tag}",))
    assert windows == [{"window_seconds": 3600}], "minute windows expire; hourly snapshots stay"
    assert summary["deleted_images"] >= 1 and summary["quarantined"] >= 1
    assert any(a["name"] == "dead_letter_rate" for a in report["alerts"])
    assert (
        rows(
            stack,
            "SELECT count(*) AS n FROM system_events WHERE event_type = 'alert' AND dedup_key LIKE %s",
            ("dq-alert:dead_letter_rate:%",),
        )[0]["n"]
        >= 1
    )


def test_scheduled_jobs_run_by_hand_are_recorded(stack):
    proc = triptych("jobs", "run", "metrics", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    shown = json.loads(triptych("runs", "show", result["run_id"], "--json").stdout)
    assert shown["workflow"] == "metrics" and shown["state"] == "succeeded"
    assert [s["step"] for s in shown["steps"]] == ["metrics"] and shown["steps"][0]["state"] == "succeeded"
    unknown = triptych("jobs", "run", "nope")
    assert unknown.returncode == 2 and "no job 'nope'" in unknown.stderr


def test_a_restarted_retrain_function_fails_only_runs_whose_process_went_quiet(stack):
    from triptych.lifecycle.retrain import WORKFLOW, Retrainer

    db = Database(stack)
    live, dead = (
        str(db.transaction(lambda cur: runs.create_run(cur, WORKFLOW, {}, "test"))["run_id"]) for _ in range(2)
    )
    for run_id in (live, dead):
        db.transaction(lambda cur, r=run_id: runs.start_run(cur, r))
    db.transaction(
        lambda cur: cur.execute(
            "UPDATE pipeline_runs SET heartbeat_at = now() - interval '10 minutes' WHERE run_id = %s", (dead,)
        )
    )
    try:
        assert Retrainer(stack).recover() >= 1
        states = {r: db.transaction(lambda cur, r=r: runs.get_run(cur, r))["state"] for r in (live, dead)}
        assert states == {live: "running", dead: "failed"}
    finally:
        db.transaction(lambda cur: runs.finish_run(cur, live, None, "test over"))


@pytest.mark.timeout(180)
def test_a_failing_step_fails_the_run_at_once_instead_of_hanging(stack):
    db = Database(stack)
    run_id = str(db.transaction(lambda cur: runs.create_run(cur, "retrain", {}, "test"))["run_id"])
    with pytest.raises(RuntimeError, match="gather failed"):
        run_retrain_workflow(run_id, ["mobilenet_v2"], stack, dataset_id="no-such-set", db=db)
    gather = db.transaction(lambda cur: runs.get_run(cur, run_id))["steps"][0]
    assert gather["step"] == "gather" and gather["state"] == "failed" and "no-such-set" in gather["error"]
    db.transaction(lambda cur: runs.finish_run(cur, run_id, None, "test over"))
