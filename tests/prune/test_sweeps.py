"""What a sweep is and what it shows: trials with their baselines, the validation split, stored
correctness, and the paired differences to random with their CIs (the interval itself:
`test_intervals.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.prune.select import SelectionConfig
from scoring.prune.sweeps import (
    SUMMARY_COLUMNS,
    TRIAL_FORMAT,
    SweepConfig,
    cached_trials,
    correctness,
    format_summary,
    indistinguishable,
    pack_correct,
    sweep_summary,
    trial_key,
    trials_of,
    unpack_correct,
    validation_rows,
)

# --- trials and keys ---------------------------------------------------------------------------


def test_offset_sweeps_add_their_registry_baseline_at_the_same_settings():
    sel = SelectionConfig("offset", 1.0, score="el2n", offset=0.1, normalization="class")
    trials = trials_of(SweepConfig(sel, (0.3, 0.5), 2))
    assert len(trials) == 3 * 2 * 2
    baseline = [t for t in trials if t.rule == "offset_random"]
    assert {(t.fraction, t.seed) for t in baseline} == {(f, s) for f in (0.3, 0.5) for s in (0, 1)}
    # Same score, normalization and offset as the rule: random after the *same* offset.
    assert {(t.score, t.normalization, t.offset) for t in baseline} == {("el2n", "class", 0.1)}
    hardest = trials_of(SweepConfig(SelectionConfig("hardest", 1.0, score="el2n"), (0.5,), 1))
    assert [t.rule for t in hardest] == ["hardest", "random"]  # no baseline but random


def test_trial_and_sweep_keys_carry_the_trial_format_and_validation_split(monkeypatch):
    import scoring.prune.sweeps as sweeps

    config = SweepConfig(SelectionConfig("hardest", 1.0, score="el2n"), (0.5,), 1)
    sel = trials_of(config)[0]
    before = trial_key("run", sel, config), config.key("run")
    monkeypatch.setitem(sweeps._TRIAL_SETUP, "format", TRIAL_FORMAT - 1)
    assert trial_key("run", sel, config) != before[0] and config.key("run") != before[1]
    monkeypatch.setitem(sweeps._TRIAL_SETUP, "format", TRIAL_FORMAT)
    monkeypatch.setitem(sweeps._TRIAL_SETUP, "validation", {"fraction": 0.2, "seed": 0})
    assert trial_key("run", sel, config) != before[0]


def test_validation_rows_are_seeded_and_stratified():
    labels = np.repeat(np.arange(4), [100, 50, 7, 1])  # (158,)
    rows = validation_rows(labels)
    assert np.array_equal(rows, validation_rows(labels)) and np.all(np.diff(rows) > 0)
    # round(0.1 * n) per class; the one-example class keeps its example for training
    assert np.bincount(labels[rows], minlength=4).tolist() == [10, 5, 1, 0]
    assert not np.array_equal(rows, validation_rows(labels, seed=1))
    assert validation_rows(labels, fraction=0.5).shape == (50 + 25 + 4 + 0,)


def test_correctness_round_trips_through_packed_bits():
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 8, 9, 1000):
        bits = rng.random(n) < 0.7
        text = pack_correct(bits)
        assert isinstance(text, str) and len(text) <= 4 * (n // 8 + 1) // 3 + 4
        assert np.array_equal(unpack_correct(text, n), bits)
    json.dumps({"c": pack_correct(np.ones(5, bool))})  # fits in a JSON record


# --- the summary -------------------------------------------------------------------------------


def _trial(rule, fraction, seed, test, val, score="s"):
    return {
        "rule": rule,
        "score": None if rule == "random" else score,
        "fraction": fraction,
        "seed": seed,
        "accuracy": float(np.mean(test)),
        "val_accuracy": float(np.mean(val)),
        "n_kept": round(fraction * 100),
        "test_correct": pack_correct(np.asarray(test, bool)),
        "n_test": len(test),
        "val_correct": pack_correct(np.asarray(val, bool)),
        "n_val": len(val),
    }


def _frame():
    """offset, offset_random and random at 0.4, two seeds; offset also at 0.6 (no random)."""
    ones, zeros = [1] * 10, [0] * 10
    rows = [
        _trial("offset", 0.4, 0, ones, [1, 1, 1, 0]),
        _trial("offset", 0.4, 1, ones[:9] + [0], [1, 1, 0, 0]),
        _trial("offset", 0.6, 0, ones, [1, 1, 1, 1]),
        _trial("random", 0.4, 0, ones[:8] + [0, 0], [1, 0, 0, 0]),
        _trial("random", 0.4, 1, ones[:8] + [0, 0], [1, 1, 0, 0]),
        _trial("random", 0.4, 2, zeros, zeros[:4]),  # seed 2: no partner, left out of the pairs
        _trial("offset_random", 0.4, 0, ones[:9] + [0], [1, 1, 0, 0]),
        _trial("offset_random", 0.4, 1, ones[:9] + [0], [1, 1, 0, 0]),
    ]
    return pd.DataFrame(rows)


def test_summary_pairs_by_seed_against_random_and_the_baseline():
    summary = sweep_summary(_frame())
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    test = summary[summary["split"] == "test"].set_index(["rule", "fraction"])
    row = test.loc[("offset", 0.4)]
    assert row["seeds"] == 2 and row["n_kept"] == 40
    # std over the seeds 1.0 and 0.9 with ddof 1: 0.1 / sqrt(2)
    assert row["accuracy_mean"] == pytest.approx(0.95)
    assert row["accuracy_std"] == pytest.approx(0.1 / np.sqrt(2))
    # paired with random's seeds 0 and 1 only: (1.0 - 0.8 + 0.9 - 0.8) / 2
    assert row["diff_vs_random"] == pytest.approx(0.15)
    assert row["ci_low"] <= 0.15 <= row["ci_high"]
    assert row["baseline"] == "offset_random"
    assert row["diff_vs_baseline"] == pytest.approx(0.05)  # (1.0 - 0.9 + 0.9 - 0.9) / 2
    assert np.isnan(test.loc[("offset", 0.6), "diff_vs_random"])  # random never ran there
    assert np.isnan(test.loc[("random", 0.4), "diff_vs_random"])
    assert test.loc[("random", 0.4), "seeds"] == 3
    # offset_random vs random: the denoising share of the gain; it has no baseline of its own
    assert test.loc[("offset_random", 0.4), "diff_vs_random"] == pytest.approx(0.1)
    assert pd.isna(test.loc[("offset_random", 0.4), "baseline"])
    val = summary[summary["split"] == "validation"].set_index(["rule", "fraction"])
    assert val.loc[("offset", 0.4), "accuracy_mean"] == pytest.approx(0.625)
    assert val.loc[("offset", 0.4), "diff_vs_random"] == pytest.approx(
        (0.75 - 0.25 + 0.5 - 0.5) / 2
    )
    only = sweep_summary(_frame(), ["test"], fractions=[0.6])
    assert only["fraction"].tolist() == [0.6] and only["split"].tolist() == ["test"]
    assert sweep_summary(pd.DataFrame()).empty


def test_format_summary_marks_intervals_that_contain_zero():
    text = format_summary(sweep_summary(_frame(), ["test"]))
    lines = text.splitlines()
    assert "vs random [95% CI]" in lines[0] and "vs offset_random [95% CI]" in lines[0]
    (offset,) = [
        line
        for line in lines
        if line.lstrip().startswith("test") and "0.4" in line and "offset (s)" in line
    ]
    assert "+0.1500 [" in offset
    assert "indistinguishable" in lines[-1]
    assert format_summary(sweep_summary(pd.DataFrame())) == "no finished trials"


def test_one_paired_seed_shows_its_difference_but_no_interval():
    """Two seeds per rule at 0.4 in `_frame`; keep seed 0 only: a difference, no CI, no std."""
    one = _frame()
    one = one[one["seed"] == 0]
    summary = sweep_summary(one, ["test"])
    row = summary.set_index(["rule", "fraction"]).loc[("offset", 0.4)]
    assert row["diff_vs_random"] == pytest.approx(0.2) and row["seeds"] == 1
    assert np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    assert np.isnan(row["accuracy_std"]) and not indistinguishable(row["ci_low"], row["ci_high"])
    text = format_summary(summary)
    (offset,) = [line for line in text.splitlines() if "offset (s)" in line and "0.4" in line]
    assert "+0.2000 (too few seeds for an interval)" in offset
    assert "1.0000 ±" not in offset and " ~" not in offset


def test_cached_trials_skip_records_of_another_format(tmp_path: Path):
    run = tmp_path / "run"
    trials = store.RunDir(run).trials_dir
    good = {**_trial("random", 0.5, 0, [1, 0], [1]), "format": TRIAL_FORMAT}
    good.update(selection=SelectionConfig("random", 0.5).to_dict(), apply_decisions=False)
    good.update(per_class_accuracy=[0.5, 0.5], steps=10, schedule="steps")
    old = {k: v for k, v in good.items() if k not in ("format", "val_correct", "val_accuracy")}
    store.write_json(trials / "a.json", good)
    store.write_json(trials / "b.json", old)
    frame = cached_trials(run, ["x", "y"])
    assert len(frame) == 1 and frame["val_accuracy"].tolist() == [1.0]
    assert correctness(frame, "test").tolist() == [[True, False]]


def test_decisions_made_in_evaluation_mode_are_refused_unless_allowed(app_cache):
    """A sweep applying decisions refuses those made with the injected noise's truth shown
    (issue 22), before any data loads; --allow-evaluation-decisions lets them through. The
    sweep key of a config that does not allow them is the one it always was."""
    from scoring.errors import InputError
    from scoring.prune.sweeps import SweepConfig
    from scoring.read import decisions
    from tests.conftest import digits_run, run_cli

    run = digits_run(app_cache)
    ids = decisions.decidable_ids(run)
    decisions.append(run, int(ids[0]), "drop")
    selection = SelectionConfig(rule="hardest", score="el2n", fraction=1.0)
    plain = SweepConfig(selection, apply_decisions=True)
    plain.check_decisions(run)  # no evaluation-mode decision yet
    assert "allow_evaluation" not in plain.to_dict()
    decisions.append(run, int(ids[1]), "drop", evaluation=True)
    with pytest.raises(InputError, match="1 of the 2 decisions in force were made in eval"):
        plain.check_decisions(run)
    SweepConfig(selection, apply_decisions=False).check_decisions(run)  # not applied: fine
    allowed = SweepConfig(selection, apply_decisions=True, allow_evaluation=True)
    allowed.check_decisions(run)
    assert allowed.key("k") != plain.key("k")
    assert SweepConfig.from_dict(allowed.to_dict()) == allowed
    args = ["sweep", "--run", str(run), "--rule", "hardest", "--score", "el2n"]
    out = run_cli(*args, "--apply-decisions", cache=app_cache)
    assert out.returncode == 2 and "--allow-evaluation-decisions" in out.stderr
