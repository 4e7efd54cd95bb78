"""Examples page: hardest/easiest grids in the right order, texts, missing files, no runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from scoring.read import decisions
from tests.app.pages import open_page, shown
from tests.conftest import digits_run, text_run

PAGE = "examples.py"


def _table(run: Path) -> pd.DataFrame:
    """Scores and predictions straight from the files, to check the page independently."""
    table = pd.read_parquet(run / "scores.parquet")
    return table.merge(pd.read_parquet(run / "predictions.parquet"), on="id")


def _cards(at, prefix: str) -> list[int]:
    """Example ids of one grid, in order (from its Drop buttons' keys)."""
    return [int(b.key.rsplit("_", 1)[1]) for b in at.button if b.key.startswith(f"{prefix}drop_")]


def _card_text(at, example: int) -> str:
    return next(m.value for m in at.markdown if m.value.startswith(f"**#{example}**"))


def test_image_grid_hardest_first_by_chosen_score(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    at.selectbox(key="w_score").select("aum")
    at.slider(key="examples_k").set_value(6)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Examples"
    assert [h.value for h in at.subheader] == ["6 hardest", "6 easiest"]
    assert len(at.get("image")) == 12  # one image per card
    # AUM: lower is harder. Stable sort keeps file order among ties, as the page does.
    table = _table(run)
    by_aum = table.sort_values("aum", kind="stable")
    assert _cards(at, "hard_") == by_aum["id"].head(6).tolist()
    by_aum_desc = table.sort_values("aum", ascending=False, kind="stable")
    assert _cards(at, "easy_") == by_aum_desc["id"].head(6).tolist()
    captions = [c.value for c in at.caption]
    for _, row in by_aum.head(6).iterrows():
        # The card's evidence is out-of-fold, as on Mislabeled; the ranking score below it.
        card = shown(_card_text(at, int(row["id"])))
        assert f"given **{row['label']}** (p {row['oof_given_prob']:.2f})" in card
        assert f"**{int(row['oof_suggested'])}**" in card
        assert (":red[" in card) == (row["oof_suggested"] != row["label"])  # mispredicted
        assert f"aum {row['aum']:.4g}" in captions


def test_decisions_from_the_grid_are_the_mislabeled_pages_decisions(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run, score="el2n", examples_class="3")
    hard = _cards(at, "hard_")
    table = _table(run).set_index("id")
    at.button(key=f"hard_drop_{hard[0]}").click().run()
    at.selectbox(key=f"hard_relabel_{hard[1]}").select(5).run()
    assert not at.exception
    assert decisions.latest(run)[["id", "action"]].values.tolist() == [
        [hard[0], "drop"],
        [hard[1], "relabel"],
    ]
    # Mislabeled reads the same file: the drop shows on its card there.
    mis = open_page("mislabeled.py", run, mislabeled_split="train", detector="el2n")
    assert "Decision: **drop**" in [m.value for m in mis.markdown]
    assert table.loc[hard[0], "label"] == 3


def test_one_class_only(app_cache):
    at = open_page(PAGE, digits_run(app_cache))
    at.selectbox(key="w_examples_class").select("3")
    at.run()
    assert [h.value for h in at.subheader] == ["12 hardest in class 3", "12 easiest in class 3"]
    for prefix in ("hard_", "easy_"):
        ids = _cards(at, prefix)
        assert len(ids) == 12
        assert all("given **3**" in _card_text(at, i) for i in ids)


def test_text_run_shows_premise_and_hypothesis(app_cache):
    run = text_run(app_cache)
    at = open_page(PAGE, run)
    at.selectbox(key="w_score").select("loss")
    at.slider(key="examples_k").set_value(3)
    at.run()
    assert not at.exception
    assert not at.get("image")
    headers = [m.value for m in at.markdown if m.value.startswith("**#")]
    assert len(headers) == 6
    top = _table(run).sort_values("loss", ascending=False, kind="stable")["id"].head(3).tolist()
    assert _cards(at, "hard_") == top
    texts = pd.read_parquet(run / "examples" / "texts.parquet").set_index("id")
    bodies = [m.value for m in at.markdown if m.value.startswith("*premise")]
    assert len(bodies) == 6
    first = texts.loc[top[0]]
    # "a man plays guitar 3" / "someone makes music": no markdown specials to escape
    assert bodies[0] == f"*premise:* {first['text']}  \n*hypothesis:* {first['text_pair']}"


def test_older_run_without_examples_lists_ids_and_values(app_cache):
    run = digits_run(app_cache)
    shutil.rmtree(run / "examples")
    at = open_page(PAGE, run)
    at.selectbox(key="w_score").select("el2n")
    at.slider(key="examples_k").set_value(6)
    at.run()
    assert not at.exception
    assert not at.get("image")
    assert "no rendered examples" in at.info[0].value
    hardest = at.dataframe[0].value
    expected = _table(run).sort_values("el2n", ascending=False, kind="stable")["id"].head(6)
    assert hardest["id"].tolist() == expected.tolist()
    assert {"given", "predicted", "el2n", "aum"} <= set(hardest.columns)


def test_remembered_score_missing_from_run_falls_back(app_cache):
    at = open_page(PAGE, text_run(app_cache), score="forgetting")  # the text run has no forgetting
    assert not at.exception
    assert at.selectbox(key="w_score").value == "el2n"
    assert at.subheader[0].value == "6 hardest"  # texts: 3 cards a row, two rows


def test_empty_cache_shows_info(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.get("image")
