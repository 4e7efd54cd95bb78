"""User strings are shown as typed: a label (or file name) written in markdown never renders.

A run whose label names are markdown (`**bold**`, an image link to a local port that would be
fetched) from a CSV whose name is markdown too: every page that shows them must hold their
escaped form, never the raw one, in what Streamlit renders as markdown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app_pages._filters import Filters
from app_pages._shared import code_md, escape_md
from scoring.config import DataConfig, ScoreConfig, TrainConfig
from tests.app.pages import open_page

BOLD, IMAGE = "**bold**", "![x](http://127.0.0.1:1/a.png)"
FILE = "__x__.csv"  # would render as bold "x"


@pytest.fixture(scope="module")
def markdown_cache(tmp_path_factory) -> Path:
    from scoring.training.pipeline import score

    source = tmp_path_factory.mktemp("src") / FILE
    words = ["good", "bad", "film", "plot", "great", "awful", "story", "actor"]
    rows = ["text,label"]
    for i in range(40):
        text = " ".join(words[(i * 3 + j) % len(words)] for j in range(5))
        rows.append(f"{text} {i},{BOLD if i % 2 else IMAGE}")
    source.write_text("\n".join(rows) + "\n")
    root = tmp_path_factory.mktemp("md_cache")
    config = ScoreConfig(
        data=DataConfig(source=str(source)),
        train=TrainConfig(runs=2, epochs=2),
        cv_folds=2,
        scores=("el2n", "loss", "aum"),
    )
    score(config, root, show_progress=False)
    return root


def _rendered(at) -> list[str]:
    """Every element value Streamlit renders as markdown."""
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "subheader", "title")
    return [str(e.value) for kind in kinds for e in getattr(at, kind)]


def _run(cache: Path) -> Path:
    from scoring import store

    (run,) = [r.path for r in store.list_runs(cache)]
    return run


def test_escape_md_shows_markdown_literally():
    assert escape_md(BOLD) == r"\*\*bold\*\*"
    assert escape_md(IMAGE) == r"\!\[x\]\(http\://127\.0\.0\.1\:1/a\.png\)"
    assert escape_md(":red[alarm] <b>") == r"\:red\[alarm\] \<b\>"
    assert escape_md("plain words 3") == "plain words 3"
    assert code_md("a`b") == "``a`b``" and code_md("/tmp/x") == "`/tmp/x`"


@pytest.mark.parametrize(
    ("page", "choices"),
    [
        ("examples.py", {"examples_filters": Filters(classes=(BOLD,))}),
        ("examples.py", {"examples_filters": Filters(classes=(IMAGE,))}),
        ("mislabeled.py", {}),
    ],
)
def test_label_and_file_names_render_escaped(markdown_cache, monkeypatch, page, choices):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(markdown_cache))
    at = open_page(page, _run(markdown_cache), **choices)
    assert not at.exception, at.exception
    rendered = _rendered(at)
    joined = "\n".join(rendered)
    # The run's title (its file name) in the caption, escaped.
    assert escape_md(FILE) in joined and f" {FILE}" not in joined
    # Both label names appear, escaped, and never in raw form.
    assert escape_md(BOLD) in joined and escape_md(IMAGE) in joined
    for value in rendered:
        assert IMAGE not in value and "](http" not in value, value
        assert "**bold**" not in value.replace(escape_md(BOLD), ""), value
    if page == "examples.py":
        (name,) = choices["examples_filters"].classes
        assert any(f"hardest in class {escape_md(name)}" in h.value for h in at.subheader)


def test_a_job_message_quoting_a_label_renders_escaped(markdown_cache, monkeypatch):
    from app_pages._shared import UIState
    from tests.app.pages import fake_job

    cache = markdown_cache
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(cache))
    message = f"class {IMAGE!r} has only 1 training example"
    job_id = fake_job(cache, _run(cache), "score", exit_code=2, message=message)
    from streamlit.testing.v1 import AppTest

    from tests.conftest import PAGES

    at = AppTest.from_file(str(PAGES / "home.py"), default_timeout=60)
    at.session_state["ui"] = UIState(job_id=job_id)
    at.run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error if "training example" in e.value]
    assert error == escape_md(message)
