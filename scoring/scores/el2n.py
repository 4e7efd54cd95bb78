"""EL2N: distance of the softmax output from the one-hot label early in training.

Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet" (NeurIPS 2021).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

EL2N_DOC = """\
**EL2N** — the L2 norm of the error vector, ‖softmax(f_t(x)) − onehot(y)‖₂, at an early
epoch t of training, for each run; averaged over runs.

**Higher = harder** (or more likely mislabeled): the model is still far from the given label.
Ranges from 0 to √2. Computed from the training-pass softmax at epoch t, so it costs nothing
beyond the forward pass.

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
        Softmax outputs at the early epoch t, from the training pass.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        ‖probs − onehot(labels)‖₂. Higher means harder or more likely mislabeled.
    """
    labels, probs = checked(labels=labels, probs_early=probs_early)
    onehot = np.eye(probs.shape[-1])[labels]  # (N, K) float64, so the difference is float64
    return np.linalg.norm(probs - onehot, axis=-1)  # (R, N)
