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


def test_a_page_opened_at_its_own_url_requests_nothing_that_fails(server_with_runs, page):
    """A bookmark or a refresh of `/scores` etc.: no 404 in the console (serve.py tells the
    frontend where the server's root is, so it does not probe `/scores/_stcore/...`)."""
    bad: list[str] = []
    errors: list[str] = []
    page.on("response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    for path in ("scores", "mislabeled", "export"):
        page.goto(f"{server_with_runs}/{path}")
        page.locator('[data-testid="stSidebarNav"]').wait_for()
        page.wait_for_load_state("networkidle")
        no_error(page)
    assert bad == [], f"failed requests: {bad}"
    assert errors == [], f"console errors: {errors}"


@pytest.mark.parametrize(
    ("base", "root"), [("", '"/"'), ("/", '"/"'), ("winnow", '"/winnow/"'), ("/a/b/", '"/a/b/"')]
)
def test_the_injected_root_follows_the_base_url_path(base, root):
    from serve import base_url_script

    script = base_url_script(base).decode()
    assert f"BACKEND_BASE_URL:window.location.origin+{root}" in script
