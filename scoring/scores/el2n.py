"""EL2N: distance of the softmax output from the one-hot label early in training.

Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet" (NeurIPS 2021).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

EL2N_DOC = """\
**EL2N** — the L2 norm of the error vector, ‖softmax(f(x; w_t)) − onehot(y)‖₂, with the
weights w_t a run has after its early epoch t, for each run; averaged over runs.

**Higher = harder** (or more likely mislabeled): the model is still far from the given label.
Ranges from 0 to √2. As in Data Diet, every example is scored by the same weights: one
eval-mode pass over the training set (no augmentation, BatchNorm on running statistics,
no dropout) right after the last step of epoch t. The training pass of epoch t is not used:
there each example would be scored by weights that moved within the epoch, before its own
update, so its position in the epoch's order would leak into the score. `--grad-at early`
takes GraNd at these same weights.

Source: Paul, Ganguli & Dziugaite, *Deep Learning on a Data Diet: Finding Important Examples
Early in Training*, NeurIPS 2021.
"""


def el2n(*, labels: npt.ArrayLike, probs_early: npt.ArrayLike) -> FloatArray:
    """Per-example EL2N for each run.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
        Given labels, integers in [0, n_classes).
    probs_early : ndarray of shape (n_runs, n_examples, n_classes)
        Eval-mode softmax with the weights after the early epoch t (one fixed-weight pass).

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        ‖probs − onehot(labels)‖₂. Higher means harder or more likely mislabeled.
    """
    labels, probs = checked(labels=labels, probs_early=probs_early)
    onehot = np.eye(probs.shape[-1])[labels]  # (N, K) float64, so the difference is float64
    return np.linalg.norm(probs - onehot, axis=-1)  # (R, N)
