"""Pruning sweeps on a tiny real digits run: trials, baselines, schedules, caching, resume."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.config import DataConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.prune.select import SelectionConfig
from scoring.prune.sweeps import (
    SUMMARY_COLUMNS,
    SweepConfig,
    correctness,
    trials_of,
    unpack_correct,
    validation_rows,
)
from scoring.training.pipeline import score
from scoring.training.retrain import sweep
from tests.conftest import digits_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cfg = digits_config(noise_fraction=0.1, scores=("el2n", "aum", "cl_issue"))
    return score(cfg, tmp_path_factory.mktemp("retrain_cache"), show_progress=False)


def _config(**kw) -> SweepConfig:
    base = dict(
        selection=SelectionConfig(rule="hardest", fraction=1.0, score="el2n"),
        fractions=(0.5, 1.0),
        seeds=2,
    )
    base.update(kw)
    return SweepConfig(**base)


def test_trials_cover_rule_and_random_at_every_fraction_and_seed():
    trials = trials_of(_config(fractions=(0.2, 0.4, 0.6), seeds=3))
    assert len(trials) == 2 * 3 * 3
    assert {t.rule for t in trials} == {"hardest", "random"}
    assert {(t.fraction, t.seed) for t in trials if t.rule == "random"} == {
        (f, s) for f in (0.2, 0.4, 0.6) for s in range(3)
    }
    assert all(t.score is None for t in trials if t.rule == "random")
    only_random = trials_of(_config(selection=SelectionConfig(rule="random", fraction=1.0)))
    assert {t.rule for t in only_random} == {"random"} and len(only_random) == 4


def _pool(run_dir) -> int:
    """Training rows in play: the run's, less the validation split."""
    labels = store.read_scores(run_dir)["label"].to_numpy()
    return len(labels) - len(validation_rows(labels))


def test_sweep_step_matched_trials_against_random(run_dir):
    out = sweep(run_dir, _config(), show_progress=False)
    frame = pd.read_parquet(out)
    assert len(frame) == 8 and set(frame["rule"]) == {"hardest", "random"}
    n = _pool(run_dir)
    assert set(frame["n_kept"]) == {round(0.5 * n), n}
    assert frame["accuracy"].between(0, 1).all() and frame["val_accuracy"].between(0, 1).all()
    assert frame["steps"].nunique() == 1  # same optimizer steps whatever the fraction kept
    assert {c for c in frame.columns if c.startswith("acc_")} == {f"acc_{d}" for d in range(10)}
    assert store.read_status(out.parent)["state"] == "done"


def test_validation_rows_are_never_selected_nor_trained_on(run_dir, monkeypatch):
    import scoring.training.retrain as retrain

    plans, trained = [], []
    real_plan, real_fit = retrain.plan_selection, retrain.fit

    def planned(*args, **kwargs):
        plans.append(real_plan(*args, **kwargs))
        return plans[-1]

    def fitted(model, x, *args, **kwargs):
        trained.append(len(x))
        return real_fit(model, x, *args, **kwargs)

    monkeypatch.setattr(retrain, "plan_selection", planned)
    monkeypatch.setattr(retrain, "fit", fitted)
    cfg = _config(fractions=(0.9,), seeds=1, selection=SelectionConfig("random", 1.0))
    frame = pd.read_parquet(sweep(run_dir, cfg, show_progress=False))
    labels = store.read_scores(run_dir)["label"].to_numpy()
    held = validation_rows(labels)
    (plan,) = plans
    assert not np.isin(held, plan.rows).any()  # never in play, so never selected
    assert plan.n_excluded == len(held) and len(plan.rows) == len(labels) - len(held)
    assert trained == [plan.n_kept] == [round(0.9 * (len(labels) - len(held)))]
    (row,) = frame.itertuples()
    assert row.n_val == len(held) and row.n_test == len(
        store.RunDir(run_dir).read_split().test_labels
    )
    assert unpack_correct(row.val_correct, row.n_val).mean() == pytest.approx(row.val_accuracy)
    assert unpack_correct(row.test_correct, row.n_test).mean() == pytest.approx(row.accuracy)


def test_summary_parquet_holds_paired_differences_with_cis(run_dir):
    cfg = _config(
        selection=SelectionConfig("offset", 1.0, score="el2n", offset=0.1), fractions=(0.5,)
    )
    out = sweep(run_dir, cfg, show_progress=False)
    frame = pd.read_parquet(out)
    assert set(frame["rule"]) == {"offset", "random", "offset_random"}  # the honest baseline
    summary = pd.read_parquet(store.SweepDir(out.parent).summary_file)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert len(summary) == 2 * 3  # (validation, test) x (offset, random, offset_random)
    for split in ("validation", "test"):
        row = summary[(summary["split"] == split) & (summary["rule"] == "offset")].iloc[0]
        rule = frame[frame["rule"] == "offset"].sort_values("seed")
        rand = frame[frame["rule"] == "random"].sort_values("seed")
        base = frame[frame["rule"] == "offset_random"].sort_values("seed")
        by_hand = (correctness(rule, split).mean(1) - correctness(rand, split).mean(1)).mean()
        assert row["diff_vs_random"] == pytest.approx(by_hand, abs=1e-12)
        assert row["ci_low"] <= row["diff_vs_random"] <= row["ci_high"]
        by_hand = (correctness(rule, split).mean(1) - correctness(base, split).mean(1)).mean()
        assert row["baseline"] == "offset_random"
        assert row["diff_vs_baseline"] == pytest.approx(by_hand, abs=1e-12)
        assert row["seeds"] == 2


def test_epoch_schedule_scales_steps_with_the_subset(run_dir):
    frame = pd.read_parquet(
        sweep(run_dir, _config(schedule="epochs", seeds=1), show_progress=False)
    )
    by_fraction = frame.groupby("fraction")["steps"].first()
    assert by_fraction[0.5] < by_fraction[1.0]


def test_trials_are_cached_and_shared_between_sweeps(run_dir):
    first = sweep(run_dir, _config(), show_progress=False)
    trial_files = sorted((run_dir / "sweeps" / "trials").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in trial_files]
    again = sweep(run_dir, _config(), show_progress=False)
    assert again == first
    subset = sweep(run_dir, _config(fractions=(0.5,)), show_progress=False)  # a new sweep key...
    assert subset != first and len(pd.read_parquet(subset)) == 4
    after = sorted((run_dir / "sweeps" / "trials").glob("*.json"))
    assert after == trial_files  # ...but no new trial was trained
    assert [p.stat().st_mtime_ns for p in after] == stamps


def test_a_crashed_sweep_resumes_trial_by_trial(run_dir, monkeypatch):
    import scoring.training.retrain as retrain

    real = retrain._run_trial
    calls = []

    def flaky(*args, **kwargs):
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        calls.append(1)
        return real(*args, **kwargs)

    cfg = _config(
        fractions=(0.3, 0.6),
        seeds=2,
        selection=SelectionConfig(rule="easiest", fraction=1.0, score="aum"),
    )
    monkeypatch.setattr(retrain, "_run_trial", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sweep(run_dir, cfg, show_progress=False)
    folder = run_dir / "sweeps" / cfg.key(store.read_json(run_dir / "config.json")["key"])
    assert store.read_status(folder)["state"] == "failed"
    assert len(pd.read_parquet(folder / "trials.parquet")) == 3  # what finished is kept
    monkeypatch.setattr(retrain, "_run_trial", real)
    counted = []
    monkeypatch.setattr(retrain, "_run_trial", lambda *a, **k: counted.append(1) or real(*a, **k))
    out = sweep(run_dir, cfg, show_progress=False)
    assert len(pd.read_parquet(out)) == 8 and len(counted) == 5  # only the missing trials


def test_decisions_drop_rows_from_every_trial(run_dir):
    from scoring.read import decisions

    ids = store.read_scores(run_dir)["id"].to_numpy()
    for i in ids[:10]:
        decisions.append(run_dir, int(i), "drop")
    cfg = _config(apply_decisions=True, fractions=(1.0,), seeds=1)
    frame = pd.read_parquet(sweep(run_dir, cfg, show_progress=False))
    labels = store.read_scores(run_dir)["label"].to_numpy()
    held = set(ids[validation_rows(labels)].tolist())
    assert set(frame["n_kept"]) == {_pool(run_dir) - len(set(ids[:10].tolist()) - held)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(fractions=(0.0, 0.5)), r"fractions must lie in \(0, 1\]"),
        (dict(fractions=()), "at least one fraction"),
        (dict(seeds=0), "--seeds must be at least 1"),
        (dict(schedule="minutes"), "--schedule must be one of"),
        (
            dict(selection=SelectionConfig(rule="hardest", fraction=1.0, score="forgetting")),
            "has no score 'forgetting'",
        ),
    ],
)
def test_bad_sweeps_are_refused(run_dir, change, message):
    with pytest.raises(InputError, match=message):
        sweep(run_dir, dataclasses.replace(_config(), **change), show_progress=False)


def test_random_baselines_are_shared_whatever_the_rule_parameters():
    a = trials_of(
        _config(
            selection=SelectionConfig(
                rule="hardest", fraction=1, score="el2n", normalization="class", temperature=3.0
            )
        )
    )
    b = trials_of(
        _config(selection=SelectionConfig(rule="softmax", fraction=1, score="aum", temperature=0.5))
    )
    random_a = [t for t in a if t.rule == "random"]
    random_b = [t for t in b if t.rule == "random"]
    assert random_a == random_b
    hardest = [t for t in a if t.rule == "hardest"][0]
    assert hardest.normalization == "class" and hardest.temperature == 1.0  # unused: reset


def test_sweep_cli_prints_the_trials_parquet(run_dir, capsys):
    from scoring.__main__ import main

    args = [
        "sweep",
        "--run",
        str(run_dir),
        "--score",
        "el2n",
        "--rule",
        "hardest",
        "--fractions",
        "0.5",
        "--seeds",
        "1",
        "--quiet",
    ]
    assert main(args) == 0
    printed = capsys.readouterr()
    out = printed.out.strip().splitlines()[-1]
    frame = pd.read_parquet(out)
    assert sorted(frame["rule"]) == ["hardest", "random"]
    # The confidence intervals, as a small table on stderr.
    assert "vs random [95% CI]" in printed.err and "indistinguishable" in printed.err
    assert "too few seeds for an interval" in printed.err  # --seeds 1: a difference, no CI
    assert any(line.split()[:2] == ["test", "hardest"] for line in printed.err.splitlines())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rule", "hardest", "--score", "el2n", "--fractions", "0.5,x"], "--fractions"),
        (
            ["--rule", "offset", "--score", "el2n", "--offset", "0.6", "--fractions", "0.5"],
            "offset",
        ),
        (["--rule", "hardest", "--fractions", "0.5"], "score"),
        (["--rule", "sideways", "--score", "el2n"], "sideways"),
    ],
)
def test_sweep_cli_refuses_bad_input(run_dir, capsys, extra, message):
    from scoring.__main__ import main

    assert main(["sweep", "--run", str(run_dir), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def _image_folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 60, size=(8, 8, 3)) + 60 * c
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root


def test_retraining_reads_the_run_folder_not_the_source(tmp_path, capsys):
    """Inputs come from the run's inputs.npz; an older run without one re-reads the source,
    and says which path it needs when that source has moved."""
    from scoring.__main__ import main

    source = _image_folder(tmp_path / "pets")
    cfg = ScoreConfig(
        data=DataConfig(source=str(source)),
        train=TrainConfig(runs=1, epochs=2),
        scores=("el2n", "loss"),
    )
    run = score(cfg, tmp_path / "cache", show_progress=False)
    rd = store.RunDir(run)
    sweep_cfg = _config(fractions=(1.0,), seeds=1, selection=_config().selection)
    moved = source.rename(tmp_path / "moved")
    kept = pd.read_parquet(sweep(run, sweep_cfg, show_progress=False))  # no source needed

    # A run scored before runs kept their inputs: the source again, from where it was.
    rd.inputs_file.unlink()
    store.write_status(run, "done")  # older runs' status lists no files (no manifest)
    shutil.rmtree(rd.trials_dir)
    with pytest.raises(InputError, match=f"scored before runs kept.*{source} is not there"):
        sweep(run, dataclasses.replace(sweep_cfg, seeds=2), show_progress=False)
    args = ["sweep", "--run", str(run), "--rule", "hardest", "--score", "el2n"]
    assert main([*args, "--fractions", "1.0", "--seeds", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(source) in err and "Traceback" not in err
    moved.rename(source)
    again = pd.read_parquet(sweep(run, sweep_cfg, show_progress=False))
    pd.testing.assert_frame_equal(again, kept)  # the same tensors either way
