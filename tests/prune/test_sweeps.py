"""What a sweep is and what it shows: trials with their baselines, the validation split, stored
correctness, and the paired differences to random with bootstrap CIs (checked against a plain
index-resampling bootstrap and against the normal approximation)."""

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
    paired_bootstrap,
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


# --- the paired bootstrap ----------------------------------------------------------------------


def _naive_bootstrap(a, b, n_boot, seed, level=0.95):
    """Independent implementation: resample seed and example indices, average the gathered grid."""
    rng = np.random.default_rng(seed)
    d = a.astype(float) - b.astype(float)
    n_seeds, n = d.shape
    reps = []
    for _ in range(n_boot):
        s = rng.integers(0, n_seeds, size=n_seeds)
        m = rng.integers(0, n, size=n)
        reps.append(d[np.ix_(s, m)].mean())
    return np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])


def test_paired_bootstrap_agrees_with_a_plain_resampling_bootstrap():
    rng = np.random.default_rng(1)
    base = rng.random((5, 300)) < 0.9  # (S, M) random's correctness
    rule = base.copy()
    flip = rng.random((5, 300)) < 0.08
    rule[flip] = ~rule[flip]
    rule[3] = rng.random(300) < 0.97  # one seed unlike the others: seed variance matters
    diff, low, high = paired_bootstrap(rule, base, n_boot=4000)
    assert diff == pytest.approx(rule.mean() - base.mean(), abs=1e-12)
    naive = _naive_bootstrap(rule, base, 4000, seed=7)
    assert low == pytest.approx(naive[0], abs=0.004) and high == pytest.approx(naive[1], abs=0.004)
    assert low < diff < high


def test_one_seed_ci_is_the_normal_interval_of_a_paired_mean():
    """With one seed only examples are resampled: half-width ~ 1.96 sd(d) / sqrt(M)."""
    rng = np.random.default_rng(2)
    a = rng.random((1, 2000)) < 0.85
    b = rng.random((1, 2000)) < 0.80
    diff, low, high = paired_bootstrap(a, b)
    d = a[0].astype(float) - b[0].astype(float)
    half = 1.96 * d.std() / np.sqrt(d.shape[0])
    assert (high - low) / 2 == pytest.approx(half, rel=0.08)
    assert (low + high) / 2 == pytest.approx(diff, abs=0.003)


def test_identical_trials_differ_by_exactly_zero():
    same = np.random.default_rng(3).random((3, 50)) < 0.5
    assert paired_bootstrap(same, same) == (0.0, 0.0, 0.0)
    assert indistinguishable(0.0, 0.0) and indistinguishable(-0.01, 0.02)
    assert not indistinguishable(0.001, 0.02) and not indistinguishable(-0.03, -0.001)


def test_paired_bootstrap_is_deterministic():
    rng = np.random.default_rng(4)
    a, b = rng.random((2, 3, 80)) < 0.8
    assert paired_bootstrap(a, b) == paired_bootstrap(a, b)


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
    summary = sweep_summary(_frame(), n_boot=500)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    test = summary[summary["split"] == "test"].set_index(["rule", "fraction"])
    row = test.loc[("offset", 0.4)]
    assert row["seeds"] == 2 and row["n_kept"] == 40
    assert row["accuracy_mean"] == pytest.approx(0.95) and row["accuracy_std"] == pytest.approx(
        0.05
    )
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
    only = sweep_summary(_frame(), ["test"], fractions=[0.6], n_boot=50)
    assert only["fraction"].tolist() == [0.6] and only["split"].tolist() == ["test"]
    assert sweep_summary(pd.DataFrame()).empty


def test_format_summary_marks_intervals_that_contain_zero():
    text = format_summary(sweep_summary(_frame(), ["test"], n_boot=500))
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
