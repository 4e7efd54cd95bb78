"""Suspects with out-of-sample evidence, the model-error warning, labels by name, run titles,
and the planner's rule `all` with held-out rows: on small synthetic runs."""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
import pytest

from scoring import store
from scoring.errors import InputError
from scoring.prune.plan import plan_selection
from scoring.prune.select import SelectionConfig
from scoring.read import decisions, suspects
from scoring.read.views import RunView

NAMES = ["cat", "dog", "0"]


def _view(tmp_path: Path, *, origin: str = "carved", accuracy: float = 0.95) -> RunView:
    """4 training rows (ids 0-3) with out-of-fold evidence, 3 held-out rows (ids 10-12)."""
    table = pd.DataFrame(
        {
            "id": [0, 1, 2, 3],
            "label": [0, 1, 1, 2],
            "cl_quality": [0.9, 0.05, 0.6, 0.3],
            "cl_issue": [0.0, 1.0, 0.0, 0.0],
            "pred": [0, 1, 1, 2],  # in-sample: agrees with every label
            "pred_prob": [0.99] * 4,
            "given_prob": [0.99] * 4,
            "oof_given_prob": [0.9, 0.05, 0.6, 0.3],
            "oof_suggested": [0, 0, 1, 0],
            "oof_suggested_prob": [0.9, 0.93, 0.6, 0.6],
        }
    )
    held = pd.DataFrame(
        {
            "id": [10, 11, 12],
            "label": [0, 2, 1],
            "given_prob": [0.8, 0.02, 0.4],
            "suggested": [0, 1, 1],
            "suggested_prob": [0.8, 0.9, 0.4],
            "cl_quality": [0.8, 0.02, 0.4],
            "cl_issue": [0.0, 1.0, 0.0],
        }
    )
    store.write_parquet(store.RunDir(tmp_path).heldout_file, held)
    config = {"dataset": {"label_names": NAMES, "test_origin": origin}}
    summary = {
        "scores": {
            "cl_quality": {"higher_is_harder": False},
            "cl_issue": {"higher_is_harder": True},
        },
        "test_accuracy_mean": accuracy,
    }
    return RunView(tmp_path, config, summary, table)


def test_suspects_interleave_train_and_heldout_by_their_own_evidence(tmp_path):
    frame = suspects.suspects(_view(tmp_path), detector="cl_quality")
    # cl_quality, lowest first, over both splits: 0.02 (held 11), 0.05 (train 1), 0.3, ...
    assert frame["id"].tolist() == [11, 1, 3, 12, 2, 10, 0]
    assert frame["split"].tolist()[:2] == ["heldout", "train"]
    first = frame.iloc[1]  # train id 1: out-of-fold evidence, not the in-sample 0.99
    assert first["label"] == "dog" and first["suggested_label"] == "cat"
    assert first["given_prob"] == 0.05 and first["suggested_prob"] == 0.93
    assert (
        first["why"]
        == "out-of-fold p(given dog) = 0.05; the models say cat (0.93); cleanlab flags it"
    )
    assert frame.iloc[0]["why"].startswith("held-out p(given 0) = 0.02; the models say dog")
    assert frame["flagged"].tolist() == [True, True, False, False, False, False, False]
    assert suspects.flagged_count(_view(tmp_path)) == 2
    assert suspects.flagged_count(_view(tmp_path), split="train") == 1
    assert suspects.suspects(_view(tmp_path), "cl_quality", split="heldout")["id"].tolist() == [
        11,
        12,
        10,
    ]
    assert len(suspects.suspects(_view(tmp_path), "cl_quality", top=2)) == 2


def test_other_detectors_interleave_by_rank_quantile(tmp_path):
    frame = suspects.suspects(_view(tmp_path), detector="cl_issue")
    # train ranks (cl_issue, ties by row): 1, 0, 2, 3 -> quantiles .125 .375 .625 .875;
    # held-out 11, 12, 10 -> 1/6, 1/2, 5/6.
    assert frame["id"].tolist() == [1, 11, 0, 12, 2, 10, 3]
    assert set(frame.loc[frame["split"] == "heldout", "detector"]) == {"cl_quality"}


def test_a_separate_test_set_is_not_among_the_suspects(tmp_path):
    view = _view(tmp_path, origin="file")
    assert suspects.heldout_rows(view) is None
    assert set(suspects.suspects(view, "cl_quality")["split"]) == {"train"}
    assert suspects.suspects(view, "cl_quality", split="heldout").empty
    with pytest.raises(InputError, match="split must be"):
        suspects.suspects(view, "cl_quality", split="test")


@pytest.mark.parametrize(
    ("accuracy", "share", "warn"),
    [
        (0.79, 0.145, True),  # SST-2 with a frozen probe: the case the rule is for
        (0.95, 0.10, False),  # noisy digits: a good model, flags near the noise rate
        (0.80, 0.05, False),  # weak model, few flags
        (0.97, 0.30, False),  # strong model: many flags are real label errors
        (0.85, 0.20, False),  # at the accuracy bound: not below it
    ],
)
def test_model_errors_rule(accuracy, share, warn):
    assert suspects.model_errors_rule(accuracy, share) is warn


def test_likely_model_errors_on_a_run(tmp_path):
    # 2 of 7 rows flagged (29%): warns only when the accuracy is low.
    assert suspects.likely_model_errors(_view(tmp_path, accuracy=0.7))
    cli = suspects.model_errors_warning(_view(tmp_path, accuracy=0.7))
    assert "finetune" in cli and "--recipe" in cli
    # The app has a Recipe menu, not flags: its wording names the menu.
    app = suspects.model_errors_warning(_view(tmp_path, accuracy=0.7), app=True)
    assert "Recipe probe or finetune" in app and "--" not in app
    assert not suspects.likely_model_errors(_view(tmp_path, accuracy=0.9))
    assert suspects.model_errors_warning(_view(tmp_path, accuracy=0.9)) is None


def test_labels_by_name_or_unambiguous_index():
    assert decisions.label_index(NAMES, "dog") == 1
    assert decisions.label_index(NAMES, "DOG") == 1
    assert decisions.label_index(NAMES, "1") == 1  # no class is named "1"
    with pytest.raises(InputError, match="name of class 2 and the index of class 'cat'"):
        decisions.label_index(NAMES, "0")
    with pytest.raises(InputError, match="unknown label 'cow'"):
        decisions.label_index(NAMES, "cow")
    with pytest.raises(InputError, match="unknown label '7'"):
        decisions.label_index(NAMES, "7")


def test_rule_all_keeps_every_row_and_the_carved_heldout_minus_drops(tmp_path):
    view = _view(tmp_path)
    made = pd.DataFrame(
        {
            "id": [1, 11, 12, 3],
            "action": ["relabel", "relabel", "drop", "drop"],
            "new_label": pd.array([0, 1, None, None], "Int64"),
        }
    )
    plan = plan_selection(view, SelectionConfig(rule="all", fraction=1.0), made)
    assert plan.rows.tolist() == [0, 1, 2] and plan.kept.all()
    assert plan.heldout_ids.tolist() == [10, 11]
    assert plan.heldout_final.tolist() == [0, 1] and plan.heldout_original.tolist() == [0, 2]
    assert plan.n_written == 5 and plan.n_dropped_all == 2 and plan.n_relabelled == 2
    assert plan.written_per_class(3).tolist() == [3, 2, 0]  # cat: 0, 1->cat, 10; dog: 2, 11
    with pytest.raises(InputError, match="fraction is 1"):
        plan_selection(view, SelectionConfig(rule="all", fraction=0.5))
    # Other rules never take held-out rows.
    other = plan_selection(view, SelectionConfig(rule="random", fraction=0.5), made)
    assert other.n_heldout == 0 and other.n_written == other.n_kept


def test_run_title_names_what_tells_runs_apart(tmp_path):
    when = datetime.datetime(2026, 12, 1, 14, 5).timestamp()
    info = store.RunInfo(
        path=tmp_path, dataset="digits", state="done", updated=when, n_train=1438,
        recipe="mlp", test_accuracy=0.9, version_ok=True, name="my run", preset="tiny",
        runs=5, epochs=30, noise=0.1, created=when,
    )  # fmt: skip
    assert info.title == "my run · digits · mlp 5×30 · tiny · 10% noise · 2026-12-01 14:05"
    bare = store.RunInfo(tmp_path, "digits", "done", when, None, "mlp", None, True)
    assert store.run_title(bare) == "digits · mlp · 2026-12-01 14:05"


def test_meta_merges_and_a_new_name_renames(tmp_path):
    rd = store.RunDir(tmp_path / "fp" / "key")
    rd.write_meta(name="first", preset="tiny")
    rd.write_meta(name=None, preset="tiny")  # a rerun without --name keeps the name
    assert rd.read_meta() == {"name": "first", "preset": "tiny"}
    rd.write_meta(name="second")
    assert rd.read_meta()["name"] == "second"
    rd.meta_file.write_text("{not json")
    assert rd.read_meta() == {}  # a damaged label costs the label, never the run
