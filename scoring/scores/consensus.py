"""Consensus: one suspect ranking from a run's label-dependent evidence, chosen by measurement.

Which single score finds mislabeled examples best changes with the data: AUM on digits,
EL2N on an SST-2 probe (its model memorizes the wrong labels late in training, and EL2N
looks early), confidence on a small CIFAR-10 subset. `consensus` needs no injected noise
to decide. It reads four pieces of evidence every `consensus` run records anyway:

1. cleanlab's estimate of how many labels are wrong (`cleanlab.count.num_label_issues` on
   the out-of-fold probabilities, the count `cl_issue` flags; at most half the examples);
2. the training accuracy on the given labels, epoch by epoch (`correct`): the first epoch
   t* at which the model fits more labels than the estimate says are right (accuracy >=
   1 - estimated noise share) is where it starts to memorize wrong ones; every epoch when
   that never happens;
3. the two training-dynamics detectors over epochs 2..t* only: AUM (Pleiss et al. 2020,
   the margin of the given logit over the largest other) and confidence (Swayamdipta et
   al. 2020, the mean probability of the given label). Epoch 1 is left out because its
   values are recorded in the training pass (scoring/training/loop.py) before the model
   has seen the example, by a model whose progress depends on where the example's batch
   fell in the shuffled order: that is noise about the batch, not evidence about the
   example (a one-epoch run keeps it, having nothing else);
4. how well the out-of-fold model predicts the given labels, above chance: Cohen's kappa
   against a uniform guess, s = (accuracy - 1/K) / (1 - 1/K), clipped to [0, 1]. The two
   normalized ranks are mixed s : (1 - s). A logit margin ranks examples well once the
   model separates the classes (AUM is best on digits, s ~ 0.75); where the model is near
   chance the largest other logit is an arbitrary class and the margin mostly noise, while
   the probability of the given label still averages over every class (confidence is best
   on a 6-epoch CIFAR subset, s ~ 0.03).

Per run, then averaged over runs like any per-run score. Cost: no training beyond the runs
and the cross-fitting `cl_quality` needs (one cleanlab count and one accuracy per run
folder, two ranks per run).

How it was chosen (on the 18 runs of `bench/detectors.py`: digits, SST-2, CIFAR-10 ×
uniform and asymmetric noise, 20%, 3 seeds; docs/benchmarks.md): means of normalized ranks
of the single scores (every subset of el2n, aum, confidence, loss, forgetting,
correctness, cl_quality, pvi), agreement-weighted means and a one-factor score all fell
below the best single score on SST-2 with asymmetric noise, by 0.011 AUROC or more; a
logistic-regression stacker trained on synthetic flips in one extra recorded run fell below
it on digits (by up to 0.006). A logistic regression fit on the true noise mask itself
(cross-validated: an upper bound for any weighting of the scores) only tied the best single
score. What the scores miss is *when* to look, so most of the gain comes from the window;
the equal AUM/confidence mix over epochs 1..t* then still fell 0.006 short on CIFAR-10 with
asymmetric noise, which skipping epoch 1 and the kappa mix close. The rules are argued a
priori but were compared on these same runs, so the margins in the docs are in-sample.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked
from scoring.scores.cleanlab_scores import cleanlab_function

CONSENSUS_NEEDS = ("labels", "correct", "logit_given", "logit_other", "prob_given", "oof_probs")
# Confident learning assumes the given label is right more often than not: an estimate above
# this (an out-of-fold model near chance, e.g. a few epochs on a small image subset) is not
# evidence of noise, and would cut the window to the first epoch.
MAX_NOISE_SHARE = 0.5

CONSENSUS_DOC = """\
**Consensus** — one suspect ranking for data whose noise you do not know, computed without
any injected-noise mask. A weighted mean of the normalized ranks of **AUM** and
**confidence**, each averaged over the epochs *before the model starts memorizing*: from
epoch 2 (epoch 1 is recorded before the model has seen the example) to the first epoch
whose training accuracy on the given labels reaches 1 − (cleanlab's estimated share of
wrong labels); to the last epoch when it never does. AUM's weight is the out-of-fold
model's accuracy above chance (Cohen's kappa, in [0, 1]), confidence's the rest: margins
rank well when the model separates the classes, probabilities when it is near chance. In
[0, 1] per run, averaged over runs.

**High = suspect.** Memorized wrong labels look clean to any score averaged over the whole
run; cutting the window there lets the run's own noise estimate decide how much of training
to trust. Costs nothing beyond the runs and the cross-fitting `cl_quality` needs. Measured
against every single score in `bench/detectors.py` (docs/benchmarks.md).

Sources: Pleiss et al. 2020 (AUM), Swayamdipta et al. 2020 (confidence), Northcutt et al.
2021 (the noise estimate); the window and the weighting are ours.
"""


def consensus(
    *,
    labels: npt.ArrayLike,
    correct: npt.ArrayLike,
    logit_given: npt.ArrayLike,
    logit_other: npt.ArrayLike,
    prob_given: npt.ArrayLike,
    oof_probs: npt.ArrayLike,
) -> FloatArray:
    """Per-run consensus suspicion: kappa-weighted rank mean of windowed AUM and confidence.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
        The labels the runs trained on.
    correct : ndarray of shape (n_runs, n_epochs, n_examples), bool
    logit_given, logit_other, prob_given : ndarray of shape (n_runs, n_epochs, n_examples)
        From the training pass of each epoch.
    oof_probs : ndarray of shape (n_examples, n_classes)
        Out-of-fold probabilities (cross-fitting): cleanlab's noise count and the kappa
        weight read them.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        In (0, 1]; higher means more likely mislabeled.
    """
    labels, correct, logit_given, logit_other, prob_given, oof_probs = checked(
        labels=labels,
        correct=correct,
        logit_given=logit_given,
        logit_other=logit_other,
        prob_given=prob_given,
        oof_probs=oof_probs,
    )
    share = noise_share(labels, oof_probs)
    weight = skill(labels, oof_probs)
    return np.stack(
        [
            _combine(correct[r], logit_given[r], logit_other[r], prob_given[r], share, weight)
            for r in range(correct.shape[0])
        ]
    )


def noise_share(labels: np.ndarray, oof_probs: np.ndarray) -> float:
    """cleanlab's estimated share of wrong labels, at most `MAX_NOISE_SHARE`."""
    with warnings.catch_warnings():  # cleanlab warns about tiny classes; the count stands
        warnings.simplefilter("ignore")
        count = cleanlab_function("count", "num_label_issues")(
            labels, np.asarray(oof_probs, dtype=np.float64)
        )
    return min(float(count) / labels.shape[0], MAX_NOISE_SHARE)


def skill(labels: np.ndarray, oof_probs: np.ndarray) -> float:
    """The out-of-fold model's accuracy on the given labels above chance, in [0, 1].

    Cohen's kappa against a uniform guess over the K classes of `oof_probs`:
    (accuracy - 1/K) / (1 - 1/K), clipped at 0 (a model below chance has no skill).

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
    oof_probs : ndarray of shape (n_examples, n_classes)
    """
    k = oof_probs.shape[1]
    accuracy = float(np.mean(np.argmax(oof_probs, axis=1) == labels))
    return min(max((accuracy - 1.0 / k) / (1.0 - 1.0 / k), 0.0), 1.0)


def memorization_epoch(correct: np.ndarray, share: float) -> int:
    """t*: the first epoch (1-based) whose training accuracy reaches 1 - share, else T.

    Parameters
    ----------
    correct : ndarray of shape (n_epochs, n_examples), bool
    share : float in [0, 1]
    """
    accuracy = correct.mean(axis=1)  # (T,)
    # A small tolerance: 1 - share is a ratio of counts and the accuracy another.
    reached = np.flatnonzero(accuracy >= 1.0 - share - 1e-12)
    return int(reached[0]) + 1 if reached.size else int(correct.shape[0])


def window(correct: np.ndarray, share: float) -> slice:
    """The epochs consensus averages: 2..t* (0-based slice), at least epoch 2; epoch 1 alone
    for a one-epoch run.

    Parameters
    ----------
    correct : ndarray of shape (n_epochs, n_examples), bool
    share : float in [0, 1]
    """
    n_epochs = correct.shape[0]
    if n_epochs == 1:
        return slice(0, 1)
    return slice(1, max(memorization_epoch(correct, share), 2))


def _combine(
    correct: np.ndarray,
    logit_given: np.ndarray,
    logit_other: np.ndarray,
    prob_given: np.ndarray,
    share: float,
    weight: float,
) -> np.ndarray:
    """One run's consensus, (N,), from its (T, N) recordings, noise share and AUM weight."""
    epochs = window(correct, share)
    margin = logit_given[epochs].mean(axis=0, dtype=np.float64) - logit_other[epochs].mean(
        axis=0, dtype=np.float64
    )  # windowed AUM, (N,)
    confidence = prob_given[epochs].mean(axis=0, dtype=np.float64)  # (N,)
    n = margin.shape[0]
    from scipy.stats import rankdata  # here: scipy.stats is slow to import, rarely needed

    # Low margin / low confidence = suspect, so rank their negatives; ties share a rank.
    return (weight * rankdata(-margin) + (1.0 - weight) * rankdata(-confidence)) / n
