"""Pure pieces of the lifecycle: step lines, confusion matrices, the report page,
and how replicas read model updates (champion vs challenger in shadow)."""

from __future__ import annotations

from triptych.config import Settings
from triptych.contracts import ModelUpdate
from triptych.inference.infer import Classifier
from triptych.inference.serving_model import LoadedModel, ServingModel
from triptych.lifecycle.candidate import confusion
from triptych.lifecycle.quality import render_html
from triptych.lifecycle.steps import describe_step
from triptych.models.card import ModelCard


def test_a_running_training_step_reads_as_progress():
    step = {
        "state": "running",
        "progress": {
            "epoch": 2,
            "epochs": 3,
            "images_done": 15000,
            "images_total": 36000,
            "test_accuracy": 0.91,
            "seconds_left": 420,
        },
        "result": None,
    }
    assert describe_step(step) == "epoch 2/3, 15000/36000 images, held-out 0.910, ~7.0 min left"


def test_finished_steps_read_as_their_outcome():
    assert describe_step({"state": "failed", "error": "boom", "result": None}) == "failed: boom"
    gate = {"state": "succeeded", "result": {"version": "4", "outcome": "challenger", "reason": "better"}}
    assert describe_step(gate) == "v4: challenger (better)"
    evaluate = {
        "state": "succeeded",
        "result": {"version": "4", "accuracy": 0.95, "champion": "3", "champion_accuracy": 0.9, "held_out_images": 120},
    }
    assert describe_step(evaluate) == "v4 held-out 0.950, champion v3 0.900 on the same 120 images"
    gather = {"state": "succeeded", "result": {"dataset_id": "a+b", "labelled_train": 8, "labelled_test": 2}}
    assert describe_step(gather) == "a+b: +8 labelled to train, +2 held out"


def test_confusion_counts_every_image_once_and_labels_outside_the_classes_as_other():
    matrix = confusion(["cat", "cat", "dog"], ["cat", "tench", "cat"], ["cat", "dog"])
    assert matrix["columns"] == ["cat", "dog", "other"]
    assert matrix["matrix"] == [[1, 0, 1], [1, 0, 0]]


def test_the_report_page_escapes_what_it_shows():
    report = {
        "date": "2026-11-26",
        "alerts": [{"message": "<script>x</script>"}],
        "objects": {"checked": 1},
        "integrity": {"images_without_comparison": {"count": 0, "examples": []}},
        "retention": {"images": 0},
        "figures": {},
    }
    page = render_html(report)
    assert "<script>x" not in page and "&lt;script&gt;" in page and "Integrity: images without comparison" in page


class Loaded:
    def __init__(self, version):
        self.version = version


def test_a_champion_replica_ignores_challenger_updates_and_the_shadow_replica_drops_on_none():
    settings = Settings()
    champion = ServingModel("resnet50", settings)
    shadow = ServingModel("resnet50", settings, alias="challenger")
    swapped = []
    for model in (champion, shadow):
        model._current = Loaded("3")
        model.swap_to = lambda version, m=model: swapped.append((m.alias, version))
    champion._apply(ModelUpdate(model_name="resnet50", version="7", alias="challenger").model_dump_json().encode())
    shadow._apply(ModelUpdate(model_name="resnet50", version="7", alias="challenger").model_dump_json().encode())
    assert swapped == [("challenger", "7")]
    shadow._apply(ModelUpdate(model_name="resnet50", version=None, alias="challenger").model_dump_json().encode())
    assert shadow.loaded is None and champion.loaded.version == "3"
    shadow._apply(b"not json")  # ignored, not raised


def test_the_int8_twin_follows_the_champion_only_to_versions_with_a_published_int8_export(monkeypatch):
    from triptych.models import registry

    published = {"3": "true", "7": "false"}  # v7: quantised, but it failed its agreement gate
    monkeypatch.setattr(
        registry,
        "tag_of",
        lambda model, version, tag, settings=None: published.get(version) if tag == "int8.published" else None,
    )
    twin = ServingModel("resnet50", Settings(), "onnx-int8")
    fp32 = ServingModel("resnet50", Settings(), "onnx")
    swapped = []
    for model in (twin, fp32):
        model.swap_to = lambda version, m=model: (
            swapped.append((m.backend_kind, version)),
            setattr(m, "_current", Loaded(version)),
        )
    for version in ("3", "7", "8"):  # announced in turn: v8 was never quantised
        update = ModelUpdate(model_name="resnet50", version=version).model_dump_json().encode()
        twin._apply(update)
        fp32._apply(update)
        if version == "3":
            assert twin.loaded.version == "3"
        else:
            assert twin.loaded is None, f"the twin must not answer for v{version}: it has no int8 export"
    assert swapped == [("onnx-int8", "3"), ("onnx", "3"), ("onnx", "7"), ("onnx", "8")]
    assert fp32.runnable("8") and not twin.runnable("8")


def test_a_shadow_or_int8_replica_with_nothing_to_serve_answers_nothing_and_fetches_nothing():
    class Idle:
        loaded = None

    class NoFetch:
        def get_object(self, *args, **kwargs):
            raise AssertionError("nothing should be fetched")

    message = {
        "image_id": "5f0b6c1e-6f1d-4c35-9a8e-7d3c1a2b9e40",
        "bucket": "images",
        "object_key": "k",
        "sha256": "0" * 64,
        "image_format": "png",
        "width": 1,
        "height": 1,
        "source": "upload",
    }
    for role in ("shadow", "int8"):
        classifier = Classifier(Settings(), [Idle(), Idle()], NoFetch(), producer=None, worker_id="t", role=role)
        assert classifier.handle([message]) == []


def test_loaded_model_version_comes_from_its_card():
    card = ModelCard(model_name="resnet50", labels=["a"], input_size=8, dataset_id="d", version="5")
    assert LoadedModel(card, backend=None).version == "5"


def test_a_decision_is_posted_to_the_webhook_and_a_dead_webhook_is_only_logged():
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from triptych.lifecycle.gate import notify

    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.handle_request, daemon=True).start()
    record = {"model_name": "resnet50", "version": "4", "decision": "champion", "reason": "better"}
    notify(record, Settings(decision_webhook_url=f"http://127.0.0.1:{server.server_port}/hook"))
    server.server_close()
    assert received == [record]
    notify(record, Settings(decision_webhook_url=f"http://127.0.0.1:{server.server_port}/gone"))  # no raise


def test_every_scheduled_job_runs_with_or_without_mlrun():
    """Each job's handler is in the package, for the serving image (no MLRun, no
    projects/ folder: the `jobs` function on Kubernetes), and in MLRun's command file."""
    import importlib.util

    from triptych.lifecycle import job_handlers, jobs

    spec = importlib.util.spec_from_file_location("lifecycle_jobs", jobs.JOB_FILE)
    command_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(command_file)
    for handler, _ in jobs.JOBS.values():
        assert getattr(command_file, handler) is getattr(job_handlers, handler)
    context = jobs._Results()
    context.log_result("a", 1)
    context.log_results({"b": 2})
    assert context.results == {"a": 1, "b": 2}
