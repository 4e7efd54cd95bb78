"""Every page on a damaged run: the reason and a way out (rescore, or delete when its config is
unreadable), never Streamlit's exception element; the other run keeps working.

Pages x a few damage kinds (not the full product of tests/test_damage.py, which covers the
engine side file by file).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scoring import jobs, store
from scoring.config import ScoreConfig
from tests.app.pages import open_page, page_text, runs_table
from tests.test_damage import TARGET, build_pristine, damage

PAGES = (
    "home.py",
    "scores.py",
    "correlations.py",
    "examples.py",
    "mislabeled.py",
    "duplicates.py",
    "map.py",
    "pruning.py",
    "export.py",
)
DAMAGES = (
    ("status.json", "garbage"),  # the status (and its manifest) unreadable
    ("scores.parquet", "truncated"),  # cut short: caught by its size
    ("examples/images.npy", "garbage"),  # same size: caught by its hash
    ("config.json", "list"),  # no config to rescore from: delete is offered
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, Path]:
    return build_pristine(tmp_path_factory.mktemp("pristine_pages") / "cache")


def _copy(pristine, tmp_path: Path, monkeypatch) -> tuple[Path, Path, Path]:
    """A private copy of the two-run cache, as WINNOW_CACHE_DIR; returns root, target, other."""
    target, other = pristine
    root = tmp_path / "cache"
    shutil.copytree(target.parent.parent, root)
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(root))
    base = target.parent.parent
    return root, root / target.relative_to(base), root / other.relative_to(base)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("file,kind", DAMAGES, ids=[f"{f}-{k}" for f, k in DAMAGES])
def test_a_page_on_a_damaged_run_shows_the_reason_and_a_way_out(
    pristine, tmp_path, monkeypatch, page, file, kind
):
    (
        _root,
        target,
        _other,
    ) = _copy(pristine, tmp_path, monkeypatch)
    damage(target / file, kind)
    at = open_page(page, target)
    assert not at.exception, at.exception
    text = page_text(at)
    assert "This run is damaged" in text and f"`{file}`" in text, text
    labels = [b.label for b in at.button]
    if file == "config.json":
        assert "Delete this run folder" in labels and "Rescore this run" not in labels
    else:
        assert "Rescore this run" in labels


def test_rescore_button_starts_the_runs_own_config(pristine, tmp_path, monkeypatch):
    _root, target, _other = _copy(pristine, tmp_path, monkeypatch)
    damage(target / "runs/run_000.npz", "truncated")
    started = []
    monkeypatch.setattr(jobs, "start_score", lambda config, cache: started.append(config) or "j1")
    at = open_page("scores.py", target)
    next(b for b in at.button if b.label == "Rescore this run").click().run()
    assert not at.exception
    assert started == [TARGET]
    assert isinstance(started[0], ScoreConfig)
    assert at.session_state["ui"].job_id == "j1"


def test_delete_needs_confirming_then_removes_only_that_run(pristine, tmp_path, monkeypatch):
    root, target, other = _copy(pristine, tmp_path, monkeypatch)
    damage(target / "config.json", "garbage")
    at = open_page("home.py", target)
    delete = next(b for b in at.button if b.label == "Delete this run folder")
    assert delete.disabled  # nothing goes before the box is ticked
    at.checkbox(key=f"sure_{target.name}").check().run()
    next(b for b in at.button if b.label == "Delete this run folder").click().run()
    assert not at.exception
    assert not target.exists() and other.exists()
    assert [r.path for r in store.list_runs(root)] == [other]


def test_the_other_run_works_while_one_is_damaged(pristine, tmp_path, monkeypatch):
    _root, target, other = _copy(pristine, tmp_path, monkeypatch)
    damage(target / "summary.json", "garbage")
    home = open_page("home.py", other)
    assert not home.exception
    home.toggle(key="home_all_columns").set_value(True).run()  # folder and problem columns
    table = runs_table(home)
    states = dict(zip(table["folder"], table["state"], strict=True))
    assert states == {str(target): "damaged", str(other): "done"}
    assert table.set_index("folder").loc[str(target), "problem"].startswith("summary.json")
    scores = open_page("scores.py", other)
    assert not scores.exception and "damaged" not in page_text(scores)
    assert scores.get("plotly_chart")


def test_a_garbage_decision_line_is_skipped_with_a_warning(pristine, tmp_path, monkeypatch):
    _root, target, _other = _copy(pristine, tmp_path, monkeypatch)
    damage(target / "decisions.jsonl", "garbage")
    at = open_page("export.py", target)
    assert not at.exception
    assert any("skipped 1 unreadable line" in w.value for w in at.warning)
    assert "This run is damaged" not in page_text(at)
    # The decisions control still counts every readable decision (one of each action).
    labels = [c.label for c in at.toggle]
    assert "Apply my decisions (1 drop, 1 relabel, 1 keep)" in labels, labels
