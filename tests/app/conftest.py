"""Browser-test fixtures: Chromium and live servers (empty cache, or the session's runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.app.browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, serve


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: install Debian's chromium (.ci/run does)")
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)  # shared 2-core machines
        yield pg
        browser.close()


@pytest.fixture
def server(tmp_path):
    """A Streamlit server on 127.0.0.1 over an empty cache; stopped when the test ends."""
    with serve(tmp_path / "cache", tmp_path) as url:
        yield url


@pytest.fixture
def server_with_runs(app_cache, tmp_path):
    """A Streamlit server on 127.0.0.1 over the tiny digits and text runs."""
    with serve(app_cache, tmp_path) as url:
        yield url
