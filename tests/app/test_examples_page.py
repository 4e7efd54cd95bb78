"""Examples page: hardest/easiest grids in the right order, texts, missing files, no runs;
the search box and filters narrowing the ranking before it is cut; cards per row by modality."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from streamlit.testing.v1.element_tree import Block

from app_pages._filters import Filters
from scoring.read import decisions
from tests.app.pages import open_page, page_text, shown
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


def _nodes(block: Block):
    """Every node under a block of the page tree, depth first."""
    for child in block.children.values():
        yield child
        if isinstance(child, Block):
            yield from _nodes(child)


def grid_rows(at, prefix: str) -> list[int]:
    """Columns in each row of one grid: the column sets holding two or more of its cards
    (a card's own Keep / Drop pair holds one). Shared with the Map page's test."""
    rows = []
    for node in _nodes(at.main):
        if not isinstance(node, Block):
            continue
        columns = [c for c in node.children.values() if c.type == "column"]
        drops = [
            n for n in _nodes(node) if n.type == "button" and n.key.startswith(f"{prefix}drop_")
        ]
        if len(columns) >= 2 and len(columns) == len(node.children) and len(drops) >= 2:
            rows.append(len(columns))
    return rows


def _hardest_by(run: Path, key: str, rows: pd.Series | None = None) -> list[int]:
    """Ids hardest first by `key` (higher = harder), among `rows` of the table if given."""
    table = _table(run) if rows is None else _table(run)[rows]
    return table.sort_values(key, ascending=False, kind="stable")["id"].tolist()


def test_image_grid_hardest_first_by_chosen_score(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    at.selectbox(key="w_score").select("aum")
    at.slider(key="examples_k").set_value(5)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Examples"
    assert [h.value for h in at.subheader] == ["5 hardest", "5 easiest"]
    assert len(at.get("image")) == 10  # one image per card
    # AUM: lower is harder. Stable sort keeps file order among ties, as the page does.
    table = _table(run)
    by_aum = table.sort_values("aum", kind="stable")
    assert _cards(at, "hard_") == by_aum["id"].head(5).tolist()
    by_aum_desc = table.sort_values("aum", ascending=False, kind="stable")
    assert _cards(at, "easy_") == by_aum_desc["id"].head(5).tolist()
    captions = [c.value for c in at.caption]
    for _, row in by_aum.head(5).iterrows():
        # The card's evidence is out-of-fold, as on Mislabeled; the ranking score below it.
        card = shown(_card_text(at, int(row["id"])))
        assert f"given **{row['label']}** (p {row['oof_given_prob']:.2f})" in card
        assert f"**{int(row['oof_suggested'])}**" in card
        assert (":red[" in card) == (row["oof_suggested"] != row["label"])  # mispredicted
        assert f"aum {row['aum']:.4g}" in captions


def test_decisions_from_the_grid_are_the_mislabeled_pages_decisions(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run, score="el2n", examples_filters=Filters(classes=("3",)))
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
    run = digits_run(app_cache)
    at = open_page(PAGE, run, score="el2n")
    at.multiselect(key="examples_filter_classes").select("3")
    at.run()
    assert not at.exception
    assert [h.value for h in at.subheader] == ["10 hardest in class 3", "10 easiest in class 3"]
    for prefix in ("hard_", "easy_"):
        ids = _cards(at, prefix)
        assert len(ids) == 10
        assert all("given **3**" in _card_text(at, i) for i in ids)
    # The class is filtered before the ranking is cut: the 10 hardest threes, not the threes
    # among the 10 hardest.
    table = _table(run)
    assert _cards(at, "hard_") == _hardest_by(run, "el2n", table["label"] == 3)[:10]
    n_threes = int((table["label"] == 3).sum())
    assert f"{n_threes} of {len(table)} rows match" in page_text(at)


def test_several_classes_flagged_and_decided_filters(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run, score="el2n")
    at.multiselect(key="examples_filter_classes").select("3").select("5")
    at.selectbox(key="examples_filter_flagged").select("yes")
    at.run()
    assert not at.exception
    table = _table(run)
    wanted = table["label"].isin([3, 5]) & (table["cl_issue"] > 0.5)
    expected = _hardest_by(run, "el2n", wanted)[:10]
    assert expected and _cards(at, "hard_") == expected
    assert at.subheader[0].value == f"{len(expected)} hardest in classes 3, 5 matching the filters"
    # A decided example leaves the grid when only undecided ones are asked for.
    at.button(key=f"hard_drop_{expected[0]}").click().run()
    at.selectbox(key="examples_filter_decided").select("no").run()
    assert not at.exception
    assert expected[0] not in _cards(at, "hard_") + _cards(at, "easy_")
    assert (
        _cards(at, "hard_")
        == [i for i in _hardest_by(run, "el2n", wanted) if i != expected[0]][:10]
    )
    at.selectbox(key="examples_filter_decided").select("yes").run()
    assert _cards(at, "hard_") == [expected[0]] == _cards(at, "easy_")


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
    assert _cards(at, "hard_") == top
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
    assert at.subheader[0].value == "4 hardest"  # texts: 2 cards a row, two rows


def test_search_box_narrows_the_text_grid_to_matching_rows(app_cache):
    run = text_run(app_cache)
    at = open_page(PAGE, run, score="loss")
    texts = pd.read_parquet(run / "examples" / "texts.parquet")
    assert at.text_input(key="examples_filter_search").label == "Search text or #id"
    at.text_input(key="examples_filter_search").input("NOBODY").run()  # any case
    assert not at.exception
    nobody = texts.loc[texts["text_pair"].str.contains("nobody"), "id"]
    assert 0 < len(nobody) < len(texts)
    assert f"{len(nobody)} of {len(texts)} rows match" in page_text(at)
    table = _table(run)
    expected = _hardest_by(run, "loss", table["id"].isin(nobody))[:4]
    assert _cards(at, "hard_") == expected
    bodies = [m.value for m in at.markdown if m.value.startswith("*premise")]
    assert len(bodies) == 8 and all("*hypothesis:* nobody is there" in b for b in bodies)
    assert at.subheader[0].value == "4 hardest matching the filters"

    # "#id" finds that one example, in both grids.
    example = int(texts["id"].iloc[7])
    at.text_input(key="examples_filter_search").input(f"#{example}").run()
    assert _cards(at, "hard_") == [example] == _cards(at, "easy_")
    assert f"1 of {len(texts)} rows match" in page_text(at)
    at.text_input(key="examples_filter_search").input("no such words").run()
    assert not _cards(at, "hard_") and "No example matches the filters." in page_text(at)

    # The search is remembered for the page: back on it after a switch, it still applies.
    at.text_input(key="examples_filter_search").input("nobody").run()
    again = open_page(PAGE, run, **at.session_state["ui"].choices)
    assert again.text_input(key="examples_filter_search").value == "nobody"
    assert _cards(again, "hard_") == expected


def test_image_search_looks_up_ids(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run, score="el2n")
    example = int(_table(run)["id"].iloc[42])
    at.text_input(key="examples_filter_search").input(str(example)).run()
    assert not at.exception
    assert _cards(at, "hard_") == [example]
    at.text_input(key="examples_filter_search").input("seven").run()
    assert not _cards(at, "hard_")
    assert "image runs are searched by id only" in page_text(at)


def test_cards_per_row_by_modality(app_cache):
    # Images 5 a row with short button labels; texts 2 a row, wide enough for full labels.
    image = open_page(PAGE, digits_run(app_cache), score="el2n")
    assert not image.exception
    assert grid_rows(image, "hard_") == [5, 5]  # 10 cards by default: two full rows
    first = _cards(image, "hard_")[0]
    assert image.selectbox(key=f"hard_relabel_{first}").label == "Other label"
    text = open_page(PAGE, text_run(app_cache), score="loss")
    assert not text.exception
    assert grid_rows(text, "hard_") == [2, 2]
    first = _cards(text, "hard_")[0]
    assert text.selectbox(key=f"hard_relabel_{first}").label == "Relabel to another label"
    assert text.slider(key="examples_k").step == 2  # the slider moves by full rows


def test_empty_cache_shows_info(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.get("image")
