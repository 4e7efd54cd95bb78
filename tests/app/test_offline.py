"""No request leaves the machine: every page of a live server, with a run, in Chromium.

Every request the browser makes is logged; any to a host other than 127.0.0.1 fails the
test (the favicon used to come from fonts.gstatic.com: 18 console errors offline).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from tests.app.test_browser import (
    ARTIFACTS,
    ROOT,
    _free_port,
    _goto,
    _no_error,
    _wait_healthy,
    page,  # noqa: F401  (the Chromium fixture)
)

pytestmark = pytest.mark.browser
PAGES = ["Scores", "Correlations", "Examples", "Mislabeled", "Map", "Pruning", "Export"]


@pytest.fixture
def server_with_runs(app_cache, tmp_path):
    """A Streamlit server on 127.0.0.1 over the tiny digits and text runs."""
    port = _free_port()
    env = {**os.environ, "WINNOW_CACHE_DIR": str(app_cache), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    argv += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, log_path)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_no_page_fetches_anything_from_another_host(server_with_runs, page):  # noqa: F811
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
        _goto(page, server_with_runs, title)
        page.wait_for_load_state("networkidle")
        _no_error(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert outside == [], f"requests left the machine: {sorted(set(outside))}"
    assert failed == [], f"requests failed: {sorted(set(failed))}"
    # The favicon is inline (an emoji drawn as SVG), not a URL on another host.
    icon = page.locator("link[rel='shortcut icon']").get_attribute("href")
    assert icon is None or not urlparse(icon).hostname or urlparse(icon).hostname == "127.0.0.1"
