"""The Duplicates & outliers tables on a run with copies and leaks injected by hand
(`tests/neighbour_run.py`), checked against the injected rows, the run's own columns and
hand computations; the dedup survivor rule on small arrays."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from scoring import store
from scoring.errors import InputError
from scoring.read import neighbours as nb
from scoring.read.views import load_run
from tests.conftest import text_run
from tests.neighbour_run import N_TRAIN, injected, source_test_rows


@pytest.fixture(scope="module")
def view(neighbour_cache):
    (run,) = list(store.iter_run_dirs(neighbour_cache))
    return load_run(run)


# --- the survivor rule ----------------------------------------------------------------------


def test_keep_one_per_group_keeps_the_lowest_id_by_hand():
    groups = np.array([-1, 0, 0, 1, -1, 1, 0])
    ids = np.array([10, 5, 3, 7, 1, 2, 9])
    # group 0 = ids {5, 3, 9} -> 3 (row 2); group 1 = ids {7, 2} -> 2 (row 5)
    assert nb.keep_one_per_group(groups, ids).tolist() == [1, 0, 1, 0, 1, 1, 0]
    # With row 2 out of play (dropped by a decision), id 5 (row 1) survives group 0; rows
    # out of play are never kept.
    play = np.array([1, 1, 0, 1, 1, 1, 0], bool)
    assert nb.keep_one_per_group(groups, ids, play).tolist() == [1, 1, 0, 0, 1, 1, 0]


def test_keep_one_per_group_does_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    groups = rng.integers(-1, 6, size=40)
    ids = rng.permutation(1000)[:40]
    kept_ids = set(ids[nb.keep_one_per_group(groups, ids)])
    order = rng.permutation(40)
    assert set(ids[order][nb.keep_one_per_group(groups[order], ids[order])]) == kept_ids
    # One per group plus every ungrouped row.
    assert len(kept_ids) == int((groups < 0).sum()) + len(set(groups[groups >= 0]))
    with pytest.raises(InputError, match="same|shape"):
        nb.keep_one_per_group(groups, ids[:3])


# --- tables on the injected run -------------------------------------------------------------


def test_every_injected_copy_shares_a_group_and_is_exact(view):
    groups = view.table.set_index("id")["dup_group"]
    rows = nb.duplicate_rows(view)
    for src, copy in injected()["copies"]:
        assert groups[src] == groups[copy] >= 0
        assert rows.set_index("id").loc[[src, copy], "exact"].all()
    # The table holds exactly the rows the column groups, with the column's groups.
    grouped = view.table[view.table["dup_group"] >= 0]
    assert sorted(rows["id"]) == sorted(grouped["id"])
    by_id = grouped.set_index("id")["dup_group"]
    assert rows.set_index("id")["group"].sort_index().tolist() == by_id.sort_index().tolist()
    # `kept` is the lowest id of each group, computed here from the column directly.
    lowest = grouped.groupby("dup_group")["id"].min()
    assert sorted(rows.loc[rows["kept"], "id"]) == sorted(lowest)


def test_group_table_flags_disagreeing_labels(view):
    rows = nb.duplicate_rows(view)
    table = nb.group_table(rows, view.label_names).set_index("keep_id")
    # Row 20 was copied with label 7: its group holds two labels.
    src, copy = injected()["copies"][3]
    labels = view.table.set_index("id")["label"]
    assert labels[src] != labels[copy] == 7
    assert table.loc[src, "labels"] == 2 and str(labels[src]) in table.loc[src, "label_names"]
    # Row 10 and its two copies: one group of 3, all exact.
    assert table.loc[10, "size"] >= 3 and {10, 151, 152} <= set(table.loc[10, "ids"])
    assert nb.drops_for_group(rows, int(table.loc[10, "group"])) == [
        i for i in table.loc[10, "ids"] if i != 10
    ]
    assert nb.drops_for_group(rows, int(table.loc[10, "group"]), keep_id=152) == [
        i for i in table.loc[10, "ids"] if i != 152
    ]
    with pytest.raises(InputError, match="not in duplicate group"):
        nb.drops_for_group(rows, int(table.loc[10, "group"]), keep_id=3)


def test_leak_pairs_name_the_copied_test_rows(view):
    pairs = nb.leak_pairs(view).set_index("id")
    expected = dict(injected()["leaks"])  # train id -> test row (= test id: row numbers)
    assert set(expected) <= set(pairs.index)
    # The column, read directly, is the pair table.
    leak = view.table.set_index("id")["leak_of"]
    assert sorted(pairs.index) == sorted(leak[leak >= 0].index)
    _, test_labels = source_test_rows()
    for train_id, test_row in expected.items():
        assert pairs.loc[train_id, "test_id"] == test_row
        assert pairs.loc[train_id, "test_label"] == test_labels[test_row]
        assert pairs.loc[train_id, "exact"] and pairs.loc[train_id, "same_label"]
    assert set(pairs["split"]) == {"test"}  # a separate test file, not carved


def test_twin_images_are_the_test_images(view):
    (twin,) = nb.twin_images(view, [4], size=8)  # 8x8: no upscaling
    source = source_test_rows()[0][4]
    assert np.array_equal(twin, source)
    (big,) = nb.twin_images(view, [4], size=64)  # 8x upscaled, nearest neighbour
    assert np.array_equal(big, source.repeat(8, 0).repeat(8, 1))
    assert nb.twin_images(view, [10_000]) == [None]


def test_top_outliers_rank_the_injected_noise_image_first(view):
    frame = nb.top_outliers(view, 5)
    values = view.table["outlier"].to_numpy()
    assert frame["id"].tolist() == view.table["id"].to_numpy()[np.argsort(-values)[:5]].tolist()
    assert frame["id"].iloc[0] == injected()["outlier"]
    # `flagged` matches the run's summary count (written by the scoring pipeline).
    summary = json.loads((view.path / "summary.json").read_text())["neighbourhood"]
    assert int(frame["flagged"].sum()) == min(summary["outliers"], 5)
    with pytest.raises(InputError, match="k must be"):
        nb.top_outliers(view, 0)


def test_issue_counts_by_hand_and_against_the_summary(view):
    counts = nb.issue_counts(view)
    groups = view.table["dup_group"].to_numpy()
    assert counts["duplicate_groups"] == len(set(groups[groups >= 0]))
    assert counts["rows_in_groups"] == int((groups >= 0).sum())
    assert counts["redundant_rows"] == counts["rows_in_groups"] - counts["duplicate_groups"]
    assert counts["exact_copies"] == len(injected()["copies"])  # 3, 10 (twice), 20
    summary = json.loads((view.path / "summary.json").read_text())["neighbourhood"]
    assert counts["duplicate_groups"] == summary["duplicate_groups"]
    assert counts["redundant_rows"] == summary["redundant_rows"]
    assert counts["leaks"] == summary["leaks"] >= len(injected()["leaks"])
    assert counts["outliers"] == summary["outliers"] >= 1
    per_class = np.bincount(view.table["label"], minlength=10)
    assert counts["imbalance"] == pytest.approx(per_class.max() / per_class.min())
    table = nb.class_counts(view).set_index("class")
    assert table["count"].sum() == N_TRAIN + 8
    assert [table.loc[str(c), "count"] for c in range(10)] == per_class.tolist()


def test_a_run_without_the_columns_says_how_to_get_them(app_cache):
    view = load_run(text_run(app_cache))  # scored with el2n, aum, loss, cl_quality only
    for column in ("dup_group", "leak_of"):
        assert "rescore with near_dup/leakage" in nb.missing_message(view, column)
        with pytest.raises(InputError, match="rescore with near_dup/leakage"):
            nb.require(view, column)
    with pytest.raises(InputError, match="rescore with outlier"):
        nb.top_outliers(view, 3)
    counts = nb.issue_counts(view)
    assert counts["duplicate_groups"] is None and counts["leaks"] is None
    assert counts["outliers"] is None and counts["imbalance"] is not None
    # A recorded run cannot be rescored: the message says which features would give them.
    recorded = dataclasses.replace(view, config={**view.config, "source": "recorded"})
    message = nb.missing_message(recorded, "dup_group")
    assert "recorded without label-free features" in message and "rescore" not in message
    assert "features_label_free=True" in message


def test_twin_texts_read_the_held_out_texts_carved_or_not(app_cache):
    view = load_run(text_run(app_cache))  # jsonl source: held-out rows carved from it
    assert view.config["dataset"]["test_origin"] == "carved"
    held_ids = store.RunDir(view.path).read_split().test_ids[:3].tolist()
    carved = nb.twin_texts(view, held_ids)
    # The source wrote premise "a man plays guitar {i}" for row i (= its id).
    assert carved["premise"].tolist() == [f"a man plays guitar {i}" for i in held_ids]
    # A separate test file (not carved) is read from the run's held-out texts the same way.
    config = {**view.config, "dataset": {**view.config["dataset"], "test_origin": "file"}}
    separate = nb.twin_texts(dataclasses.replace(view, config=config), held_ids)
    assert separate.equals(carved)
