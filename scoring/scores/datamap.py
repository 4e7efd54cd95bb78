"""Data maps: confidence, variability and correctness of the given label over epochs.

Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets with Training
Dynamics" (EMNLP 2020).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

_SOURCE = """
Source: Swayamdipta, Schwartz, Lourie, Wang, Hajishirzi, Smith & Choi, *Dataset Cartography:
Mapping and Diagnosing Datasets with Training Dynamics*, EMNLP 2020.
"""

CONFIDENCE_DOC = (
    """\
**Confidence** — the mean over epochs of p(y | x), the softmax probability of the given
label in the training pass; averaged over runs.

**Low = hard**: low-confidence examples are the "hard-to-learn" region of the data map, where
mislabeled examples gather. Higher is easier.
"""
    + _SOURCE
)

VARIABILITY_DOC = (
    """\
**Variability** — the standard deviation over epochs (population, ddof = 0) of p(y | x),
the softmax probability of the given label in the training pass; averaged over runs.

**Higher = harder** in the sense of *ambiguous*: the model changed its mind about the
example during training. Data maps pair it with confidence.
"""
    + _SOURCE
)

CORRECTNESS_DOC = (
    """\
**Correctness** — the fraction of epochs in which the training-pass argmax equalled the
given label; averaged over runs.

**Low = hard**: rarely classified correctly. Higher is easier.
"""
    + _SOURCE
)


def confidence(*, prob_given: npt.ArrayLike) -> FloatArray:
    """Per-example mean probability of the given label over epochs, for each run.

    Parameters
    ----------
    prob_given : ndarray of shape (n_runs, n_epochs, n_examples)
        Softmax probability of the given label, per epoch.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Mean over epochs. Lower means harder.
    """
    (prob_given,) = checked(prob_given=prob_given)
    return prob_given.mean(axis=1, dtype=np.float64)


def variability(*, prob_given: npt.ArrayLike) -> FloatArray:
    """Per-example standard deviation of the given label's probability over epochs, per run.

    Parameters
    ----------
    prob_given : ndarray of shape (n_runs, n_epochs, n_examples)
        Softmax probability of the given label, per epoch.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Population standard deviation (ddof=0) over epochs, as in the data-maps paper.
        Higher means more ambiguous.
    """
    (prob_given,) = checked(prob_given=prob_given)
    return prob_given.std(axis=1, dtype=np.float64)


def correctness(*, correct: npt.ArrayLike) -> FloatArray:
    """Per-example fraction of epochs classified correctly, for each run.

    Parameters
    ----------
    correct : ndarray of shape (n_runs, n_epochs, n_examples)
        Whether the training-pass argmax equalled the given label, per epoch.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Fraction of epochs correct, in [0, 1]. Lower means harder.
    """
    (correct,) = checked(correct=correct)
    return correct.mean(axis=1, dtype=np.float64)
