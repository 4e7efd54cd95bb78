"""A run of several model families (`--recipe mlp,cnn`): each family its own ordinary run,
their runs side by side and their out-of-fold probabilities averaged
(scoring/training/families.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cleanlab.rank import get_label_quality_scores

from scoring import store
from scoring.__main__ import main
from scoring.config import ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.scores import compute
from scoring.training import families
from scoring.training.pipeline import score
from scoring.training.results import RUN_ARRAYS
from tests.conftest import digits_config

SCORES = ("el2n", "aum", "cl_quality", "consensus")
RUNS, FOLDS = 2, 2


def _config(recipe: str) -> ScoreConfig:
    """200 digits, 2 runs x 2 epochs, 2 folds, a few scores: seconds per family."""
    return digits_config(200, train=TrainConfig(recipe=recipe, runs=RUNS, epochs=2), scores=SCORES)


@pytest.fixture(scope="module")
def combined(tmp_path_factory) -> tuple[Path, Path]:
    """(cache, run folder) of one finished `mlp,cnn` run."""
    cache = tmp_path_factory.mktemp("families")
    return cache, score(_config("mlp,cnn"), cache, show_progress=False)


def _member(cache: Path, run: Path, recipe: str) -> store.RunDir:
    """The family's own run folder: that of `--recipe <recipe>` alone."""
    key = families.member_config(_config("mlp,cnn"), recipe).key()
    assert key == _config(recipe).key()  # the single-recipe run's key, so it is reused
    return store.RunDir(run.parent / key)


def _oof(rd: store.RunDir) -> np.ndarray:
    """A single run's out-of-fold probabilities (N, K) from its folds."""
    folds = [rd.read_fold(k) for k in range(FOLDS)]
    oof = np.zeros((sum(len(f["index"]) for f in folds), folds[0]["probs"].shape[1]), np.float32)
    for f in folds:
        oof[f["index"]] = f["probs"]
    return oof


@pytest.mark.parametrize(
    "recipe, message",
    [
        ("mlp,mlp", "names mlp twice"),
        ("auto,mlp", "auto picks one recipe"),
        ("mlp,", "empty name"),
        ("mlp, cnn", "a space"),
        ("mlp,nope", "unknown recipe 'nope'"),
        ("mlp,tfidf", "does not fit image data"),
    ],
)
def test_bad_recipe_lists_are_refused_with_one_line_and_no_folder(
    recipe, message, cache_dir, capsys
):
    with pytest.raises(InputError, match=message):
        score(_config(recipe), cache_dir, show_progress=False)
    code = main(["score", "--dataset", "digits", "--recipe", recipe, "--cache-dir", str(cache_dir)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert "expected" in err or "use" in err  # says what was expected
    assert not list(store.iter_run_dirs(cache_dir))  # no run folder for bad input


def test_each_family_is_its_own_single_recipe_run(combined, tmp_path):
    cache, run = combined
    rd = store.RunDir(run)
    for f, recipe in enumerate(("mlp", "cnn")):
        member = _member(cache, run, recipe)
        assert store.read_status(member.path)["state"] == "done"
        assert score(_config(recipe), cache, show_progress=False) == member.path  # reused
        for r in range(RUNS):
            ours, theirs = rd.read_run(f * RUNS + r), member.read_run(r)
            assert ours.keys() == theirs.keys()
            for name in ours:
                np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    # And a fresh single-recipe run in another cache trains the very same runs.
    alone = store.RunDir(score(_config("mlp"), tmp_path / "alone", show_progress=False))
    for r in range(RUNS):
        for name in RUN_ARRAYS:
            if name in alone.read_run(r):
                np.testing.assert_array_equal(rd.read_run(r)[name], alone.read_run(r)[name])


def test_cl_quality_is_cleanlab_on_the_averaged_out_of_fold_probabilities(combined):
    cache, run = combined
    mean = (_oof(_member(cache, run, "mlp")) + _oof(_member(cache, run, "cnn"))) / 2
    labels = store.RunDir(run).read_split().labels
    expected = get_label_quality_scores(labels, mean)
    frame = store.read_scores(run)
    np.testing.assert_allclose(frame["cl_quality"], expected, rtol=1e-6)
    single = store.read_scores(_member(cache, run, "mlp").path)["cl_quality"]
    assert not np.allclose(frame["cl_quality"], single)  # not one family's alone
    predictions = store.RunDir(run).read_predictions()
    np.testing.assert_array_equal(predictions["oof_suggested"], mean.argmax(1))


@pytest.mark.parametrize("key", ["el2n", "aum", "consensus"])
def test_dynamics_scores_average_every_run_of_every_family(combined, key):
    cache, run = combined
    members = [_member(cache, run, r) for r in ("mlp", "cnn")]
    recorded = [m.read_run(r) for m in members for r in range(RUNS)]  # 4 runs, family by family
    labels = members[0].read_split().labels
    shared = {"labels": labels, "oof_probs": (_oof(members[0]) + _oof(members[1])) / 2}
    per_run = np.stack(
        [
            compute(key, {**shared, **{n: r[n][None] for n in RUN_ARRAYS if n in r}}).per_run[0]
            for r in recorded
        ]
    )  # (F * R, N)
    if key != "consensus":  # a per-example function of each run: stacking changes nothing
        stacked = {
            **shared,
            **{
                n: np.stack([r[n] for r in recorded])
                for n in ("probs_early", "logit_given", "logit_other")
            },
        }
        np.testing.assert_allclose(compute(key, stacked).per_run, per_run, rtol=1e-6)
    frame, per_frame = store.read_scores(run), store.RunDir(run).read_scores_per_run()
    np.testing.assert_allclose(frame[key], per_run.mean(axis=0), rtol=1e-6)
    cols = [f"{key}__run{r}" for r in range(2 * RUNS)]
    np.testing.assert_allclose(per_frame[cols].to_numpy().T, per_run, rtol=1e-6)


def test_summary_gives_each_family_and_the_averaged_held_out_accuracy(combined):
    cache, run = combined
    rd = store.RunDir(run)
    summary, config = rd.read_summary(), rd.read_config()
    assert [f["recipe"] for f in summary["families"]] == ["mlp", "cnn"]
    for family in summary["families"]:
        member = _member(cache, run, family["recipe"])
        assert family["run_key"] == member.path.name and family["runs"] == RUNS
        own = member.read_summary()["test_accuracy_mean"]
        assert family["test_accuracy_mean"] == pytest.approx(own)
    test_probs = np.mean([rd.read_run(r)["test_probs"] for r in range(2 * RUNS)], axis=0)
    test_labels = rd.read_split().test_labels
    accuracy = (test_probs.argmax(1) == test_labels).mean()
    assert summary["test_accuracy_mean"] == pytest.approx(accuracy)
    assert len(summary["test_accuracy"]) == 2 * RUNS
    held = rd.read_heldout()
    np.testing.assert_array_equal(held["suggested"], test_probs.argmax(1))
    assert config["recipe"]["name"] == "mlp,cnn"
    assert [f["name"] for f in config["recipe"]["families"]] == ["mlp", "cnn"]
    assert not rd.inputs_file.exists()  # each family's run keeps its own inputs


def test_repair_and_resume_give_the_same_scores(combined):
    cache, run = combined
    rd = store.RunDir(run)
    before = store.read_scores(run)
    member = _member(cache, run, "cnn")
    # A damaged copy of a family's run here: linked again from the family's intact run.
    rd.run_file(3).unlink()
    rd.run_file(3).write_bytes(b"garbage")
    assert score(_config("mlp,cnn"), cache, show_progress=False) == run
    assert not rd.check(deep=True)
    pd.testing.assert_frame_equal(store.read_scores(run), before)
    # Damage in place reaches the family's run too (a hard link): both are repaired.
    rd.fold_file(3).write_bytes(b"garbage")
    assert member.check(deep=True)
    score(_config("mlp,cnn"), cache, show_progress=False)
    assert not rd.check(deep=True) and not member.check(deep=True)
    pd.testing.assert_frame_equal(store.read_scores(run), before)
    # Killed before it was done (no status, results gone): the same command resumes.
    rd.status_file.unlink()
    rd.scores_file.unlink()
    shutil.rmtree(rd.cv_dir)
    score(_config("mlp,cnn"), cache, show_progress=False)
    assert store.read_status(run)["state"] == "done"
    pd.testing.assert_frame_equal(store.read_scores(run), before)


def test_list_suspects_and_export_work_and_a_sweep_names_the_families(combined, capsys):
    cache, run = combined
    assert main(["list", "--cache-dir", str(cache)]) == 0
    assert "mlp,cnn" in capsys.readouterr().out
    assert main(["suspects", "--run", str(run), "--top", "3", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4  # header + 3
    out = run.parent / "export.parquet"
    args = ["export", "--run", str(run), "--rule", "all", "--format", "parquet"]
    assert main([*args, "--out", str(out)]) == 0
    assert len(pd.read_parquet(out)) == len(store.read_scores(run)) + len(
        store.RunDir(run).read_split().test_ids
    )
    capsys.readouterr()
    sweep = ["sweep", "--run", str(run), "--score", "el2n", "--rule", "hardest"]
    code = main([*sweep, "--fractions", "0.5", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    fingerprint = run.parent.name
    for recipe in ("mlp", "cnn"):
        assert f"{recipe} ({fingerprint}/{_member(cache, run, recipe).path.name})" in err


def test_a_config_file_round_trips_a_list_of_families():
    config = _config("mlp,cnn")
    again = ScoreConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.key() == config.key()
    single = dataclasses.replace(config, train=dataclasses.replace(config.train, recipe="mlp"))
    assert single.key() != config.key()
