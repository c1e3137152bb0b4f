"""The API's own page, /docs, in a real browser: Swagger UI served from local files
(no CDN, so it works offline), listing every operation, with the key schemes."""

from __future__ import annotations

import pytest

from tests.integration.pipeline_helpers import CliServer

from .conftest import screenshot


@pytest.fixture(scope="module")
def api(stack, tmp_path_factory):
    server = CliServer("api", {}, tmp_path_factory.mktemp("docs-api") / "api.log", probe_path="/")
    yield server
    server.stop()


def test_the_docs_page_lists_every_operation_and_offers_to_authorize(api, page):
    page.goto(f"{api.url}/docs")
    page.get_by_role("heading", name="Triptych query API").wait_for(timeout=20_000)
    for path in ("/comparisons/{image_id}", "/upload/batch", "/predictions/recent/{limit}", "/retrain/{run_id}"):
        assert page.locator(".opblock-summary-path", has_text=path).first.is_visible(), path
    assert page.get_by_role("button", name="Authorize").is_visible()
    screenshot(page, "api-docs")
