"""Selection rules on hand-made scores: exact kept sets, sampling statistics, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.errors import InputError
from scoring.prune.plan import select_run
from scoring.prune.select import (
    RULES,
    SelectionConfig,
    apply_decisions,
    auto_offset,
    check_config,
    lost_classes,
    select_indices,
)
from scoring.read.views import RunView

HAND = np.array([0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6, 0.0, 0.4])  # row r has rank r-ish
LABELS10 = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])


def sel(values, labels, rule, fraction, **kw):
    higher = kw.pop("higher_is_harder", True)
    score = None if rule == "random" else "s"
    config = SelectionConfig(rule=rule, fraction=fraction, score=score, **kw)
    return select_indices(values, labels, config, higher_is_harder=higher).tolist()


def view_of(table: pd.DataFrame, scores: dict[str, bool]) -> RunView:
    summary = {"scores": {k: {"higher_is_harder": v} for k, v in scores.items()}}
    return RunView(Path("run"), {}, summary, table)


# --- every rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
def test_contract_size_sorted_unique_deterministic(rule):
    rng = np.random.default_rng(1)
    values, labels = rng.normal(size=40), rng.integers(0, 3, size=40)
    config = SelectionConfig(rule=rule, fraction=0.3, score="s", offset=0.2, seed=5)
    kept = select_indices(values, labels, config)
    assert kept.shape == (12,) and kept.dtype == np.int64
    assert np.all(np.diff(kept) > 0) and kept.min() >= 0 and kept.max() < 40
    assert np.array_equal(kept, select_indices(values, labels, config))
    # permutation-equivariant for the deterministic rules
    if rule in ("hardest", "easiest", "offset"):
        perm = rng.permutation(40)
        back = perm[select_indices(values[perm], labels[perm], config)]
        assert sorted(back) == kept.tolist()


def test_hardest_and_easiest_exact():
    assert sel(HAND, LABELS10, "hardest", 0.3) == [1, 3, 5]
    assert sel(HAND, LABELS10, "easiest", 0.3) == [2, 6, 8]
    # a "lower = harder" score: the hardest are the lowest values
    assert sel(HAND, LABELS10, "hardest", 0.3, higher_is_harder=False) == [2, 6, 8]
    assert sel(HAND, LABELS10, "easiest", 0.2, higher_is_harder=False) == [1, 5]
    assert sel(HAND, LABELS10, "hardest", 1.0) == list(range(10))


def test_ties_go_to_the_earlier_row():
    values = np.array([1.0, 1.0, 1.0, 0.0])
    labels = np.zeros(4, dtype=int)
    assert sel(values, labels, "hardest", 0.5) == [0, 1]
    assert sel(values, labels, "easiest", 0.5) == [0, 3]


def test_offset_window():
    values = np.arange(10.0)
    labels = np.zeros(10, dtype=int)
    assert sel(values, labels, "offset", 0.3, offset=0.2) == [5, 6, 7]
    assert sel(values, labels, "offset", 0.3, offset=0.0) == [7, 8, 9]  # = hardest
    assert sel(values, labels, "offset", 0.3, offset=0.7) == [0, 1, 2]  # fits exactly
    assert sel(values, labels, "offset", 0.3, offset=0.2, higher_is_harder=False) == [2, 3, 4]


def test_offset_window_shifts_back_when_rounding_overruns():
    # round(0.5 * 3) + round(0.5 * 3) = 2 + 2 > 3: the window ends at the easiest row instead
    assert sel(np.arange(3.0), np.zeros(3, int), "offset", 0.5, offset=0.5) == [0, 1]


def test_class_balanced_quotas():
    kept = sel(HAND, LABELS10, "hardest", 0.4, class_balanced=True)
    assert kept == [1, 3, 5, 7]  # 2 per class: class 0 {0.9, 0.7}, class 1 {0.8, 0.6}
    assert sel(HAND, LABELS10, "hardest", 0.4) == [1, 3, 5, 7]
    # unbalanced classes: 6 and 4 examples at 50% -> 3 + 2; at 10% each class keeps at least 1
    labels = np.array([0] * 6 + [1] * 4)
    values = np.arange(10.0)
    assert sel(values, labels, "hardest", 0.5, class_balanced=True) == [3, 4, 5, 8, 9]
    assert sel(values, labels, "easiest", 0.1, class_balanced=True) == [0, 6]
    assert sel(values, labels, "offset", 0.5, offset=0.25, class_balanced=True) == [1, 2, 3, 7, 8]


def test_class_normalization_changes_the_ranking():
    # class 0 lives on a scale 10x larger: raw ranking keeps only class 0
    values = np.array([10.0, 20.0, 30.0, 1.0, 2.0, 3.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert sel(values, labels, "hardest", 1 / 3) == [1, 2]
    assert sel(values, labels, "hardest", 1 / 3, normalization="class") == [2, 5]
    assert sel(values, labels, "hardest", 1 / 3, normalization="dataset") == [1, 2]


def test_lost_classes_is_reported_not_refused():
    values = np.array([5.0, 6.0, 7.0, 0.0, 1.0])
    labels = np.array([0, 0, 0, 1, 1])
    kept = np.array(sel(values, labels, "hardest", 0.6))
    assert kept.tolist() == [0, 1, 2]
    assert lost_classes(labels, kept) == [1]
    assert lost_classes(labels, np.array([0, 3])) == []


# --- random and the sampling rules --------------------------------------------------------


@pytest.mark.parametrize("rule", ["random", "softmax", "linear", "stratified"])
def test_seeded_rules_are_deterministic_and_seeds_differ(rule):
    values = np.linspace(0, 1, 60)
    labels = np.zeros(60, dtype=int)
    a = sel(values, labels, rule, 0.3, seed=1, bins=5)
    assert a == sel(values, labels, rule, 0.3, seed=1, bins=5)
    assert a != sel(values, labels, rule, 0.3, seed=2, bins=5)


def test_random_ignores_values():
    labels = np.zeros(20, dtype=int)
    config = SelectionConfig(rule="random", fraction=0.25, seed=3)
    kept = select_indices(None, labels, config)
    assert np.array_equal(kept, select_indices(np.arange(20.0), labels, config))
    assert kept.shape == (5,)


def test_softmax_tiny_temperature_is_hardest():
    values = np.arange(10.0)
    labels = np.zeros(10, dtype=int)
    hardest = sel(values, labels, "hardest", 0.3)
    # T = 0.05: every non-top weight is below e^-20, so the top 3 win almost surely
    same = [sel(values, labels, "softmax", 0.3, temperature=0.05, seed=s) for s in range(200)]
    assert sum(k == hardest for k in same) >= 198
    # T = 1e-4 underflows all but one weight to 0: the rest is filled by hardness
    assert sel(values, labels, "softmax", 0.3, temperature=1e-4) == hardest
    lower = sel(values, labels, "softmax", 0.3, temperature=1e-4, higher_is_harder=False)
    assert lower == [0, 1, 2]


def test_softmax_huge_temperature_is_uniform():
    values = np.arange(10.0)
    labels = np.zeros(10, dtype=int)
    counts = np.zeros(10)
    n = 2000
    for s in range(n):
        counts[sel(values, labels, "softmax", 0.3, temperature=1e6, seed=s)] += 1
    assert np.allclose(counts / n, 0.3, atol=0.05)


def test_linear_weights_are_proportional_to_shifted_hardness():
    # one pick (m = 1): P(row) = (h - min h + eps) / sum = [0, 1, 2, 3] / 6
    values = np.array([10.0, 11.0, 12.0, 13.0])
    labels = np.zeros(4, dtype=int)
    counts = np.zeros(4)
    n = 3000
    for s in range(n):
        counts[sel(values, labels, "linear", 0.25, seed=s)] += 1
    assert np.allclose(counts / n, [0, 1 / 6, 2 / 6, 3 / 6], atol=0.03)
    # constant scores: every weight is eps, so linear is uniform and still fills the budget
    assert len(sel(np.ones(8), np.zeros(8, int), "linear", 0.5)) == 4


# --- stratified (CCS) ----------------------------------------------------------------------


def test_stratified_covers_bins_evenly_and_drops_the_hardest():
    values = np.arange(100.0)  # hardness 0..99; beta 0.1 drops 90..99
    labels = np.zeros(100, dtype=int)
    for seed in range(3):
        kept = np.array(sel(values, labels, "stratified", 0.45, beta=0.1, bins=9, seed=seed))
        assert kept.shape == (45,) and kept.max() < 90
        assert np.bincount(kept // 10, minlength=9).tolist() == [5] * 9


def test_stratified_small_bins_give_their_share_to_the_others():
    # three equal-width bins over [0.1, 3.0]: sizes 2, 10, 10; budget 12 -> 2 + 5 + 5
    values = np.array([0.1, 0.2] + [1.5] * 10 + [2.5] * 9 + [3.0])
    labels = np.zeros(22, dtype=int)
    kept = np.array(sel(values, labels, "stratified", 12 / 22, beta=0.0, bins=3))
    assert np.bincount(np.minimum(values[kept], 2.99).astype(int)).tolist() == [2, 5, 5]
    # with beta, the hardest (3.0 and 2.5s) go first; higher_is_harder=False flips that
    low = np.array(sel(values, labels, "stratified", 0.4, beta=0.5, bins=3, higher_is_harder=False))
    assert values[low].min() >= 1.5


def test_stratified_class_balanced_and_constant_scores():
    values = np.tile(np.arange(10.0), 2)
    labels = np.repeat([0, 1], 10)
    kept = np.array(sel(values, labels, "stratified", 0.5, beta=0.2, bins=4, class_balanced=True))
    assert np.bincount(labels[kept]).tolist() == [5, 5]
    assert values[kept].max() < 8
    assert len(sel(np.ones(10), np.zeros(10, int), "stratified", 0.5, bins=4)) == 5


# --- run-level helpers ---------------------------------------------------------------------


def test_select_run_uses_the_runs_direction_and_refuses_a_missing_score():
    table = pd.DataFrame(
        {"id": [10, 11, 12, 13], "label": [0, 0, 1, 1], "conf": [0.9, 0.1, 0.8, 0.2]}
    )
    view = view_of(table, {"conf": False})  # low confidence = hard
    kept = select_run(view, SelectionConfig(rule="hardest", fraction=0.5, score="conf"))
    assert kept.tolist() == [1, 3]
    assert select_run(view, SelectionConfig(rule="random", fraction=0.5)).shape == (2,)
    with pytest.raises(InputError, match="no score 'el2n'.*conf"):
        select_run(view, SelectionConfig(rule="hardest", fraction=0.5, score="el2n"))


def test_auto_offset_is_the_flagged_share():
    table = pd.DataFrame({"id": range(8), "label": [0] * 8, "cl_issue": [1, 0, 0, 1, 0, 0, 0, 0]})
    assert auto_offset(view_of(table, {"cl_issue": True})) == pytest.approx(0.25)
    with pytest.raises(InputError, match="score cl_issue"):
        auto_offset(view_of(table.drop(columns="cl_issue"), {}))
    with pytest.raises(InputError, match="every example"):
        auto_offset(view_of(table.assign(cl_issue=1), {"cl_issue": True}))


def test_apply_decisions():
    ids = np.array([100, 101, 102, 103, 104])
    labels = np.array([0, 1, 2, 0, 1])
    decisions = pd.DataFrame(
        {
            "id": [101, 102, 103, 999],
            "action": ["drop", "relabel", "keep", "drop"],  # 999 is not here: ignored
            "new_label": pd.array([None, 0, None, None], dtype="Int64"),
            "time": ["t"] * 4,
        }
    )
    keep, new = apply_decisions(ids, labels, decisions)
    assert keep.tolist() == [True, False, True, True, True]
    assert new.tolist() == [0, 1, 0, 0, 1]
    assert labels.tolist() == [0, 1, 2, 0, 1]  # input untouched
    # history form: later lines win, clear withdraws
    later = pd.DataFrame(
        {
            "id": [101, 101, 104],
            "action": ["drop", "clear", "relabel"],
            "new_label": [None, None, 2],
        }
    )
    keep, new = apply_decisions(ids, labels, later)
    assert keep.all() and new.tolist() == [0, 1, 2, 0, 2]
    keep, new = apply_decisions(ids, labels, decisions.iloc[:0])
    assert keep.all() and new.tolist() == labels.tolist()


def test_apply_decisions_refusals():
    ids, labels = np.array([1, 2]), np.array([0, 1])
    frame = pd.DataFrame({"id": [1], "action": ["delete"], "new_label": [None]})
    with pytest.raises(InputError, match="keep, relabel, drop"):
        apply_decisions(ids, labels, frame)
    with pytest.raises(InputError, match="no new_label"):
        apply_decisions(ids, labels, frame.assign(action="relabel"))
    with pytest.raises(InputError, match="shape"):
        apply_decisions(ids, labels[:1], frame)
    with pytest.raises(InputError, match="unique"):
        apply_decisions(np.array([1, 1]), labels, frame.assign(action="keep"))
    with pytest.raises(InputError, match="lack column"):
        apply_decisions(ids, labels, frame.drop(columns="new_label"))


def test_to_dict_is_json():
    config = SelectionConfig(rule="offset", fraction=np.float64(0.4), score="el2n", offset=0.1)
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert SelectionConfig(**data) == config
    assert data["rule"] == "offset" and data["seed"] == 0


# --- refusals ------------------------------------------------------------------------------

V4, L4 = np.arange(4.0), np.zeros(4, dtype=int)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"fraction": 0.0}, r"fraction kept must be in \(0, 1\], got 0.0"),
        ({"fraction": 1.5}, r"in \(0, 1\]"),
        ({"fraction": float("nan")}, r"in \(0, 1\]"),
        ({"rule": "top"}, "rule must be one of hardest, easiest, random"),
        ({"score": None}, "ranks by a score"),
        ({"normalization": "minmax"}, "normalization must be one of none, class, dataset"),
        ({"offset": 1.0}, r"offset must be a share in \[0, 1\)"),
        ({"offset": -0.1}, r"offset must be a share"),
        ({"rule": "offset", "offset": 0.7}, "at most fraction 0.3 fits"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"beta": 1.0}, r"beta must be a share in \[0, 1\)"),
        ({"rule": "stratified", "beta": 0.8}, "at most fraction 0.2 fits"),
        ({"bins": 0}, "bins must be an integer >= 1"),
        ({"bins": 2.5}, "bins must be an integer >= 1"),
    ],
)
def test_bad_config_refused(kw, match):
    config = SelectionConfig(**{"rule": "hardest", "fraction": 0.5, "score": "s", **kw})
    with pytest.raises(InputError, match=match):
        check_config(config)
    with pytest.raises(InputError, match=match):
        select_indices(V4, L4, config)


def test_bad_inputs_refused():
    config = SelectionConfig(rule="hardest", fraction=0.5, score="s")
    with pytest.raises(InputError, match=r"values \(3,\) and labels \(4,\)"):
        select_indices(np.arange(3.0), L4, config)
    with pytest.raises(InputError, match="2 of 4 score values are NaN"):
        select_indices(np.array([0.0, np.nan, 1.0, np.inf]), L4, config)
    with pytest.raises(InputError, match="needs score values"):
        select_indices(None, L4, config)
    with pytest.raises(InputError, match="labels must have shape"):
        select_indices(V4, np.zeros((2, 2)), config)
    with pytest.raises(InputError, match="no examples"):
        select_indices(np.array([]), np.array([]), config)


def test_empty_selection_refused():
    config = SelectionConfig(rule="hardest", fraction=0.1, score="s")
    with pytest.raises(InputError, match="keeps none"):
        select_indices(V4, L4, config)
    # class-balanced keeps at least one per class, so it is never empty
    balanced = SelectionConfig(rule="hardest", fraction=0.1, score="s", class_balanced=True)
    assert select_indices(V4, L4, balanced).tolist() == [3]
