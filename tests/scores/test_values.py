"""Hand-computed values for each score on tiny arrays written out literally.

Shapes follow the recorded arrays: per-epoch arrays are (R, T, N), so a literal written one
row per example (over epochs) is transposed into place with `_epochs`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from scoring.errors import InputError
from scoring.scores.aum import aum
from scoring.scores.cleanlab_scores import cl_issue, cl_quality
from scoring.scores.datamap import confidence, correctness, variability
from scoring.scores.el2n import el2n
from scoring.scores.forgetting import forgetting
from scoring.scores.grand import grand
from scoring.scores.label_free import el2n_free, grand_free, grand_logit_sq
from scoring.scores.loss import loss
from scoring.scores.prototype import prototype
from scoring.scores.pvi import pvi
from scoring.scores.tracin import tracin
from scoring.scores.vog import vog


def _epochs(*per_example: list[float]) -> np.ndarray:
    """One run: rows per example over epochs -> (1, T, N)."""
    return np.array(per_example).T[None]


# --- el2n -------------------------------------------------------------------------------


def test_el2n_by_hand() -> None:
    labels = np.array([0, 1, 2])
    probs_early = np.array(
        [
            [[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.5, 0.5, 0.0]],  # run 0
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],  # run 1
        ]
    )
    # run 0: (-.3, .2, .1) -> sqrt(.09 + .04 + .01) = sqrt(.14)
    #        (.7, -.8, .1) -> sqrt(.49 + .64 + .01) = sqrt(1.14)
    #        (.5, .5, -1)  -> sqrt(.25 + .25 + 1)   = sqrt(1.5)
    # run 1: exact one-hots -> 0, 0; confidently wrong (1, 0, -1) -> sqrt(2), the maximum
    expected = [[math.sqrt(0.14), math.sqrt(1.14), math.sqrt(1.5)], [0.0, 0.0, math.sqrt(2)]]
    assert_allclose(el2n(labels=labels, probs_early=probs_early), expected)


# --- forgetting -------------------------------------------------------------------------


def test_forgetting_counts_transitions() -> None:
    correct = _epochs(
        [1, 0, 1, 0],  # forgotten twice
        [0, 0, 0, 0],  # never learned -> T = 4
        [1, 1, 1, 1],  # learned, never forgotten
        [0, 1, 1, 0],  # learned late, forgotten once
        [0, 0, 0, 1],  # learned at the last epoch: no event
    ).astype(bool)
    assert_array_equal(forgetting(correct=correct), [[2, 4, 0, 1, 0]])


def test_forgetting_never_learned_is_t() -> None:
    correct = _epochs([1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]).astype(bool)
    assert_array_equal(forgetting(correct=correct), [[1, 3, 0, 1]])


def test_forgetting_never_learned_ranks_above_most_forgotten() -> None:
    # T = 6: the most a learned example can be forgotten is floor(6 / 2) = 3.
    correct = _epochs([1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0])
    assert_array_equal(forgetting(correct=correct), [[3, 6]])  # 0/1 ints are accepted


# --- aum --------------------------------------------------------------------------------


def test_aum_by_hand() -> None:
    logit_given = _epochs([2.0, 1.0, 3.0], [0.0, 0.0, 0.0])
    logit_other = _epochs([1.0, 2.0, 0.0], [1.0, 1.0, 1.0])
    # margins (1, -1, 3) -> mean 1;  (-1, -1, -1) -> -1 (suspect)
    assert_allclose(aum(logit_given=logit_given, logit_other=logit_other), [[1.0, -1.0]])


# --- data maps --------------------------------------------------------------------------


def test_confidence_and_variability_by_hand() -> None:
    prob_given = _epochs([0.2, 0.4, 0.9], [0.5, 0.5, 0.5])
    # mean (.2 + .4 + .9) / 3 = .5; deviations (-.3, -.1, .4) -> (.09 + .01 + .16) / 3 = .26 / 3
    assert_allclose(confidence(prob_given=prob_given), [[0.5, 0.5]])
    assert_allclose(variability(prob_given=prob_given), [[math.sqrt(0.26 / 3), 0.0]])


def test_correctness_by_hand() -> None:
    correct = _epochs([0, 0, 1], [1, 1, 0], [1, 1, 1]).astype(bool)
    assert_allclose(correctness(correct=correct), [[1 / 3, 2 / 3, 1.0]])


def test_datamap_averages_each_run_separately() -> None:
    prob_given = np.array([[[0.2], [0.4]], [[0.6], [1.0]]])  # (R=2, T=2, N=1)
    assert_allclose(confidence(prob_given=prob_given), [[0.3], [0.8]])
    assert_allclose(variability(prob_given=prob_given), [[0.1], [0.2]])


# --- loss -------------------------------------------------------------------------------


def test_loss_by_hand() -> None:
    recorded = _epochs([0.5, 1.5, 1.0], [2.0, 0.1, 0.0]).astype(np.float32)
    assert_allclose(loss(loss=recorded), [[1.0, 0.7]], rtol=1e-6)


# --- pvi --------------------------------------------------------------------------------


def test_pvi_by_hand() -> None:
    labels = np.array([0, 1, 1])
    oof_probs = np.array([[0.8, 0.2], [0.75, 0.25], [1.0, 0.0]])  # (N=3, K=2), held out
    label_prior = np.array([0.5, 0.5])
    expected = [
        math.log2(0.8) - math.log2(0.5),  # 0.678: the input adds bits for the label
        math.log2(0.25) - math.log2(0.5),  # -1: the input argues against the label
        math.log2(1e-12) - math.log2(0.5),  # p = 0 is clipped at 1e-12: finite
    ]
    got = pvi(labels=labels, oof_probs=oof_probs, label_prior=label_prior)
    assert_allclose(got, expected)


def test_pvi_uses_the_prior_of_the_given_label() -> None:
    # Rare class 1 (prior .25) predicted at .5: log2(.5) - log2(.25) = -1 + 2 = 1 bit.
    got = pvi(
        labels=np.array([1, 0]),
        oof_probs=np.array([[0.5, 0.5], [0.5, 0.5]]),
        label_prior=np.array([0.75, 0.25]),
    )
    assert_allclose(got, [1.0, math.log2(0.5 / 0.75)])


def test_pvi_ranks_like_the_out_of_fold_probability_within_each_class() -> None:
    # Ethayarajh et al.'s PVI on held-out probabilities: within a class the prior is one
    # constant, so the ranking is that of p_oof(y|x) exactly (Spearman 1), while across
    # classes the prior shifts a rare class up.
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    labels = rng.permutation(np.repeat([0, 1, 2], [50, 30, 20]))
    oof_probs = rng.dirichlet([1.0, 1.0, 1.0], size=100)
    prior = np.bincount(labels) / labels.size
    got = pvi(labels=labels, oof_probs=oof_probs, label_prior=prior)
    given = oof_probs[np.arange(100), labels]
    for c in range(3):
        rho = spearmanr(got[labels == c], given[labels == c]).statistic
        assert rho == pytest.approx(1.0, abs=1e-12), c
    # and the values are log2 p - log2 prior, not a rank transform
    assert_allclose(got, np.log2(given) - np.log2(prior[labels]), rtol=1e-12)


def test_pvi_rejects_zero_prior_for_a_present_label() -> None:
    with pytest.raises(InputError, match=r"label_prior: classes \[1\]"):
        pvi(
            labels=np.array([0, 1]),
            oof_probs=np.full((2, 2), 0.5),
            label_prior=np.array([1.0, 0.0]),
        )


# --- cleanlab ---------------------------------------------------------------------------


def test_cl_quality_is_self_confidence() -> None:
    labels = np.array([0, 1, 2, 1])
    oof_probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.8, 0.1, 0.1]])
    # cleanlab's default method is self-confidence: p[y].
    assert_allclose(cl_quality(labels=labels, oof_probs=oof_probs), [0.7, 0.6, 0.4, 0.1])


def test_cl_issue_flags_the_flipped_example() -> None:
    labels = np.repeat([0, 1, 2], 10)  # 30 examples, 10 per class
    oof_probs = np.full((30, 3), 0.05)
    oof_probs[np.arange(30), labels] = 0.9
    oof_probs[:, 0] += np.linspace(0, 0.01, 30)  # no exact ties
    oof_probs /= oof_probs.sum(axis=1, keepdims=True)
    oof_probs[4] = [0.02, 0.96, 0.02]  # labelled 0, confidently a 1
    flags = cl_issue(labels=labels, oof_probs=oof_probs)
    assert flags.dtype == np.float64
    assert_array_equal(np.flatnonzero(flags), [4])


def test_cleanlab_scores_survive_small_awkward_inputs() -> None:
    # N = 20, K = 3: class 2 is never the argmax, and class 1 never occurs in labels.
    rng = np.random.default_rng(0)
    labels = np.array([0, 2] * 10)
    oof_probs = rng.dirichlet([3.0, 2.0, 0.2], size=20)
    assert (oof_probs.argmax(axis=1) != 2).all()
    flags = cl_issue(labels=labels, oof_probs=oof_probs)
    quality = cl_quality(labels=labels, oof_probs=oof_probs)
    assert flags.shape == quality.shape == (20,)
    assert set(np.unique(flags)) <= {0.0, 1.0}
    assert_allclose(quality, oof_probs[np.arange(20), labels])


def test_cl_issue_needs_two_classes() -> None:
    with pytest.raises(InputError, match="at least 2 distinct classes"):
        cl_issue(labels=np.ones(5, dtype=int), oof_probs=np.full((5, 3), 1 / 3))


# --- prototype --------------------------------------------------------------------------


def _unit(*angles: float) -> np.ndarray:
    return np.array([[math.cos(a), math.sin(a)] for a in angles])


def test_prototype_by_hand() -> None:
    # Two pairs on the unit circle at 0 +- .1 and pi/2 +- .1 rad. Each pair's centroid is
    # its midpoint, at distance sin(.1) from both points.
    features = _unit(0.1, math.pi / 2 + 0.1, -0.1, math.pi / 2 - 0.1)  # (4, 2)
    got = prototype(features_free=features, n_prototypes=2)
    assert_allclose(got, np.full(4, math.sin(0.1)), rtol=1e-9)
    # L2 normalisation: rescaling rows changes nothing.
    scaled = features * np.array([1.0, 7.0, 0.5, 3.0])[:, None]
    assert_allclose(prototype(features_free=scaled, n_prototypes=2), got, rtol=1e-9)


def test_prototype_outlier_is_farthest() -> None:
    # Two tight clusters around the directions (1, 0) and (0, 1), and one point pointing
    # away from both. k-means lets the outlier pull one centroid a little; it stays farthest.
    rng = np.random.default_rng(0)
    cluster_a = np.array([5.0, 0.0]) + rng.normal(scale=0.05, size=(20, 2))
    cluster_b = np.array([0.0, 5.0]) + rng.normal(scale=0.05, size=(20, 2))
    outlier = np.array([[-3.0, -3.0]])
    features = np.concatenate([cluster_a, outlier, cluster_b])  # (41, 2)
    dist = prototype(features_free=features, n_prototypes=2)
    assert dist.argmax() == 20
    assert dist[20] > 1.0
    assert np.delete(dist, 20).max() < 0.15


def test_prototype_clips_to_distinct_rows() -> None:
    # Three distinct directions, asked for ten prototypes: each point is its own centroid.
    features = _unit(0.0, 0.0, 1.0, 2.0, 2.0) * np.array([1, 2, 1, 1, 3])[:, None]
    assert_allclose(prototype(features_free=features, n_prototypes=10), np.zeros(5), atol=1e-12)


# --- validation messages ----------------------------------------------------------------


def test_message_names_argument_and_shapes() -> None:
    with pytest.raises(InputError) as err:
        el2n(labels=np.zeros(50, dtype=int), probs_early=np.full((2, 49, 3), 1 / 3))
    assert str(err.value) == (
        "probs_early: expected shape (n_runs, n_examples, n_classes) with n_examples=50 "
        "matching labels, got (2, 49, 3)"
    )


def test_probabilities_outside_unit_interval_rejected() -> None:
    with pytest.raises(InputError, match=r"probs_early: expected probabilities in \[0, 1\]"):
        el2n(labels=np.array([0, 1]), probs_early=np.array([[[2.0, -1.0], [0.5, 0.5]]]))


def test_non_integer_labels_and_counts_rejected() -> None:
    with pytest.raises(InputError, match="labels: expected integer class indices"):
        el2n(labels=np.array([0.0, 1.0]), probs_early=np.full((1, 2, 2), 0.5))
    features = np.ones((3, 2))
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(InputError, match="n_prototypes: expected a positive integer"):
            prototype(features_free=features, n_prototypes=bad)


# --- gradient scores and label-free variants ---------------------------------------------


def test_el2n_free_by_hand() -> None:
    """‖p − 1/K‖: [0.5, 0.25, 0.25] is (1/6, −1/12, −1/12) from uniform, norm √(1/24)."""
    probs = np.array([[[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]]])  # (1, 3, 3)
    assert_allclose(el2n_free(probs_early=probs), [[math.sqrt(1 / 24), 0.0, math.sqrt(2 / 3)]])


def test_gradient_scores_pass_recorded_values_through_per_run() -> None:
    """The gradient scores are the recorded quantities, per run (scoring/grad_arrays.py)."""
    values = np.array([[0.0, 1.5, 2.0], [0.5, 0.5, 3.0]])  # (R=2, N=3)
    for fn, name in (
        (grand, "grad_norm"),
        (grand_free, "grad_free_norm"),
        (grand_logit_sq, "grad_logit_sq"),
        (tracin, "tracin_self"),
        (vog, "input_grad_var"),
    ):
        out = fn(**{name: values.astype(np.float32)})
        assert out.dtype == np.float64
        assert_array_equal(out, values)


def test_negative_gradient_quantities_rejected() -> None:
    with pytest.raises(InputError, match=r"^grad_norm: expected values >= 0"):
        grand(grad_norm=np.array([[1.0, -0.5]]))
    with pytest.raises(InputError, match=r"^input_grad_var: expected values >= 0"):
        vog(input_grad_var=np.array([[-1e-3]]))


# --- knn_shapley ---------------------------------------------------------------------------


def test_knn_shapley_by_hand() -> None:
    from scoring.scores.data_value import shapley_values

    # Five unit vectors at 0, 10, 30, 100 and 110 degrees: cosine distance grows with the
    # angle, so each row's 2 nearest are read off the angles.
    angles = np.radians([0, 10, 30, 100, 110])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array([0, 0, 1, 1, 1])
    # Row 0's neighbours are 1 (same label, m=1) then 2 (m=0): s(1) = 1 - 0, s(2) = 0.
    # Row 1's are 0 (m=1), 2 (m=0): s(0) = 1. Row 2's are 1, 0 (both m=0): 0, 0.
    # Row 3's are 4, 2 (both m=1) and row 4's are 3, 2 (both m=1): every s is 1 - 1 = 0.
    # Values: rows 0 and 1 get 1 / (N k) = 1 / 10, the rest 0; the score is (v + 1) / 2.
    expected = 0.5 * (np.array([0.1, 0.1, 0.0, 0.0, 0.0]) + 1)
    assert_allclose(shapley_values(labels, x, k=2), expected)


def test_knn_shapley_equals_cleanlabs_and_ranks_flipped_labels_low() -> None:
    from cleanlab.data_valuation import data_shapley_knn
    from sklearn.metrics import roc_auc_score

    from scoring.scores.data_value import knn_shapley

    rng = np.random.default_rng(3)
    centres = rng.normal(scale=4.0, size=(3, 8))
    labels = np.repeat(np.arange(3), 100)
    x = centres[labels] + rng.normal(size=(300, 8))
    flipped = rng.choice(300, 15, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + 1) % 3
    ours = knn_shapley(labels=noisy, features_free=x, label_prior=np.full(3, 1 / 3))
    # cleanlab's own O(N^2) implementation on the same rows, cosine, k = 10.
    assert_allclose(ours, data_shapley_knn(noisy, features=x, metric="cosine", k=10), atol=1e-12)
    # Flipped rows sit among neighbours of another label: below 0.5, ranked first. (A clean
    # row whose neighbours all share its label scores exactly 0.5: nothing to gain or lose.)
    assert np.all(ours[flipped] < 0.5)
    assert len(set(np.argsort(ours, kind="stable")[:15]) & set(flipped)) >= 14
    is_flipped = np.isin(np.arange(300), flipped)
    assert roc_auc_score(is_flipped, -ours) > 0.99


def test_knn_shapley_tiny_inputs() -> None:
    from scoring.scores.data_value import knn_shapley

    prior = [0.5, 0.5]
    assert_array_equal(
        knn_shapley(labels=[0], features_free=[[1.0, 0.0]], label_prior=prior), [0.5]
    )
    # Two rows: one neighbour each, s = m_1 - m_1 = 0 whatever the labels.
    two = knn_shapley(labels=[0, 1], features_free=[[1.0, 0], [0, 1.0]], label_prior=prior)
    assert_array_equal(two, [0.5, 0.5])
