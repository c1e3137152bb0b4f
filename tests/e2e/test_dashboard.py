"""Every dashboard page in a real browser over the real stack and pipeline: what
each page shows (not only that it loads), an upload answered by the three models,
the Live page moving with a stream, a label set on the Review page landing in
Postgres, and clear messages for bad input. A screenshot of every page is saved
(see conftest.ARTIFACTS)."""

from __future__ import annotations

import io
import re
import threading
import uuid

import pytest
from PIL import Image
from playwright.sync_api import expect

from triptych.aggregation.aggregate import Aggregator
from triptych.aggregation.compare import Answer, compare
from triptych.aggregation.store import upsert_comparison
from triptych.contracts import ClassScore, PredictionMessage, Timings
from triptych.datasets.sources import Item, synthetic_items
from triptych.db.connection import Database
from triptych.ingress.producers import BucketWriter
from triptych.lifecycle.drift import watch_drift

from .conftest import screenshot

pytestmark = pytest.mark.integration
TIMEOUT_MS = 60_000


def fresh_png() -> bytes:
    """A PNG no earlier run uploaded (known bytes would be answered as a duplicate)."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), tuple(uuid.uuid4().bytes[:3])).save(out, "PNG", pnginfo=_note(uuid.uuid4().hex))
    return out.getvalue()


def _note(text: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("run", text)
    return info


def rows(stack, sql, params=()):
    return Database(stack).transaction(lambda cur: (cur.execute(sql, params), cur.fetchall())[1])


# --- a first-time user: an empty database ------------------------------------------

EMPTY_STATES = {
    "/": "Nothing compared yet.",
    "/upload": "No uploads in this session yet.",
    "/webcam": "Hold an object up to the camera",
    "/image": "No images yet.",
    "/compare": "No predictions in the last hour",
    "/history": "No images in the last 24 hours match these filters.",
    "/review": "Nothing to review.",
    "/models": "Decisions and labels",
}


@pytest.mark.parametrize("path", list(EMPTY_STATES))
def test_each_page_tells_a_first_time_user_what_to_do(empty_dashboard, page, path):
    empty_dashboard.open(page, path)
    expect(page.get_by_text(EMPTY_STATES[path]).first).to_be_visible(timeout=TIMEOUT_MS)
    # Every page is one click from every other.
    for name in ("Live", "Upload", "Webcam", "Image", "Compare", "History", "Review", "Models"):
        expect(page.locator(f"#nav-{name.lower()}")).to_have_attribute("href", re.compile("/"))
    screenshot(page, f"empty{path.replace('/', '-') if path != '/' else '-live'}")


# --- the running pipeline --------------------------------------------------------------


def test_upload_shows_three_answers_and_a_consensus(dashboard, page, stack):
    item = next(synthetic_items("test", start=100_000 + uuid.uuid4().int % 1_000_000))
    name = f"dash-{uuid.uuid4().hex[:8]}.png"
    dashboard.open(page, "/upload")
    # Typed, then its option clicked once it shows: pressing Enter straight after typing
    # picked the first option ("arrow") when the keys landed before the menu had
    # filtered (CI stored an image of a cross as an arrow).
    page.locator("#upload-label").click()
    page.keyboard.type(item.label)
    page.get_by_role("option", name=item.label, exact=True).click(timeout=TIMEOUT_MS)
    expect(page.locator("#upload-label")).to_contain_text(item.label)
    page.locator("#upload-drop input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": item.data}]
    )
    expect(page.locator("#upload-summary")).to_contain_text("1 stored", timeout=TIMEOUT_MS)
    consensus = page.locator(".upload-consensus")
    expect(consensus).to_contain_text("consensus", timeout=TIMEOUT_MS)
    chips = page.locator(".upload-card .answer-chip")
    expect(chips).to_have_count(3)
    for k in range(3):
        expect(chips.nth(k).locator(".chip-class")).to_have_text(re.compile(r"\w+"))
    screenshot(page, "upload")
    stored = rows(stack, "SELECT ground_truth_label, source FROM images WHERE filename = %s", (name,))
    assert [(r["ground_truth_label"], r["source"]) for r in stored] == [(item.label, "upload")]

    # The uploaded image's own page: three models, top-5, timings by stage, neighbours.
    page.locator(".upload-card a").first.click()
    expect(page.locator("#image-consensus")).to_be_visible(timeout=TIMEOUT_MS)
    for model in ("resnet50", "mobilenet_v2", "efficientnet_b0"):
        card = page.locator(f"#image-model-{model}")
        expect(card).to_contain_text("inference")
        expect(card).to_contain_text("batch of")
    expect(page.locator("#image-older")).to_be_visible()
    # Where each model looked: three Grad-CAM PNGs that really load (rendered by the
    # dashboard's explainer worker on first view), each captioned with its layer.
    for model in ("resnet50", "mobilenet_v2", "efficientnet_b0"):
        heat = page.locator(f"#image-gradcam-{model}")
        heat.scroll_into_view_if_needed()
        page.wait_for_function(
            "el => el.complete && el.naturalWidth === 224", arg=heat.element_handle(), timeout=TIMEOUT_MS
        )
    expect(page.locator("#image-gradcams")).to_contain_text("layer3[-1]")
    screenshot(page, "image")


def test_a_refused_file_says_why_and_its_neighbour_still_goes_through(dashboard, page, stack):
    good, bad = f"good-{uuid.uuid4().hex[:8]}.png", f"notes-{uuid.uuid4().hex[:8]}.png"
    dashboard.open(page, "/upload")
    page.locator("#upload-drop input[type=file]").set_input_files(
        files=[
            {"name": bad, "mimeType": "image/png", "buffer": b"this is plain text, not a picture"},
            {"name": good, "mimeType": "image/png", "buffer": fresh_png()},
        ]
    )
    expect(page.locator("#upload-summary")).to_contain_text("1 stored, 0 already known, 1 refused", timeout=TIMEOUT_MS)
    expect(page.locator(".upload-card.refused .upload-reason")).to_contain_text("not a JPEG, PNG, WebP or BMP image")
    assert rows(stack, "SELECT 1 FROM images WHERE filename = %s", (bad,)) == []
    assert len(rows(stack, "SELECT 1 FROM images WHERE filename = %s", (good,))) == 1


def test_live_page_moves_with_the_stream(dashboard, page, stack):
    dashboard.open(page, "/")
    expect(page.locator("#live-count-images_in")).to_be_visible(timeout=TIMEOUT_MS)
    tag = f"live-{uuid.uuid4().hex[:6]}"
    writer = BucketWriter(stack, "synthetic")
    items = synthetic_items("test", start=100_000 + uuid.uuid4().int % 1_000_000)
    sender = threading.Thread(
        target=lambda: [
            writer.put(Item(f"{tag}-{i.filename}", i.data, i.label, i.client)) for _, i in zip(range(6), items)
        ]
    )
    sender.start()
    # The stream shows the new images, with three answers each, without a reload.
    expect(page.locator(".stream-card", has_text=tag).first).to_be_visible(timeout=TIMEOUT_MS)
    sender.join()
    expect(page.locator(".stream-card", has_text=tag).first.locator(".answer-chip")).to_have_count(3)
    expect(page.locator("#live-models")).to_contain_text("ResNet50")
    # The stack's servers (this test's functions run under their own supervisor, outside the stack).
    for server in ("postgres", "kafka", "minio", "mlflow"):
        expect(page.locator("#live-health")).to_contain_text(server)
    screenshot(page, "live")


def _is_live_refresh(request) -> bool:
    return "_dash-update-component" in request.url and "live-interval" in (request.post_data or "")


def test_a_hidden_live_tab_stops_refreshing(dashboard, page):
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if _is_live_refresh(r) else None)
    dashboard.open(page, "/")
    expect(page.locator("#live-count-images_in")).to_be_visible(timeout=TIMEOUT_MS)

    def set_hidden(hidden: bool) -> None:
        page.evaluate(
            """(hidden) => {
            Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }""",
            hidden,
        )

    set_hidden(True)
    page.wait_for_timeout(500)  # a refresh already in flight may still land
    before = len(refreshes)
    page.wait_for_timeout(5000)  # the observed window: two and a half refresh periods
    assert len(refreshes) == before, "the hidden tab kept refreshing"
    with page.expect_request(_is_live_refresh, timeout=10_000):
        set_hidden(False)


def _int8_answers(stack, model: str = "mobilenet_v2", count: int = 60) -> int:
    """int8 answers beside the newest fp32 ones of `model`, sent through the aggregate
    function's code as the int8 twin's would be: the same class as fp32, except every
    fourth, which is another. (The twin itself, quantising and answering the stream,
    is tests/integration/test_lifecycle.py's.)"""
    fp32 = rows(
        stack,
        """SELECT image_id, model_version, predicted_class, confidence, inference_ms FROM predictions
                          WHERE model_name = %s AND role = 'champion' ORDER BY created_at DESC LIMIT %s""",
        (model, count),
    )
    messages = [
        PredictionMessage(
            image_id=str(r["image_id"]),
            model_name=model,
            model_version=r["model_version"],
            top_k=[
                ClassScore(
                    label=r["predicted_class"] if k % 4 else f"not-{r['predicted_class']}", confidence=r["confidence"]
                )
            ],
            timings=Timings(
                fetch_ms=0,
                decode_ms=0,
                preprocess_ms=0.1,
                inference_ms=r["inference_ms"] / 2,
                total_ms=r["inference_ms"] / 2 + 0.1,
            ),
            backend="onnxruntime-cpu-int8",
            batch_size=8,
            worker_id="e2e-int8",
            role="int8",
        )
        for k, r in enumerate(fp32)
    ]
    Aggregator.from_settings(stack).handle([m.model_dump_json() for m in messages])
    return len(messages)


def test_compare_and_history_show_the_models_side_by_side(dashboard, page, stack):
    assert _int8_answers(stack) >= 4, "the pipeline answered too few images to pair"
    dashboard.open(page, "/compare")
    for model in ("resnet50", "mobilenet_v2", "efficientnet_b0"):
        expect(page.locator(f"#compare-latency-{model}")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#compare-agreement .heatmaplayer, #compare-agreement .hm")).not_to_have_count(0)
    expect(page.locator("#compare-versions-table")).to_contain_text("v")
    # Which is really better, in words, for each pair; how calibrated; which fits a budget.
    verdicts = page.locator("#compare-significance-card li")
    expect(verdicts).to_have_count(3, timeout=TIMEOUT_MS)
    for text in verdicts.all_inner_texts():
        assert "labelled images" in text and ("more accurate" in text or "difference" in text), text
    expect(page.locator("#compare-cochran")).to_contain_text("Cochran's Q")
    expect(page.locator("#compare-calibration .scatterlayer .trace")).not_to_have_count(0)
    expect(page.locator("#compare-budget-best")).to_contain_text(re.compile(r"ms"), timeout=TIMEOUT_MS)
    expect(page.locator("#compare-pareto-latency .scatterlayer .trace")).not_to_have_count(0)
    # The drift panel: each detector the job ran, with its state, or how to run it.
    watch_drift(stack)
    page.reload()
    expect(page.locator("#compare-drift-card .drift-badge")).to_have_count(5, timeout=TIMEOUT_MS)
    expect(page.locator("#compare-drift-input-pixels")).to_contain_text("Input images against the training set")
    # int8 beside fp32: the same version's two answers on the same images, judged in words.
    expect(page.locator("#compare-int8-mobilenet_v2")).to_contain_text("× as fast", timeout=TIMEOUT_MS)
    verdict = page.locator("#compare-int8-verdict-mobilenet_v2")
    expect(verdict).to_contain_text("MobileNetV2 fp32")
    expect(verdict).to_contain_text(re.compile(r"more accurate|enough evidence|No difference"))
    page.wait_for_timeout(500)  # let the last charts finish drawing before the picture
    screenshot(page, "compare")

    dashboard.open(page, "/history")
    expect(page.locator("#history-position")).to_contain_text("images 1–", timeout=TIMEOUT_MS)
    expect(page.locator("#history-grid .ag-row").first).to_be_visible()
    screenshot(page, "history")
    # Search by file name: the images uploaded by the test above, and only them.
    page.locator("#history-search").fill("dash-")
    page.locator("#history-search").press("Enter")
    expect(page.locator("#history-grid .ag-row").first).to_contain_text("dash-", timeout=TIMEOUT_MS)
    files = page.locator("#history-grid .ag-row [col-id=file]").all_inner_texts()
    assert files and all("dash-" in f for f in files), files
    with page.expect_download() as download:
        page.locator("#history-export").click()
    assert download.value.suggested_filename.endswith(".csv")


def _disagreement(stack) -> str:
    """An image the models disagree on, written the way the aggregate function writes it."""
    image_id = str(uuid.uuid4())
    answers = [
        Answer("resnet50", "1", "star", 0.6, 10.0),
        Answer("mobilenet_v2", "1", "ring", 0.5, 5.0),
        Answer("efficientnet_b0", "1", "cross", 0.4, 7.0),
    ]

    def write(cur):
        cur.execute(
            """INSERT INTO images (image_id, bucket, object_key, sha256, filename, size_bytes, source)
                       VALUES (%s, 'images', %s, %s, %s, 10, 'upload')""",
            (image_id, f"review/{image_id}", uuid.uuid4().hex * 2, f"review-{image_id[:8]}.png"),
        )
        for a in answers:
            cur.execute(
                """INSERT INTO predictions (image_id, model_name, model_version, predicted_class, confidence,
                                                    inference_ms) VALUES (%s, %s, %s, %s, %s, %s)""",
                (image_id, a.model_name, a.model_version, a.predicted_class, a.confidence, a.inference_ms),
            )
        upsert_comparison(cur, image_id, compare(answers, None))

    Database(stack).transaction(write)
    return image_id


def test_a_label_set_on_the_review_page_is_stored(dashboard, page, stack):
    image_id = _disagreement(stack)
    dashboard.open(page, "/review")
    item = page.locator(f"#review-item-{image_id}")
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    screenshot(page, "review")
    label_box = item.locator("input")

    # A class the models do not know: a clear message, nothing written.
    label_box.fill("zebra")
    item.get_by_role("button", name="Save").click()
    expect(item.locator(".review-error")).to_contain_text("not a class the models know")
    assert (
        rows(stack, "SELECT ground_truth_label FROM images WHERE image_id = %s", (image_id,))[0]["ground_truth_label"]
        is None
    )

    label_box.fill("ring")
    item.get_by_role("button", name="Save").click()
    expect(item.locator(".review-saved")).to_contain_text("saved “ring”")
    stored = rows(
        stack,
        """SELECT i.ground_truth_label, i.needs_review, c.per_model->'mobilenet_v2'->>'correct' AS ok
                            FROM images i JOIN model_comparisons c USING (image_id) WHERE image_id = %s""",
        (image_id,),
    )[0]
    assert (stored["ground_truth_label"], stored["needs_review"], stored["ok"]) == ("ring", False, "true")


def test_models_page_shows_champions_and_a_run_with_its_steps(dashboard, page, stack):
    from triptych.db import runs

    # A retraining run part-way, recorded the way the workflow's steps record themselves.
    db = Database(stack)
    run_id = str(db.transaction(lambda cur: runs.create_run(cur, "retrain", {"models": ["resnet50"]}, "e2e"))["run_id"])
    db.transaction(lambda cur: runs.start_run(cur, run_id))
    db.transaction(lambda cur: runs.start_step(cur, run_id, "gather"))
    db.transaction(
        lambda cur: runs.finish_step(
            cur,
            run_id,
            "gather",
            "succeeded",
            {"dataset_id": "triptych-shapes-v1+labelled-e2e", "labelled_train": 40, "labelled_test": 9},
        )
    )
    db.transaction(lambda cur: runs.start_step(cur, run_id, "train:resnet50"))
    db.transaction(
        lambda cur: runs.step_progress(
            cur,
            run_id,
            "train:resnet50",
            {
                "epoch": 2,
                "epochs": 3,
                "images_done": 15000,
                "images_total": 36000,
                "test_accuracy": 0.91,
                "seconds_left": 420,
            },
        )
    )
    # What `triptych models quantize` tags on a version it measured and did not publish.
    from triptych.lifecycle.int8 import int8_tags
    from triptych.models import registry

    champion = registry.version_for_alias("resnet50", registry.CHAMPION, stack)
    registry.tag_version(
        "resnet50",
        champion,
        int8_tags(
            {
                "agreement": 0.96,
                "fp32_accuracy": 0.57,
                "int8_accuracy": 0.58,
                "speedup": 4.24,
                "fp32_ms_per_image": 7.1,
                "int8_ms_per_image": 1.68,
                "min_agreement": 0.99,
                "held_out": 200,
            }
        ),
        stack,
    )
    dashboard.open(page, "/models")
    for model in ("resnet50", "mobilenet_v2", "efficientnet_b0"):
        expect(page.locator(f"#models-card-{model}")).to_contain_text("champion", timeout=TIMEOUT_MS)
    int8 = page.locator("#models-int8-resnet50")
    expect(int8).to_contain_text("58.0 %")
    expect(int8).to_contain_text("against fp32 57.0 % · agrees on 96.0 % · 4.2× faster")
    expect(int8).to_contain_text("not published: top-1 agreement below the gate's 99.0 %")
    expect(page.locator("#models-mlflow-link")).to_have_attribute("href", re.compile(r"^http://127\.0\.0\.1:\d+/"))
    run = page.locator(f"#models-run-{run_id}")
    expect(run).to_contain_text("running", timeout=TIMEOUT_MS)
    expect(run).to_contain_text("+40 labelled to train")
    expect(run).to_contain_text("15000/36000 images, held-out 0.910, ~7.0 min left")
    expect(run.locator(".progress")).to_have_count(1)
    screenshot(page, "models")
    # Cancel it from the page: the run is asked to stop, by the signed-in admin (the local one, here).
    run.get_by_role("button", name="Cancel this run").click()
    expect(page.locator("#models-cancel-ok")).to_be_visible(timeout=TIMEOUT_MS)
    [asked] = rows(stack, "SELECT cancel_requested_at, cancelled_by FROM pipeline_runs WHERE run_id = %s", (run_id,))
    assert asked["cancel_requested_at"] is not None and asked["cancelled_by"] == "local"
    [event] = rows(
        stack,
        "SELECT details->>'user' AS who FROM system_events WHERE event_type = 'dashboard_cancel_run' "
        "ORDER BY event_id DESC LIMIT 1",
    )
    assert event["who"] == "local"
    db.transaction(lambda cur: runs.finish_run(cur, run_id, None, None, cancelled=True))
    expect(run).to_contain_text("cancelled", timeout=TIMEOUT_MS)
    screenshot(page, "models-cancelled")


@pytest.mark.parametrize("width", [1280, 1920])
@pytest.mark.parametrize("path", ["/", "/webcam", "/compare", "/models"])
def test_no_page_scrolls_sideways_from_1280_to_1920_pixels(dashboard, page, path, width):
    page.set_viewport_size({"width": width, "height": 1000})
    dashboard.open(page, path)
    expect(page.locator("h2").first).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{path} at {width} px scrolls {overflow} px sideways"


def test_bad_input_gets_a_clear_message(dashboard, page):
    dashboard.open(page, f"/image/{uuid.uuid4()}")
    expect(page.locator("#image-not-found")).to_contain_text("No image with id", timeout=TIMEOUT_MS)
    dashboard.open(page, "/image/not-an-id")
    expect(page.locator("#image-not-found")).to_contain_text("is not an image id")
    dashboard.open(page, "/history?agreement=sometimes&range=forever")
    expect(page.locator("#history-filter-error")).to_contain_text("agreement=sometimes, range=forever")
    expect(page.locator("#history-position")).to_contain_text("images", timeout=TIMEOUT_MS)
    dashboard.open(page, "/compare?range=forever")
    expect(page.locator("#compare-range-error")).to_contain_text("Unknown time range “forever”")
    screenshot(page, "bad-input-compare")
    status = page.request.get(dashboard.url + "/media/not-an-id/thumb").status
    assert status == 404
