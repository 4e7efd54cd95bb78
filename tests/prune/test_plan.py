"""The selection planner on hand-made runs: decisions first, labels as the rule and the export
see them, counts, refusals; and the trial reads the Pruning page draws from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.errors import InputError
from scoring.prune.plan import plan_selection, select_run, shown_values, source_labels
from scoring.prune.select import SelectionConfig, select_indices
from scoring.prune.sweeps import SweepConfig, matching_trials, n_finished
from scoring.read.views import RunView

# Ten examples; a --noise check swapped the labels of rows 0 and 5 (true_label is the source's).
TABLE = pd.DataFrame(
    {
        "id": np.arange(10, 20),
        "label": [1, 0, 0, 0, 0, 0, 1, 1, 1, 1],
        "true_label": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
        "s": [0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6, 0.0, 0.4],
        "conf": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    }
)
HARDEST_HALF = SelectionConfig("hardest", 0.5, score="s")


def _view(table: pd.DataFrame = TABLE) -> RunView:
    summary = {"scores": {"s": {"higher_is_harder": True}, "conf": {"higher_is_harder": False}}}
    return RunView(Path("run"), {}, summary, table)


def _decisions(*rows: tuple[int, str, int | None]) -> pd.DataFrame:
    ids, actions, new = zip(*rows, strict=True)
    return pd.DataFrame({"id": ids, "action": actions, "new_label": pd.array(new, "Int64")})


def test_without_decisions_the_plan_is_the_rule_over_every_example():
    plan = plan_selection(_view(), HARDEST_HALF)
    assert plan.rows.tolist() == list(range(10)) and plan.n_dropped == 0
    assert plan.positions.tolist() == [0, 1, 3, 5, 7]  # s = 0.5, 0.9, 0.7, 0.8, 0.6
    assert plan.n_kept == 5 and plan.n_decisions == 0 and plan.n_relabelled == 0
    assert plan.labels.tolist() == TABLE["label"].tolist()  # the rule sees the run's labels
    assert plan.original_labels.tolist() == TABLE["true_label"].tolist()  # export: source's
    assert plan.written_per_class(2).tolist() == [3, 2]
    # the run's direction: low confidence is hard
    low_confidence = plan_selection(_view(), SelectionConfig("hardest", 0.3, score="conf"))
    assert low_confidence.positions.tolist() == [0, 1, 2]


def test_decisions_come_first_and_relabels_reach_every_label():
    made = _decisions(
        (11, "drop", None), (13, "drop", None), (15, "relabel", 0), (12, "keep", None)
    )
    plan = plan_selection(_view(), HARDEST_HALF, made)
    assert plan.rows.tolist() == [0, 2, 4, 5, 6, 7, 8, 9] and plan.n_dropped == 2
    # round(0.5 * 8) = 4 of what is left, hardest first: rows 5 (0.8), 7 (0.6), 0 (0.5), 9 (0.4)
    assert plan.positions.tolist() == [0, 5, 7, 9]
    assert plan.labels[plan.rows.tolist().index(5)] == 0  # relabelled for the rule
    assert plan.final_labels[plan.rows.tolist().index(5)] == 0  # and for the export
    assert plan.relabelled.tolist() == [r == 5 for r in plan.rows]
    assert plan.n_relabelled == 1 and plan.n_decisions == 4
    assert plan.written_per_class(2).tolist() == [2, 2]  # rows 0, 5 -> class 0; 7, 9 -> class 1
    assert select_run(_view(), HARDEST_HALF, decisions=made).tolist() == [0, 5, 7, 9]


def test_a_relabel_to_the_source_label_is_no_change_for_the_export():
    # Row 0's run label is 1 (noise); relabelling it to 0 restores the source's own label.
    plan = plan_selection(_view(), HARDEST_HALF, _decisions((10, "relabel", 0)))
    assert plan.labels[0] == 0 and not plan.relabelled[0] and plan.n_relabelled == 0


def test_history_form_and_cleared_decisions():
    made = _decisions((11, "drop", None), (11, "clear", None), (12, "drop", None))
    plan = plan_selection(_view(), HARDEST_HALF, made)
    assert plan.n_dropped == 1 and plan.n_decisions == 1 and 2 not in plan.rows


def test_refusals():
    every = _decisions(*[(int(i), "drop", None) for i in TABLE["id"]])
    with pytest.raises(InputError, match="drop all 10 examples.*no examples left"):
        plan_selection(_view(), HARDEST_HALF, every)
    with pytest.raises(InputError, match="no score 'el2n'; it has: s, conf"):
        plan_selection(_view(), SelectionConfig("hardest", 0.5, score="el2n"))
    with pytest.raises(InputError, match="keeps none"):
        plan_selection(_view(), SelectionConfig("hardest", 0.01, score="s"))
    with pytest.raises(InputError, match="rule must be one of"):
        plan_selection(_view(), SelectionConfig("top", 0.5, score="s"))


def test_random_needs_no_score_and_runs_without_noise_use_their_labels():
    table = TABLE.drop(columns=["true_label"])
    plan = plan_selection(_view(table), SelectionConfig("random", 0.3, seed=2))
    expected = select_indices(
        None, table["label"].to_numpy(), SelectionConfig("random", 0.3, seed=2)
    )
    assert plan.positions.tolist() == expected.tolist()
    assert plan.original_labels.tolist() == table["label"].tolist()
    assert source_labels(_view(table)).tolist() == table["label"].tolist()
    assert source_labels(_view()).tolist() == TABLE["true_label"].tolist()


def test_shown_values_are_the_rows_in_play_normalized_as_ranked():
    plan = plan_selection(_view(), HARDEST_HALF, _decisions((11, "drop", None)))
    raw = shown_values(_view(), plan, "s", "none")
    assert raw.tolist() == TABLE["s"].drop(index=1).tolist()
    z = shown_values(_view(), plan, "s", "class")
    for c in (0, 1):
        assert z[plan.labels == c].mean() == pytest.approx(0.0)
    with pytest.raises(InputError, match="no score"):
        shown_values(_view(), plan, "aum", "none")


# --- the trials a Pruning chart draws ------------------------------------------------------------


def _trials() -> pd.DataFrame:
    rows = []
    for rule, score in (("hardest", "s"), ("random", None)):
        for fraction in (0.2, 0.6):
            for seed in (0, 1):
                rows.append(
                    {
                        "rule": rule,
                        "score": score,
                        "fraction": fraction,
                        "seed": seed,
                        "accuracy": 0.5 + fraction / 2 + seed / 100,
                        "n_kept": round(fraction * 100),
                        "schedule": "steps",
                        "normalization": "none",
                        "offset": 0.0,
                        "class_balanced": False,
                        "temperature": 1.0,
                        "beta": 0.1,
                        "bins": 50,
                        "apply_decisions": False,
                    }
                )
    return pd.DataFrame(rows)


def test_matching_trials_compare_the_canonical_selection():
    trials = _trials()
    # An offset the rule ignores does not hide the hardest trials; the schedule does.
    hard = SelectionConfig("hardest", 1.0, score="s", offset=0.3)
    assert len(matching_trials(trials, hard, schedule="steps", apply_decisions=False)) == 4
    assert matching_trials(trials, hard, schedule="epochs", apply_decisions=False).empty
    assert matching_trials(trials, hard, schedule="steps", apply_decisions=True).empty
    # random is matched whatever score or normalization the page had chosen
    rand = SelectionConfig("random", 1.0, score="s", normalization="class")
    assert len(matching_trials(trials, rand, schedule="steps", apply_decisions=False)) == 4
    other = SelectionConfig("hardest", 1.0, score="aum")
    assert matching_trials(trials, other, schedule="steps", apply_decisions=False).empty
    empty = pd.DataFrame()
    assert matching_trials(empty, hard, schedule="steps", apply_decisions=False).empty


def test_finished_trials():
    trials = _trials()
    sweep = SweepConfig(SelectionConfig("hardest", 1.0, score="s"), (0.2, 0.4), 2)
    assert n_finished(trials, sweep) == 4  # 0.2 x 2 seeds x (hardest, random); 0.4 not yet
    assert n_finished(pd.DataFrame(), sweep) == 0


def test_held_out_rows_never_enter_the_pool():
    """Retraining's validation rows: out before the decisions and the rule; fraction of the rest."""
    held = np.array([1, 3])  # s = 0.9 and 0.7: the two hardest would otherwise be kept
    plan = plan_selection(_view(), HARDEST_HALF, exclude=held)
    assert plan.rows.tolist() == [0, 2, 4, 5, 6, 7, 8, 9] and plan.n_excluded == 2
    assert plan.n_dropped == 0
    # round(0.5 * 8) = 4 hardest of the 8 left: rows 5 (0.8), 7 (0.6), 0 (0.5), 9 (0.4)
    assert plan.positions.tolist() == [0, 5, 7, 9]
    made = _decisions((11, "drop", None), (10, "drop", None))  # row 1 is held out anyway
    plan = plan_selection(_view(), HARDEST_HALF, made, exclude=held)
    assert plan.n_dropped == 1 and plan.rows.tolist() == [2, 4, 5, 6, 7, 8, 9]
    every = _decisions(*[(int(i), "drop", None) for i in TABLE["id"]])
    with pytest.raises(InputError, match=r"drop all 8 examples not held out \(2 are\)"):
        plan_selection(_view(), HARDEST_HALF, every, exclude=held)
