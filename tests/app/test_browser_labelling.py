"""In Chromium: Mislabeled's labelling-tool box. Download the listed suspects as Label Studio
tasks (the same tasks `winnow send` writes for them), upload an export answered as Label
Studio writes it, and record its answers: the decisions file holds them, marked as Label
Studio's. Then the same with Argilla records answered through the `argilla` package's own
classes and exporter; Home lists both tools' decisions by name."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from scoring.read import decisions
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
    box = pg.get_by_text(re.compile(r"Send these \d+ to Label Studio")).first
    box.click()
    with pg.expect_download() as got:
        pg.get_by_role("button", name=re.compile(r"Download \d+ Label Studio tasks")).click()
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
    pg.get_by_text("2 answers from Label Studio to record (1 keep, 1 relabel)").wait_for()
    no_error(pg)
    pg.screenshot(path=str(ARTIFACTS / "30-label-studio.png"), full_page=True)
    pg.get_by_role("button", name="Record 2 decisions").click()
    wait_until(lambda: len(decisions.latest(run)) >= 2, "the two decisions in decisions.jsonl")
    pg.get_by_text("Recorded 2 decisions from Label Studio").wait_for()
    lines = [json.loads(x) for x in decisions.path_of(run).read_text().splitlines()]
    assert [(r["id"], r["action"]) for r in lines] == [(ids[0], "relabel"), (ids[1], "keep")]
    assert all(r["tool"] == "label-studio" and r["annotators"] == ["ann@x.org"] for r in lines)
    assert lines[0]["new_label"] == names.index(other[0])
    no_error(pg)
    _argilla_round(pg, run, tmp_path, names, skip=set(ids))
    pg.goto(url)  # Home, in a new session: read from the decisions file
    pg.get_by_text("Decisions from labelling tools").wait_for()
    pg.get_by_text(re.compile(r"Label Studio.*relabel 1, keep 1, 2 still in force")).wait_for()
    pg.get_by_text(re.compile(r"Argilla.*relabel 1, 1 still in force")).wait_for()
    no_error(pg)


def _argilla_round(pg, run: Path, tmp_path: Path, names: list[str], skip: set[int]) -> None:
    """Download the Argilla records, answer one with argilla's classes, export them with
    argilla's exporter, upload, record."""
    rg = pytest.importorskip("argilla")
    from argilla.records._io import JsonIO

    with pg.expect_download() as got:
        pg.get_by_role("button", name=re.compile(r"Download \d+ Argilla records")).click()
    lines = [json.loads(x) for x in Path(got.value.path()).read_text().splitlines()]
    record = next(rg.Record.from_dict(x) for x in lines if x["metadata"]["winnow_id"] not in skip)
    example = record.metadata["winnow_id"]
    new = names[(names.index(record.metadata["given_label"]) + 2) % len(names)]
    user = "00000000-0000-0000-0000-00000000000a"
    record.responses.add(rg.Response("label", new, user, status="submitted"))
    file = tmp_path / "argilla-answers.json"
    JsonIO.to_json([record], file)
    pg.locator('input[type="file"]').set_input_files(str(file))
    pg.get_by_text("1 answer from Argilla to record (0 keep, 1 relabel)").wait_for()
    pg.get_by_role("button", name="Record 1 decision").click()
    wait_until(lambda: example in set(decisions.latest(run)["id"]), "Argilla's decision")
    last = json.loads(decisions.path_of(run).read_text().splitlines()[-1])
    assert (last["id"], last["tool"], last["annotators"]) == (example, "argilla", [user])
    assert last["new_label"] == names.index(new)
