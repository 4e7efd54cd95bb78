"""The Duplicates & outliers page in AppTest on a run with copies and leaks injected by hand
(`tests/neighbour_run.py`): counts, groups side by side, leak pairs, outliers, decisions that
land in decisions.jsonl; a run without the columns; and the Pruning and Export pages' switches
that drop duplicates and leaks before the rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scoring.prune.export import manifest_path
from scoring.read import decisions
from scoring.scores.neighbourhood import K_OUTLIER
from tests.app.pages import open_page, page_text, shown
from tests.conftest import text_run
from tests.neighbour_run import injected, private_copy

PAGE = "duplicates.py"


@pytest.fixture
def run(neighbour_cache, tmp_path, monkeypatch):
    """A private copy of the injected run (pages write decisions), as WINNOW_CACHE_DIR."""
    path = private_copy(neighbour_cache, tmp_path)
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(path.parent.parent))
    return path


def _columns(run) -> pd.DataFrame:
    return pd.read_parquet(run / "scores.parquet")


def _group_of(run, example: int) -> int:
    return int(_columns(run).set_index("id").loc[example, "dup_group"])


def test_counts_groups_leaks_and_outliers_are_shown(run):
    at = open_page(PAGE, run)
    assert not at.exception, at.exception
    frame = _columns(run)
    groups, leak = frame["dup_group"].to_numpy(), frame["leak_of"].to_numpy()
    n_groups = len(set(groups[groups >= 0]))
    redundant = int((groups >= 0).sum()) - n_groups
    text = shown(page_text(at))
    # Counts by hand from the run's own columns and the injected rows, each explained, and
    # which rows they cover.
    assert f"Among the {len(frame):,} training rows" in text
    assert f"**{len(injected()['copies'])} exact duplicates**: rows whose decoded pixels" in text
    assert f"**{n_groups} near-duplicate groups** ({int((groups >= 0).sum())} rows; " in text
    assert f"dropping duplicates removes {redundant})" in text
    assert f"**{int((leak >= 0).sum())} train/test leaks**: training rows that copy" in text
    # One outlier: singular; the neighbour count is the one the outlier score uses.
    assert f"**1 outlier**: rows unusually far from their {K_OUTLIER} nearest rows" in text
    assert f"farthest from their {K_OUTLIER} nearest rows" in text
    assert "1 counts as an outlier (robust z-score" in text
    counts = np.bincount(frame["label"], minlength=10)
    assert f"class imbalance {counts.max() / counts.min():.2f}×" in text
    # Every group on the first page has its buttons; the injected ones are shown.
    for src, _ in injected()["copies"]:
        assert at.button(key=f"dup_drop_{_group_of(run, src)}")
    assert "labels disagree" in text  # row 20 was copied with another label
    for example, _ in injected()["leaks"]:
        assert at.button(key=f"leak_drop_{example}")
    assert f"**train #{injected()['leaks'][0][0]}**" in text
    assert "exact copy · same label" in text
    # Outliers: the injected noise image first, flagged.
    assert at.button(key=f"out_drop_{injected()['outlier']}")
    assert any(c.value.endswith("· flagged") for c in at.caption)
    assert at.dataframe[0].value["count"].sum() == len(frame)  # the class balance table


def test_decisions_from_the_page_land_in_decisions_jsonl(run):
    at = open_page(PAGE, run)
    group = _group_of(run, 10)  # row 10 and its copies 151, 152
    at.button(key=f"dup_drop_{group}").click().run()
    assert not at.exception, at.exception
    latest = decisions.latest(run).set_index("id")["action"].to_dict()
    members = _columns(run).query("dup_group == @group")["id"].tolist()
    assert latest == {10: "keep", **{i: "drop" for i in members if i != 10}}
    # "Keep only this one" on a copy turns it around; the leak's drop is one more line.
    at.button(key=f"dup_keep_{group}_152").click().run()
    leaked = injected()["leaks"][0][0]
    at.button(key=f"leak_drop_{leaked}").click().run()
    latest = decisions.latest(run).set_index("id")["action"].to_dict()
    assert latest == {152: "keep", **{i: "drop" for i in members if i != 152}, leaked: "drop"}
    assert "Decision: **drop**" in page_text(at)
    # Undo withdraws the group's decisions (clear lines; the leak's stays).
    at.button(key=f"dup_clear_{group}").click().run()
    assert decisions.latest(run).set_index("id")["action"].to_dict() == {leaked: "drop"}


def test_a_run_without_the_columns_says_what_is_missing(app_cache):
    at = open_page(PAGE, text_run(app_cache))  # scored with el2n, aum, loss, cl_quality
    assert not at.exception, at.exception
    infos = [i.value for i in at.info]
    assert sum("rescore with near\\_dup/leakage" in i for i in infos) == 2  # groups, leaks
    assert any("rescore with outlier" in i for i in infos)
    assert "not available" in page_text(at)
    assert at.dataframe  # the class balance needs no neighbourhood column


def test_pruning_preview_drops_duplicates_first(run):
    n = len(_columns(run))
    at = open_page(
        "pruning.py", run, prune_rule="random", prune_fraction=0.5, prune_drop_duplicates=True
    )
    assert not at.exception, at.exception
    assert at.checkbox(key="w_prune_drop_duplicates").value
    left = n - 4  # the injected copies: 3, 10 (twice), 20
    text = page_text(at)
    assert f"Keeps **{round(0.5 * left)}** of {left} examples" in text
    assert "after 0 leaked and 4 duplicate rows dropped" in text
    at.checkbox(key="w_prune_drop_leaks").check().run()
    assert f"of {left - 3} examples" in page_text(at)


def test_export_page_writes_the_cleaned_dataset_without_duplicates_and_leaks(run, tmp_path):
    cleaned = {f"export_mode:{run}": "cleaned"}  # the page's remembered mode for this run
    at = open_page("export.py", run, export_folder=str(tmp_path), **cleaned)
    assert not at.exception, at.exception
    at.checkbox(key="export_drop_duplicates").check().run()
    at.checkbox(key="export_drop_leaks").check().run()
    frame = _columns(run)
    n = len(frame)
    text = page_text(at)
    assert f"writes **{n - 7:,}** of" in text  # 4 copies and 3 leaks
    assert "left out first: **3** leaked training rows and **4** duplicates" in text
    at.button(key="export_go").click().run()
    assert not at.exception, at.exception
    out = tmp_path / at.text_input(key="export_out").value
    written = set(pd.read_parquet(out)["id"])
    copies = {c for _, c in injected()["copies"]}
    leaks = {t for t, _ in injected()["leaks"]}
    assert written == set(frame["id"]) - copies - leaks
    manifest = pd.read_json(manifest_path(out, "parquet"), typ="series")
    assert manifest["pre_steps"]["duplicates_dropped"] == 4
    assert manifest["pre_steps"]["leaks_dropped"] == 3


def test_groups_whose_labels_disagree_go_to_a_labelling_tool(run, tmp_path, monkeypatch):
    """The rows of the groups with two labels, counted by hand, are offered to Label Studio
    and Argilla: the box, its count and the ids in both files (the upload of answers is the
    same box as Mislabeled's, driven in tests/app/test_browser_labelling.py)."""
    from app_pages._labelling import _files_cached
    from scoring.read import labelling
    from scoring.read.views import load_run

    frame = _columns(run)
    grouped = frame[frame["dup_group"] >= 0]
    labels = grouped.groupby("dup_group")["label"].nunique()
    disagree = grouped[grouped["dup_group"].isin(labels[labels > 1].index)]
    assert len(disagree) >= 2  # the injected run has copies with other labels
    at = open_page(PAGE, run)
    assert not at.exception, at.exception
    boxes = [e.label for e in at.expander if "to Label Studio" in e.label]
    assert boxes == [f"Send these {len(disagree)} to Label Studio"]
    n_groups = len(labels[labels > 1])
    groups = "group" if n_groups == 1 else "groups"
    assert f"The {len(disagree)} rows of the {n_groups} {groups} whose labels disagree" in (
        page_text(at)
    )
    rows = labelling.suspect_rows(load_run(run), disagree["id"].tolist())
    tasks, records = _files_cached(str(run), load_run(run).title(), rows)
    assert sorted(t["data"]["id"] for t in json.loads(tasks)) == sorted(disagree["id"])
    assert sorted(json.loads(x)["metadata"]["winnow_id"] for x in records.splitlines()) == (
        sorted(disagree["id"])
    )
