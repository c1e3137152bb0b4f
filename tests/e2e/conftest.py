"""Browser tests: the real dashboard (`triptych dashboard`, as `triptych up` runs
it) over the real stack and pipeline, driven in Debian's Chromium by Playwright.

Chromium comes from Debian's packages (installed here when missing, as root,
like PostgreSQL); Playwright never downloads a browser of its own. Screenshots of
every page go to TRIPTYCH_TEST_ARTIFACTS (default /tmp/triptych-test/artifacts).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# The real stack's fixtures and environment (ports, data dir) are the integration suite's.
from tests.integration.conftest import stack, stack_settings  # noqa: F401
from tests.integration.pipeline_helpers import CliServer, start_full_pipeline

ARTIFACTS = Path(os.environ.get("TRIPTYCH_TEST_ARTIFACTS", "/tmp/triptych-test/artifacts")) / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# Chromium as root, headless, with no attempt to reach the outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("Debian's chromium is needed for the browser tests: `sudo apt-get install -y chromium`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, capture_output=True, env=env)
    return CHROMIUM


class Dashboard(CliServer):
    """`triptych dashboard` in a subprocess with its own settings; `open` signs the
    page in as the local admin through a one-time link (as `triptych demo` prints
    one), then shows `path`."""

    def __init__(self, env: dict[str, str], log: Path):
        super().__init__("dashboard", env, log)
        self.env = env

    def login_link(self, path: str = "/") -> str:
        from urllib.parse import quote

        from triptych.config import Settings
        from triptych.db.connection import Database
        from triptych.security.sessions import make_login_link
        from triptych.security.users import LOCAL_ADMIN, ensure_local_admin

        url = self.env.get("TRIPTYCH_DATABASE_URL")
        db = Database(Settings(**({"database_url": url} if url else {})))
        try:
            secret = db.transaction(
                lambda cur: (ensure_local_admin(cur), make_login_link(cur, LOCAL_ADMIN, datetime.timedelta(minutes=5)))[
                    1
                ]
            )
        finally:
            db.close()
        return f"{self.url}/login?token={secret}&next={quote(path)}"

    def open(self, page, path: str = "/"):
        return page.goto(self.login_link(path))


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright driver for the session (its sync API cannot be nested)."""
    from playwright.sync_api import sync_playwright

    ensure_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        yield pw


def launch_chromium(pw, extra_args: list[str] = ()):
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])


@pytest.fixture(scope="session")
def browser(playwright_driver):
    chromium = launch_chromium(playwright_driver)
    yield chromium
    chromium.close()


@contextlib.contextmanager
def watched_page(browser):
    """A fresh page in its own context; any JavaScript error it raised fails the test."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser):
    with watched_page(browser) as page:
        yield page


def screenshot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="package")
def pipeline(stack, tmp_path_factory):  # noqa: F811 - the integration suite's fixture, by name
    """Upload, ingest, the three inference functions and aggregate, with champions.
    Shared by the browser modules, and gone when they are done: they consume the
    stack's topics, so they must stop before other packages' pipelines run."""
    sup, port = start_full_pipeline(stack, tmp_path_factory.mktemp("dash-pipeline"))
    yield {"upload_port": port}
    sup.stop()


@pytest.fixture(scope="package")
def dashboard(pipeline, tmp_path_factory):
    board = Dashboard(
        {"TRIPTYCH_UPLOAD_PORT": str(pipeline["upload_port"])}, tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    )
    yield board
    board.stop()


@pytest.fixture(scope="module")
def empty_dashboard(stack, tmp_path_factory):  # noqa: F811 - the integration suite's fixture, by name
    """A dashboard over a fresh, empty database: what a first-time user sees."""
    from triptych.stack.provision import drop_database, fresh_database

    name = "triptych_empty_e2e"
    url = fresh_database(stack, name)
    board = Dashboard({"TRIPTYCH_DATABASE_URL": url}, tmp_path_factory.mktemp("empty-dashboard") / "dashboard.log")
    yield board
    board.stop()
    drop_database(stack, name)
