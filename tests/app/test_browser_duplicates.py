"""In Chromium: the Duplicates & outliers page on a run with copies and leaks injected by hand.

The page shows the counts, each duplicate group's images side by side and each leaked
training row beside its test twin; "Drop all but #10" and "Drop the training row" write to
decisions.jsonl, and the decisions are still shown after a reload (a new session). Then the
Export page, with Drop duplicates first ticked, says what it leaves out.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from scoring.read import decisions
from tests.app.browser import ARTIFACTS, goto, no_error, serve, wait_until
from tests.neighbour_run import injected, private_copy

pytestmark = pytest.mark.browser
TITLE = "Duplicates & outliers"


@pytest.fixture
def served(neighbour_cache, tmp_path):
    """A server over a private copy of the injected run; yields (url, run folder)."""
    run = private_copy(neighbour_cache, tmp_path)
    with serve(run.parent.parent, tmp_path) as url:
        yield url, run


def _settle(pg) -> None:
    """Wait until the app has finished its rerun (the running indicator is gone)."""
    pg.wait_for_timeout(300)
    pg.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)


def test_duplicates_page_in_a_browser(served, page):
    url, run = served
    pg = page
    pg.goto(url)
    pg.get_by_text("Runs in the cache").wait_for()
    goto(pg, url, TITLE)
    pg.get_by_text(re.compile(r"4 exact duplicates")).first.wait_for()
    pg.get_by_text(re.compile(r"3 train/test leaks")).first.wait_for()
    # Groups (7 rows), leak pairs (3 x 2) and outlier cards all render their images.
    pg.locator('[data-testid="stImage"] img').nth(12).wait_for()
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "20-duplicates.png"), full_page=True)

    pg.get_by_role("button", name="Drop all but #10").click()
    _settle(pg)
    pg.get_by_role("button", name="Drop the training row").first.click()
    _settle(pg)
    # Under load the click's rerun may still be on its way: wait for the file's state (four
    # decisions), never for a fixed time.
    wait_until(lambda: len(decisions.latest(run)) >= 4, "the four decisions in decisions.jsonl")
    latest = decisions.latest(run).set_index("id")["action"].to_dict()
    assert latest[10] == "keep" and latest[151] == latest[152] == "drop"
    leaks = [train for train, _ in injected()["leaks"]]
    assert [latest.get(i) for i in leaks].count("drop") == 1  # the first pair's row
    pg.reload()  # a new session: what is shown comes from decisions.jsonl
    pg.get_by_role("heading", name=TITLE).first.wait_for()
    pg.get_by_text("Decision: keep").first.wait_for()
    # The page renders card by card: expect() retries until all three are drawn (the test
    # once counted 2 of 3 under load).
    expect(pg.get_by_text("Decision: drop")).to_have_count(3, timeout=60_000)
    no_error(pg)

    goto(pg, url, "Export")
    pg.get_by_text("Drop duplicates first").first.click()
    _settle(pg)
    pg.get_by_text(re.compile(r"left out first: \d+ duplicates")).first.wait_for()
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "21-export-dedup.png"), full_page=True)
