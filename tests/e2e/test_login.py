"""Signing in to the dashboard in a real browser: each role's allowed and forbidden
actions, signing out, and the one-time link `triptych demo` prints for the local
admin. Screenshots: login, login-refused, review-as-viewer, review-as-labeller."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from playwright.sync_api import expect

from tests.integration.conftest import CLI
from triptych.db.connection import Database
from triptych.security.users import add_user

from .conftest import screenshot
from .test_dashboard import TIMEOUT_MS, _disagreement, rows

pytestmark = pytest.mark.integration
PASSWORD = "a long enough password"


def _user(stack, role: str) -> str:
    name = f"e2e-{role}-{uuid.uuid4().hex[:6]}"
    Database(stack).transaction(lambda cur: add_user(cur, name, role, PASSWORD))
    return name


def _sign_in(page, dashboard, name: str, password: str = PASSWORD, path: str = "/review") -> None:
    page.goto(f"{dashboard.url}{path}")
    expect(page).to_have_url(f"{dashboard.url}/login?next={path}")
    page.fill("#username", name)
    page.fill("#password", password)
    page.locator("#login-password button").click()


def test_a_viewer_reads_cannot_label_or_upload_and_signs_out(dashboard, page, stack):
    image_id = _disagreement(stack)
    name = _user(stack, "viewer")
    _sign_in(page, dashboard, name, "not the password")
    expect(page.locator("#login-error")).to_contain_text("wrong password")
    screenshot(page, "login-refused")
    _sign_in(page, dashboard, name)
    expect(page).to_have_url(f"{dashboard.url}/review", timeout=TIMEOUT_MS)
    expect(page.locator("#nav-user")).to_contain_text(f"{name} · viewer")
    item = page.locator(f"#review-item-{image_id}")
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    expect(item.get_by_role("button", name="Save")).to_be_disabled()
    screenshot(page, "review-as-viewer")
    # Forced past the disabled button, the server still refuses, and nothing is written.
    refused = page.request.post(
        f"{dashboard.url}/webcam/frame?session=e2e&seq=1",
        data=b"\xff\xd8",
        headers={
            "Content-Type": "image/jpeg",
            "X-CSRFToken": next(c["value"] for c in page.context.cookies() if c["name"] == "_csrf_token"),
        },
    )
    assert refused.status == 403
    page.goto(f"{dashboard.url}/upload")
    expect(page.locator("#upload-role")).to_contain_text("uploads need the labeller role")
    page.locator("#nav-logout").click()
    expect(page).to_have_url(f"{dashboard.url}/login")
    page.goto(f"{dashboard.url}/")
    expect(page).to_have_url(f"{dashboard.url}/login?next=/")
    assert (
        rows(stack, "SELECT ground_truth_label FROM images WHERE image_id = %s", (image_id,))[0]["ground_truth_label"]
        is None
    )


def test_a_labeller_labels_and_the_label_names_them(dashboard, page, stack):
    image_id = _disagreement(stack)
    name = _user(stack, "labeller")
    _sign_in(page, dashboard, name)
    item = page.locator(f"#review-item-{image_id}")
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.locator("input").fill("ring")
    item.get_by_role("button", name="Save").click()
    expect(item.locator(".review-saved")).to_contain_text("saved “ring”")
    screenshot(page, "review-as-labeller")
    assert (
        rows(stack, "SELECT ground_truth_label FROM images WHERE image_id = %s", (image_id,))[0]["ground_truth_label"]
        == "ring"
    )
    events = rows(
        stack,
        "SELECT details->>'user' AS who FROM system_events WHERE image_id = %s AND event_type = 'dashboard_label'",
        (image_id,),
    )
    assert [e["who"] for e in events] == [name]


def test_the_one_time_link_signs_the_local_admin_in_once(dashboard, page, browser, stack):
    env = {**os.environ, "TRIPTYCH_DASHBOARD_PORT": str(dashboard.port)}
    made = subprocess.run([*CLI, "users", "link"], capture_output=True, text=True, timeout=120, env=env)
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip()
    assert link.startswith(f"{dashboard.url}/login?token=")
    page.goto(f"{dashboard.url}/login")
    screenshot(page, "login")
    page.goto(link)
    expect(page.locator("#nav-user")).to_contain_text("local · admin", timeout=TIMEOUT_MS)
    other = browser.new_context()
    try:
        again = other.new_page()
        again.goto(link)
        expect(again.locator("#login-error")).to_contain_text("used already")
    finally:
        other.close()
