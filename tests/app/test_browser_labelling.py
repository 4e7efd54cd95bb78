"""In Chromium: Mislabeled's Label Studio box. Download the listed suspects as tasks (the
same tasks `winnow send` writes for them), upload an export answered as Label Studio writes
it, and record its answers: the decisions file holds them, marked as Label Studio's."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from scoring.read import decisions, labelling
from scoring.read.views import load_run
from tests.app.browser import ARTIFACTS, goto, no_error, serve, wait_until
from tests.conftest import digits_run, text_run
from tests.test_labelling import _answer

pytestmark = pytest.mark.browser


@pytest.fixture
def served(app_cache, tmp_path):
    """A server over a private cache holding the session's digits run (10% noise) alone."""
    shutil.rmtree(text_run(app_cache))
    run = digits_run(app_cache)
    with serve(app_cache, tmp_path) as url:
        yield url, run


def test_send_and_import_from_the_mislabeled_page(served, page, tmp_path):
    url, run = served
    pg = page
    pg.goto(url)
    pg.get_by_text("Runs in the cache").wait_for()
    goto(pg, url, "Mislabeled")
    box = pg.get_by_text("in Label Studio").first
    box.click()
    with pg.expect_download() as got:
        pg.get_by_role("button", name=re.compile(r"Download \d+ tasks \(JSON\)")).click()
    tasks = json.loads(Path(got.value.path()).read_text())
    assert tasks and all(t["predictions"][0]["result"][0]["from_name"] == "label" for t in tasks)
    names = [str(n) for n in load_run(run).label_names]
    assert {t["data"]["given_label"] for t in tasks} <= set(names)  # names, not indices
    ids = [t["data"]["id"] for t in tasks[:3]]
    other = [names[(names.index(t["data"]["given_label"]) + 1) % len(names)] for t in tasks[:3]]
    export = [
        _answer(tasks[0], 0, [("ann@x.org", other[0])]),
        _answer(tasks[1], 1, [("ann@x.org", tasks[1]["data"]["given_label"])]),
        _answer(tasks[2], 2, [("ann@x.org", None)]),  # skipped
    ]
    file = tmp_path / "project-1-export.json"
    file.write_text(json.dumps(export))
    pg.locator('input[type="file"]').set_input_files(str(file))
    pg.get_by_text("2 answers to record (1 keep, 1 relabel)").wait_for()
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "30-label-studio.png"), full_page=True)
    pg.get_by_role("button", name="Record 2 decisions").click()
    wait_until(lambda: len(decisions.latest(run)) >= 2, "the two decisions in decisions.jsonl")
    pg.get_by_text("Recorded 2 decisions from Label Studio").wait_for()
    lines = [json.loads(x) for x in decisions.path_of(run).read_text().splitlines()]
    assert [(r["id"], r["action"]) for r in lines] == [(ids[0], "relabel"), (ids[1], "keep")]
    assert all(r["tool"] == labelling.TOOL and r["annotators"] == ["ann@x.org"] for r in lines)
    assert lines[0]["new_label"] == names.index(other[0])
    no_error(pg)
