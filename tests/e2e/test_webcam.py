"""The Webcam page in Chromium with a fake camera playing a clip of the generated
shapes (Y4M, `C420`): frames go up through the dashboard and the upload function
as source `webcam`, all three models answer, and the overlay shows their answers;
a label set on the page lands on the frames; a snapshot is kept and linked; when
answers lag the page drops stale frames instead of queueing them; and without a
camera it says so."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from triptych.datasets.clip import shapes_clip
from triptych.models.zoo import ARCHITECTURES

from ..integration.runtime_helpers import query, wait_for
from .conftest import launch_chromium, screenshot, watched_page

pytestmark = pytest.mark.integration
TIMEOUT_MS = 60_000
MODELS = sorted(a.name for a in ARCHITECTURES.values())


@pytest.fixture(scope="module")
def camera_browser(playwright_driver, tmp_path_factory):
    """Chromium whose camera plays the shapes clip, its permission granted."""
    clip = tmp_path_factory.mktemp("camera") / "shapes.y4m"
    shapes_clip(clip, shapes=4, seconds_each=3, fps=10, size=240, start=uuid.uuid4().int % 100_000)
    chromium = launch_chromium(
        playwright_driver,
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}",
        ],
    )
    yield chromium
    chromium.close()


@pytest.fixture
def camera_page(camera_browser):
    with watched_page(camera_browser) as page:
        yield page


def counter(page, name: str) -> int:
    return int(page.locator(f"#webcam-{name}").inner_text())


def webcam_frames(stack, since) -> list[dict]:
    return query(
        stack,
        """SELECT i.image_id::text, i.ground_truth_label, i.client_metadata,
                                  (SELECT array_agg(DISTINCT p.model_name ORDER BY p.model_name) FROM predictions p
                                   WHERE p.image_id = i.image_id AND p.role = 'champion') AS models
                           FROM images i WHERE i.source = 'webcam' AND i.uploaded_at >= %s
                           ORDER BY i.uploaded_at""",
        (since,),
        dicts=True,
    )


def test_frames_from_the_camera_are_answered_by_all_three_and_drawn_over_the_video(dashboard, camera_page, stack):
    [(since,)] = query(stack, "SELECT now()")
    page = camera_page
    dashboard.open(page, "/webcam")
    page.select_option("#webcam-label", "ring")
    page.locator("#webcam-toggle").click()
    expect(page.locator("#webcam-toggle")).to_have_text("Stop camera", timeout=TIMEOUT_MS)
    wait_for(lambda: counter(page, "answered") >= 3, 120, interval=0.5, message="three frames answered by all")

    # Every answered frame is a webcam image, classified by all three, carrying the label set on the page.
    frames = webcam_frames(stack, since)
    answered = [f for f in frames if f["models"] == MODELS]
    assert len(answered) >= 3, frames
    assert all(f["ground_truth_label"] == "ring" for f in frames)
    sessions = {f["client_metadata"]["webcam_session"] for f in frames}
    assert len(sessions) == 1, sessions

    # The overlay shows one of those frames, with each model's answer as Postgres has it.
    overlay = page.locator("#webcam-overlay")
    expect(overlay).to_have_attribute("aria-label", re.compile(r"consensus: \w+ \("), timeout=TIMEOUT_MS)
    shown_id, described = overlay.get_attribute("data-image-id"), overlay.get_attribute("aria-label")
    stored = {
        name: cls
        for name, cls in query(
            stack,
            """SELECT DISTINCT ON (model_name) model_name, predicted_class
                                                           FROM predictions WHERE image_id = %s AND role = 'champion'
                                                           ORDER BY model_name, predicted_at DESC""",
            (shown_id,),
        )
    }
    assert sorted(stored) == MODELS
    for label, name in (
        ("ResNet50", "resnet50"),
        ("MobileNetV2", "mobilenet_v2"),
        ("EfficientNet-B0", "efficientnet_b0"),
    ):
        assert f"{label}: {stored[name]} " in described, described
    # And it is drawn: the answers' panel is painted on the canvas over the video.
    alpha = page.evaluate("""() => { const c = document.getElementById('webcam-overlay');
                                     return c.getContext('2d').getImageData(15 * devicePixelRatio, 15 * devicePixelRatio,
                                                                              1, 1).data[3]; }""")
    assert alpha > 0

    # A snapshot is kept, linked to its Image page once the models have answered it.
    page.locator("#webcam-snapshot").click()
    snapshot = page.locator(".webcam-snapshot").first
    expect(snapshot).to_be_visible(timeout=TIMEOUT_MS)
    snapshot_id = snapshot.get_attribute("href").removeprefix("/image/")
    [(meta,)] = query(stack, "SELECT client_metadata FROM images WHERE image_id = %s", (snapshot_id,))
    assert meta["snapshot"] is True
    screenshot(page, "webcam")

    page.locator("#webcam-toggle").click()
    expect(page.locator("#webcam-toggle")).to_have_text("Start camera")
    # Nothing is stored but what the page sent (one more may have been in flight at Stop;
    # a frame identical to an earlier one is answered as that image, not stored again).
    sent = counter(page, "sent")
    assert 3 <= len(webcam_frames(stack, since)) <= sent + 1


def test_when_answers_lag_stale_frames_are_dropped_not_queued(dashboard, camera_page):
    page = camera_page
    # The pipeline "lags": no frame is ever answered, so two frames await their answers.
    page.route(
        "**/webcam/answers*",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps({"frames": {}, "models": []})
        ),
    )
    dashboard.open(page, "/webcam")
    page.locator("#webcam-rate").fill("5")
    page.locator("#webcam-toggle").click()
    wait_for(lambda: counter(page, "dropped") >= 10, 30, interval=0.2, message="stale frames dropped")
    assert counter(page, "sent") == 2  # the two awaiting answers; nothing queued behind them
    expect(page.locator("#webcam-stats")).to_contain_text("dropped while the pipeline was busy")


def test_a_snapshot_of_a_still_scene_stays_a_snapshot(dashboard, camera_page):
    """A still scene makes frames identical to the snapshot, and the upload answers them
    all as one image id. Plain frames' replies landing after the snapshot's must not
    unmark it (the race that once failed CI): the routes here make every frame that
    one image and hold its answer back until plain frames have replied after it."""
    page, image_id = camera_page, str(uuid.uuid4())
    seen = {"snapshots": 0, "plain_after_snapshot": 0}

    def frame(route):
        if "snapshot=1" in route.request.url:
            seen["snapshots"] += 1
        elif seen["snapshots"]:
            seen["plain_after_snapshot"] += 1
        route.fulfill(
            status=201, content_type="application/json", body=json.dumps({"image_id": image_id, "status": "duplicate"})
        )

    def answers(route):
        frames = {}
        if seen["plain_after_snapshot"] >= 2:
            frames[image_id] = {
                "status": "compared",
                "answers": {m: {"class": "ring", "confidence": 0.9} for m in MODELS},
                "consensus": {"class": "ring", "agreement": "unanimous", "words": "all three agree"},
            }
        route.fulfill(status=200, content_type="application/json", body=json.dumps({"frames": frames, "models": []}))

    page.route("**/webcam/frame*", frame)
    page.route("**/webcam/answers*", answers)
    dashboard.open(page, "/webcam")
    page.locator("#webcam-rate").fill("5")
    page.locator("#webcam-toggle").click()
    wait_for(lambda: counter(page, "sent") >= 1, 30, interval=0.2, message="a first frame sent")
    page.locator("#webcam-snapshot").click()
    wait_for(lambda: counter(page, "answered") >= 1, 30, interval=0.2, message="the one image answered")
    assert seen["snapshots"] == 1 and seen["plain_after_snapshot"] >= 2, seen
    expect(page.locator(".webcam-snapshot")).to_have_count(1, timeout=TIMEOUT_MS)
    assert page.locator(".webcam-snapshot").first.get_attribute("href") == f"/image/{image_id}"


def test_without_a_camera_the_page_says_so(dashboard, page):
    dashboard.open(page, "/webcam")
    page.locator("#webcam-toggle").click()
    expect(page.locator("#webcam-alert-text")).to_contain_text(
        re.compile("camera was refused|No camera found"), timeout=TIMEOUT_MS
    )
    expect(page.locator("#webcam-toggle")).to_have_text("Start camera")
    screenshot(page, "webcam-no-camera")
