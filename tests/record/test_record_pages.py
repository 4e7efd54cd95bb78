"""Every page on a recorded run: no exception, and what a recorded run lacks is said, not
failed on (retraining, rows to export, examples to show)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.pages import open_page, page_text, runs_table, shown

PAGES = sorted(p.name for p in (Path(__file__).parents[2] / "app_pages").glob("[!_]*.py"))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_a_recorded_run(recorded, monkeypatch, page):
    cache, path, _d, _tape = recorded
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(cache))
    at = open_page(page, path)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    text = shown(page_text(at))
    if page == "pruning.py":  # no recipe to retrain with: said, and no sweep button
        assert "cannot be retrained here" in text and "winnow score --dataset" in text
        assert "Run the sweep" not in [b.label for b in at.button]
    if page == "export.py":  # no data source: said, and the button is off
        assert "without a data source" in text
        assert next(b for b in at.button if b.label == "Export").disabled
    if page == "examples.py":
        assert "recorded from your own training without its inputs" in text
    if page == "scores.py":  # scores the recording could not give are named, with why
        assert (
            "Not in this run (its recording lacks their inputs)" in text
            and "grand (needs grad_norm)" in text
        )
    if page == "home.py":
        at.toggle(key="home_all_columns").set_value(True).run()  # where each run came from
        table = runs_table(at)
        assert list(table["source"]) == ["recorded"] and list(table["name"]) == ["digits mlp"]


def test_scores_page_says_which_definition_a_recorded_score_used(recorded, monkeypatch):
    """EL2N's definition in this run beside it; the label-free scores absent, with why."""
    cache, path, _d, _tape = recorded
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(cache))
    at = open_page("scores.py", path, score="el2n")
    assert not at.exception, at.exception
    text = shown(page_text(at))
    assert "In this run: EL2N from an eval pass at fixed weights after epoch 2" in text
    assert "prototype (needs features_free (label-free embeddings: end_run's features" in text
