"""Every score's declared direction, checked on a real noisy digits run: one assertion per score.

The expectation of each score comes from the registry, not from a copied table of directions:
a label-dependent score must find the injected noise (AUROC >= 0.9 under its declared
direction, so a score pointing the wrong way fails), a label-free one (`Score.label_free`)
must sit in the chance band, because it reads no label and so cannot see which labels were
permuted. Three label-dependent scores are, by what they measure, not noise detectors, and
say so here with the reason the README gives (see *Known gaps* and the noise table):

- `grand`, taken at initialization (the default `--grad-at init`, Data Diet's choice for
  pruning): the untrained weights know nothing of the labels and p is near uniform, so the
  gradient norm barely depends on which label is given: chance.
- `vog`: the variance of the given label's input gradient over checkpoints measures how
  unsettled the model is about the *input*; on digits it is at chance.
- `variability`: mislabeled examples are consistently *not* learned, so their p(y) varies
  little across epochs: far below chance (data maps put them in "hard to learn").

The chance band is computed, not guessed: for each score, the 99.9% quantile of
|AUROC - 0.5| over 2,000 random relabelings of which examples count as noisy (the exact null
of a score independent of the noise, ties included).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from scoring import store
from scoring.config import DataConfig, NoiseConfig, ScoreConfig, TrainConfig
from scoring.scores import REGISTRY
from scoring.scores.registry import available
from scoring.training.grad_arrays import GRAD_ARRAYS
from scoring.training.pipeline import score

DETECTS, CHANCE, BELOW = "finds noise (AUROC >= 0.9)", "chance band", "below chance"
NOT_REVERSED = "not below the chance band"
# Label-free scores never see a label, so on uniform label noise their AUROC must sit in the
# chance band. GraNd and VoG are not claimed as noise detectors (the README says so): all
# that must hold is that their declared direction is not backwards; a better AUROC passes.
# Variability is documented as below chance (noisy examples are never learned: low spread).
NOT_NOISE_DETECTORS = {"grand": NOT_REVERSED, "vog": NOT_REVERSED, "variability": BELOW}
MIN_AUROC = 0.9
N_NULL, NULL_QUANTILE = 2000, 0.999


def expectation(key: str) -> str:
    """What a score's noise AUROC must show, from its registry entry."""
    if REGISTRY[key].label_free:
        return CHANCE
    return NOT_NOISE_DETECTORS.get(key, DETECTS)


# Runs without several annotators per example: the annotator scores have their own tests
# (tests/scores/test_annotator_scores.py).
PLAIN = available(list(REGISTRY), has_annotations=False)
EXPECTED = {key: expectation(key) for key in PLAIN}


def test_the_expectation_table_covers_the_registry():
    assert set(NOT_NOISE_DETECTORS) <= set(REGISTRY)
    assert not any(REGISTRY[k].label_free for k in NOT_NOISE_DETECTORS)  # one reason each
    assert {k for k, e in EXPECTED.items() if e == DETECTS} >= {"el2n", "aum", "cl_quality"}


# The gradient scores take most of a run's time: the unmarked check runs every other score;
# the slow one runs all of them (`make test-slow`).
GRADIENT = [k for k in PLAIN if set(REGISTRY[k].needs) & set(GRAD_ARRAYS)]
FAST = [k for k in PLAIN if k not in GRADIENT]


def _noisy_run(root, scores: tuple[str, ...]):
    """Digits (1,437 training images) with 10% of labels permuted: 3 runs x 30 epochs."""
    cfg = ScoreConfig(
        data=DataConfig(source="digits"),
        train=TrainConfig(runs=3),
        noise=NoiseConfig(fraction=0.1, seed=5),
        scores=scores,
    )
    path = score(cfg, root, show_progress=False)
    return store.read_scores(path), json.loads((path / "summary.json").read_text())


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    return _noisy_run(tmp_path_factory.mktemp("directions"), tuple(FAST))


@pytest.fixture(scope="module")
def noisy_run_all(tmp_path_factory):
    return _noisy_run(tmp_path_factory.mktemp("directions_all"), ("all",))


def _auroc(h: np.ndarray, noisy: np.ndarray) -> float:
    return float(roc_auc_score(noisy, h))


def _chance_band(h: np.ndarray, noisy: np.ndarray) -> float:
    """99.9% quantile of |AUROC - 0.5| when the noisy set is drawn at random (same size)."""
    ranks = rankdata(h)  # (N,) average ranks: ties as roc_auc_score counts them
    n_pos = int(noisy.sum())
    n_neg = noisy.shape[0] - n_pos
    rng = np.random.default_rng(0)
    picks = np.argsort(rng.random((N_NULL, noisy.shape[0])), axis=1)[:, :n_pos]  # (P, n_pos)
    null = (ranks[picks].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(np.quantile(np.abs(null - 0.5), NULL_QUANTILE))


@pytest.mark.parametrize("key", FAST)
def test_declared_direction_against_injected_noise(noisy_run, key):
    _check(*noisy_run, key)


@pytest.mark.slow
@pytest.mark.parametrize("key", GRADIENT)
def test_gradient_scores_declared_direction_against_injected_noise(noisy_run_all, key):
    _check(*noisy_run_all, key)


def _check(table, summary, key: str) -> None:
    """The one assertion of `key`: its expectation from `EXPECTED`."""
    noisy = table["noisy"].to_numpy(bool)
    values = table[key].to_numpy(np.float64)
    h = values if REGISTRY[key].higher_is_harder else -values  # larger = more suspect
    auroc = _auroc(h, noisy)
    assert auroc == pytest.approx(summary["scores"][key]["noise_auroc"], abs=1e-12)
    band = _chance_band(h, noisy)
    expected = EXPECTED[key]
    if expected == DETECTS:
        assert auroc >= MIN_AUROC, f"{key}: {auroc:.4f} (declared direction wrong, or weak)"
    elif expected == CHANCE:
        # <=: a score constant on digits (grayscale, the sizes: every image is 8x8 gray) has
        # AUROC exactly 0.5 and a band of 0.
        assert abs(auroc - 0.5) <= band, f"{key}: {auroc:.4f} outside 0.5 ± {band:.4f}"
    elif expected == NOT_REVERSED:
        assert auroc > 0.5 - band, f"{key}: {auroc:.4f} below 0.5 - {band:.4f} (reversed?)"
    else:
        assert auroc < 0.5 - band, f"{key}: {auroc:.4f} not below 0.5 - {band:.4f}"
