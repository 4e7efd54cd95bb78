"""No request leaves the machine: every page of a live server, with a run, in Chromium.

Every request the browser makes is logged; any to a host other than 127.0.0.1 fails the
test (the favicon used to come from fonts.gstatic.com: 18 console errors offline).
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.app.browser import ARTIFACTS, goto, no_error

pytestmark = pytest.mark.browser
PAGES = ["Scores", "Correlations", "Examples", "Mislabeled", "Map", "Pruning", "Export"]


def test_no_page_fetches_anything_from_another_host(server_with_runs, page):
    outside: list[str] = []
    failed: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if urlparse(r.url).scheme in ("http", "https", "ws", "wss")
            and urlparse(r.url).hostname not in ("127.0.0.1", "localhost")
            else None
        ),
    )
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(server_with_runs)
    page.get_by_text("Runs in the cache").wait_for()
    page.wait_for_load_state("networkidle")
    for title in PAGES:
        goto(page, server_with_runs, title)
        page.wait_for_load_state("networkidle")
        no_error(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert outside == [], f"requests left the machine: {sorted(set(outside))}"
    assert failed == [], f"requests failed: {sorted(set(failed))}"
    # The favicon is inline (an emoji drawn as SVG), not a URL on another host.
    icon = page.locator("link[rel='shortcut icon']").get_attribute("href")
    assert icon is None or not urlparse(icon).hostname or urlparse(icon).hostname == "127.0.0.1"
