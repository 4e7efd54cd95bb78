"""consensus: the hand-computed combination, its window rule, and that it never sees the mask."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scoring import store
from scoring.data.noise import noise_detection
from scoring.scores import REGISTRY
from scoring.scores.consensus import (
    CONSENSUS_NEEDS,
    MAX_NOISE_SHARE,
    _combine,
    consensus,
    memorization_epoch,
    noise_share,
    skill,
    window,
)
from tests.conftest import digits_config

# A run of T = 3 epochs over N = 4 examples. Training accuracy 0.25, 0.5, 1.0.
CORRECT = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
LOGIT_GIVEN = np.array([[2.0, 0, 1, 0], [4, 2, 1, 0], [0, 10, 10, 10]])
LOGIT_OTHER = np.array([[0.0, 1, 0, 1], [0, 0, 2, 1], [5, 0, 0, 0]])
PROB_GIVEN = np.array([[0.9, 0.2, 0.5, 0.3], [0.95, 0.6, 0.4, 0.1], [0.1, 0.99, 0.99, 0.99]])


def test_window_ends_where_accuracy_reaches_one_minus_the_noise_share():
    assert memorization_epoch(CORRECT, 0.5) == 2  # 0.5 >= 1 - 0.5 first at epoch 2
    assert memorization_epoch(CORRECT, 0.75) == 1
    assert memorization_epoch(CORRECT, 0.0) == 3  # only the last epoch fits every label
    assert memorization_epoch(CORRECT[:2], 0.1) == 2  # never reached: every epoch


def test_window_skips_epoch_one_unless_it_is_all_there_is():
    assert window(CORRECT, 0.5) == slice(1, 2)  # epoch 2 only
    assert window(CORRECT, 0.75) == slice(1, 2)  # t* = 1: still epoch 2, never empty
    assert window(CORRECT, 0.0) == slice(1, 3)  # epochs 2..3
    assert window(CORRECT[:1], 0.0) == slice(0, 1)  # a one-epoch run keeps its epoch


def test_combination_by_hand():
    # Noise share 0.5 -> t* = 2 -> epoch 2 alone. Margins (given - other) [4, 2, -1, -1]:
    # ranks of -margin [1, 2, 3.5, 3.5]. Confidence [0.95, 0.6, 0.4, 0.1]: ranks of
    # -confidence [1, 2, 3, 4]. Weight 0.5: [1, 2, 3.25, 3.75] / 4. Epoch 1 (in which
    # example 2 looks cleaner than example 3) and epoch 3 (which reverses it) are not read.
    args = (CORRECT, LOGIT_GIVEN, LOGIT_OTHER, PROB_GIVEN)
    np.testing.assert_allclose(_combine(*args, 0.5, 0.5), [0.25, 0.5, 0.8125, 0.9375])
    np.testing.assert_allclose(_combine(*args, 0.5, 1.0), [0.25, 0.5, 0.875, 0.875])  # AUM
    np.testing.assert_allclose(_combine(*args, 0.5, 0.0), [0.25, 0.5, 0.75, 1.0])  # conf.
    # Share 0 -> epochs 2..3: margins [-0.5, 6, 4.5, 4.5], ranks of -margin [4, 1, 2.5, 2.5];
    # confidence [0.525, 0.795, 0.695, 0.545], ranks of -confidence [4, 1, 2, 3].
    # Weight 0.25: (0.25 [4, 1, 2.5, 2.5] + 0.75 [4, 1, 2, 3]) / 4 = [4, 1, 2.125, 2.875] / 4.
    np.testing.assert_allclose(_combine(*args, 0.0, 0.25), [1.0, 0.25, 0.53125, 0.71875])
    # One epoch: margins [2, -1, 1, -1] -> ranks [1, 3.5, 2, 3.5]; confidence
    # [0.9, 0.2, 0.5, 0.3] -> ranks [1, 4, 2, 3]; weight 0.5 -> [1, 3.75, 2, 3.25] / 4.
    one = tuple(a[:1] for a in args)
    np.testing.assert_allclose(_combine(*one, 0.0, 0.5), [0.25, 0.9375, 0.5, 0.8125])


def test_skill_is_chance_corrected_out_of_fold_accuracy():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    oof = np.array([[0.9, 0.1]] * 3 + [[0.05, 0.95]] + [[0.1, 0.9]] * 3 + [[0.95, 0.05]])
    assert skill(labels, oof) == pytest.approx(0.5)  # 6 of 8 right: (0.75 - 0.5) / 0.5
    three = np.eye(3)[[0, 1, 2, 1, 2, 0]]  # 3 classes, 2 of 6 right = chance: 0
    assert skill(np.array([0, 1, 0, 0, 1, 2]), three) == pytest.approx(0.0, abs=1e-12)
    assert skill(np.array([0, 1]), np.eye(2)[[1, 0]]) == 0.0  # below chance: clipped at 0
    assert skill(np.array([0, 1, 2]), np.eye(3)) == 1.0


def test_public_function_uses_cleanlabs_noise_share_and_the_skill_weight():
    """Two runs, eight examples, two classes; the out-of-fold model contradicts the labels of
    two examples with confidence, so cleanlab counts 2 of 8 wrong (share 0.25) and the
    out-of-fold accuracy is 6/8 (weight 0.5)."""
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    oof = np.array([[0.9, 0.1]] * 3 + [[0.05, 0.95]] + [[0.1, 0.9]] * 3 + [[0.95, 0.05]])
    assert noise_share(labels, oof) == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    correct = rng.random((2, 5, 8)) < np.linspace(0.3, 1.0, 5)[None, :, None]
    lg, lo = rng.normal(size=(2, 2, 5, 8))
    pg = rng.random((2, 5, 8))
    out = consensus(
        labels=labels, correct=correct, logit_given=lg, logit_other=lo, prob_given=pg, oof_probs=oof
    )
    assert out.shape == (2, 8)
    for r in range(2):
        np.testing.assert_allclose(out[r], _combine(correct[r], lg[r], lo[r], pg[r], 0.25, 0.5))


def test_noise_share_is_capped():
    # An out-of-fold model that contradicts every label is not evidence that most are wrong.
    labels = np.array([0, 1] * 10)
    oof = np.eye(2)[1 - labels] * 0.9 + 0.05
    assert noise_share(labels, oof) == MAX_NOISE_SHARE


def test_registry_entry():
    score = REGISTRY["consensus"]
    assert score.needs == CONSENSUS_NEEDS and score.per_run and score.higher_is_harder
    assert not {"noisy", "true_labels"} & set(score.needs)


@pytest.fixture(scope="module")
def noisy_digits(tmp_path_factory):
    """600 digits, 20% uniform noise (seed 0), 2 runs x 10 epochs, 2 folds: about 3 s."""
    from scoring.training.pipeline import score

    cache = tmp_path_factory.mktemp("consensus_cache")
    config = digits_config(
        600,
        runs=2,
        epochs=10,
        noise_fraction=0.2,
        noise_seed=0,
        scores=("consensus", "aum", "confidence", "cl_quality"),
    )
    return config, cache, score(config, cache, show_progress=False)


@pytest.mark.parametrize("noise_seed", [0, 1, 2])
def test_meets_the_floor_on_noisy_digits(noisy_digits, noise_seed, tmp_path):
    """Measured (issue 17, consensus version 2) on this setting: consensus 0.9939 / 0.9966 /
    0.9937 on noise seeds 0 / 1 / 2, cleanlab 0.9839 on seed 0. Each seed must clear 0.985
    (a margin of about 0.009 under the lowest measured) and stay within 0.003 of cleanlab or
    above it: a consensus that lost its edge on one seed fails here."""
    from scoring.training.pipeline import score

    config, cache, path = noisy_digits
    if noise_seed:
        noise = dataclasses.replace(config.noise, seed=noise_seed)
        path = score(dataclasses.replace(config, noise=noise), tmp_path, show_progress=False)
    frame = store.RunDir(path).read_scores()
    noisy = frame["noisy"].to_numpy(bool)
    auroc = {
        key: noise_detection(frame[key].to_numpy(), noisy, REGISTRY[key].higher_is_harder)[
            "noise_auroc"
        ]
        for key in ("consensus", "cl_quality")
    }
    assert auroc["consensus"] >= 0.985, auroc
    assert auroc["consensus"] >= auroc["cl_quality"] - 0.003, auroc


def test_the_truth_behind_the_given_labels_changes_nothing(noisy_digits, monkeypatch):
    """The whole pipeline again with the same *given* labels but other true labels and so
    another noise mask: every recorded run, every cross-fit fold, consensus and the suspect
    list are identical. It fails if any step trains or scores on the truth (e.g. a cross-fit
    on the clean labels), which recomputing scores alone could not see."""
    from scoring.read.suspects import rank_suspects
    from scoring.read.views import load_run
    from scoring.training import steps
    from scoring.training.pipeline import score

    config, cache, path = noisy_digits
    original = steps._load

    def other_truth(config, cache_dir):
        ds, given, noisy = original(config, cache_dir)
        rng = np.random.default_rng(11)
        truth = ds.train.labels.copy()
        clean = rng.choice(np.flatnonzero(~noisy), 40, replace=False)
        truth[clean] = (given[clean] + 1) % 10  # these now count as flipped
        healed = rng.choice(np.flatnonzero(noisy), 20, replace=False)
        truth[healed] = given[healed]  # and these as clean
        train = dataclasses.replace(ds.train, labels=truth)
        return dataclasses.replace(ds, train=train), given, given != truth

    monkeypatch.setattr(steps, "_load", other_truth)
    other = score(config, cache / "other_truth", show_progress=False)
    a, b = store.RunDir(path), store.RunDir(other)
    assert (a.read_scores()["noisy"] != b.read_scores()["noisy"]).sum() == 60
    for r in range(config.train.runs):
        ra, rb = a.read_run(r), b.read_run(r)
        for name in ra:
            if np.asarray(ra[name]).dtype.kind in "fiub" and "second" not in name:
                np.testing.assert_array_equal(ra[name], rb[name], err_msg=f"run {r}: {name}")
    for f in range(config.cv_folds):
        np.testing.assert_array_equal(a.read_fold(f)["probs"], b.read_fold(f)["probs"])
    for key in ("consensus", "aum", "confidence", "cl_quality"):
        np.testing.assert_array_equal(a.read_scores()[key], b.read_scores()[key], err_msg=key)
    top = [rank_suspects(load_run(p), "consensus", 50)["id"].tolist() for p in (path, other)]
    assert top[0] == top[1]


def test_summary_records_the_noise_kind_next_to_the_fraction(noisy_digits):
    """summary.json says which noise a run's detection figures were measured on."""
    _, _, path = noisy_digits
    rd = store.RunDir(path)
    n_noisy = int(rd.read_scores()["noisy"].sum())
    assert rd.read_summary()["noise"] == {"fraction": 0.2, "kind": "uniform", "n_noisy": n_noisy}
