"""PVI: pointwise V-information of the label given the input.

Ethayarajh, Choi, Swayamdipta, "Understanding Dataset Difficulty with V-Usable Information"
(ICML 2022).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.errors import InputError
from scoring.scores._checks import FloatArray, checked

# Keeps log2 finite where a model gives the label probability 0 (float32 softmax underflow).
PROB_FLOOR = 1e-12

PVI_DOC = """\
**PVI** (pointwise V-information) — log₂ g_x(y) − log₂ g_∅(y): how many bits the input adds
to a model's belief in the given label. g_x(y) is the **out-of-fold** probability of the
given label: the cross-fit model that never trained on the example (K stratified folds, the
same probabilities cleanlab reads), as Ethayarajh et al. estimate V-information with models
held out from the example. Computed once, not per run; asking for it runs the cross-fit.

g_∅ is the "null-input" model. None is trained: with a constant input, the cross-entropy
minimiser is the empirical label distribution, so g_∅(y) is the training label prior.
Probabilities are clipped at 1e-12 before the log.

**Low = hard or suspect**: a negative PVI means the input makes the given label *less*
likely than guessing from label frequencies alone. Higher is easier. Within a class it ranks
exactly like the out-of-fold p(y|x); the prior only shifts whole classes.

Source: Ethayarajh, Choi & Swayamdipta, *Understanding Dataset Difficulty with V-Usable
Information*, ICML 2022; used for data pruning in *Influence Scores at Scale for Efficient
Language Data Sampling*, 2023.
"""


def pvi(
    *, labels: npt.ArrayLike, oof_probs: npt.ArrayLike, label_prior: npt.ArrayLike
) -> FloatArray:
    """Per-example pointwise V-information from held-out (out-of-fold) probabilities.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
        Given labels, integers in [0, n_classes).
    oof_probs : ndarray of shape (n_examples, n_classes)
        Out-of-fold softmax: row i from the cross-fit model that did not train on example i.
    label_prior : ndarray of shape (n_classes,)
        Training label frequencies (sums to 1). It stands in for the null-input model:
        the cross-entropy minimiser over a constant input is the label distribution.

    Returns
    -------
    ndarray of shape (n_examples,)
        log2 oof_probs[y] - log2 label_prior[y], with probabilities clipped at 1e-12.
        Lower means harder or more likely mislabeled.
    """
    labels, probs, prior = checked(labels=labels, oof_probs=oof_probs, label_prior=label_prior)
    prior_y = prior[labels].astype(np.float64)  # (N,)
    if (prior_y <= 0).any():
        missing = np.unique(labels[prior_y <= 0]).tolist()
        raise InputError(
            f"label_prior: classes {missing} occur in labels but have prior 0; expected the "
            "training label frequencies"
        )
    prob_y = probs[np.arange(labels.size), labels].astype(np.float64)  # (N,)
    return np.log2(np.maximum(prob_y, PROB_FLOOR)) - np.log2(prior_y)
