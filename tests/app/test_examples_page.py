"""Examples page: hardest/easiest grids in the right order, texts, missing files, no runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from tests.app.pages import open_page
from tests.conftest import digits_run, text_run

PAGE = "examples.py"


def _table(run: Path) -> pd.DataFrame:
    """Scores and predictions straight from the files, to check the page independently."""
    table = pd.read_parquet(run / "scores.parquet")
    return table.merge(pd.read_parquet(run / "predictions.parquet"), on="id")


def _ids(captions: list[str]) -> list[int]:
    return [int(c.split()[0].lstrip("#")) for c in captions]


def test_image_grid_hardest_first_by_chosen_score(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    at.selectbox(key="w_score").select("aum")
    at.slider(key="examples_k").set_value(4)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Examples"
    assert [h.value for h in at.subheader] == ["4 hardest", "4 easiest"]
    hardest, easiest = at.get("image")
    assert len(hardest.value) == len(easiest.value) == 4  # 2k images
    # AUM: lower is harder. Stable sort keeps file order among ties, as the page does.
    table = _table(run)
    by_aum = table.sort_values("aum", kind="stable")
    assert _ids(hardest.captions) == by_aum["id"].head(4).tolist()
    by_aum_desc = table.sort_values("aum", ascending=False, kind="stable")
    assert _ids(easiest.captions) == by_aum_desc["id"].head(4).tolist()
    for caption, (_, row) in zip(hardest.captions, by_aum.head(4).iterrows(), strict=True):
        assert f"given {row['label']}" in caption
        assert f"pred {row['pred']}" in caption
        assert f"aum {row['aum']:.4g}" in caption


def test_one_class_only(app_cache):
    at = open_page(PAGE, digits_run(app_cache))
    at.selectbox(key="w_examples_class").select("3")
    at.run()
    assert [h.value for h in at.subheader] == ["12 hardest in class 3", "12 easiest in class 3"]
    for grid in at.get("image"):
        assert len(grid.captions) == 12
        assert all("given 3 ·" in c for c in grid.captions)


def test_text_run_shows_premise_and_hypothesis(app_cache):
    run = text_run(app_cache)
    at = open_page(PAGE, run)
    at.selectbox(key="w_score").select("loss")
    at.slider(key="examples_k").set_value(4)
    at.run()
    assert not at.exception
    assert not at.get("image")
    headers = [m.value for m in at.markdown if m.value.startswith("**#")]
    assert len(headers) == 8
    top = _table(run).sort_values("loss", ascending=False, kind="stable")["id"].head(4).tolist()
    assert [int(h.split("**")[1].lstrip("#")) for h in headers[:4]] == top
    texts = pd.read_parquet(run / "examples" / "texts.parquet").set_index("id")
    bodies = [m.value for m in at.markdown if m.value.startswith("*premise")]
    assert len(bodies) == 8
    first = texts.loc[top[0]]
    # "a man plays guitar 3" / "someone makes music": no markdown specials to escape
    assert bodies[0] == f"*premise:* {first['text']}  \n*hypothesis:* {first['text_pair']}"


def test_older_run_without_examples_lists_ids_and_values(app_cache):
    run = digits_run(app_cache)
    shutil.rmtree(run / "examples")
    at = open_page(PAGE, run)
    at.selectbox(key="w_score").select("el2n")
    at.slider(key="examples_k").set_value(5)
    at.run()
    assert not at.exception
    assert not at.get("image")
    assert "no rendered examples" in at.info[0].value
    hardest = at.dataframe[0].value
    expected = _table(run).sort_values("el2n", ascending=False, kind="stable")["id"].head(5)
    assert hardest["id"].tolist() == expected.tolist()
    assert {"given", "predicted", "el2n", "aum"} <= set(hardest.columns)


def test_remembered_score_missing_from_run_falls_back(app_cache):
    at = open_page(PAGE, text_run(app_cache), score="forgetting")  # the text run has no forgetting
    assert not at.exception
    assert at.selectbox(key="w_score").value == "el2n"
    assert at.subheader[0].value == "12 hardest"


def test_empty_cache_shows_info(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.get("image")
