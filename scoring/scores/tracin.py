"""TracIn self-influence: how much an example's own training steps reduced its own loss.

Pruthi, Liu, Kale, Sundararajan, "Estimating Training Data Influence by Tracing Gradient
Descent" (NeurIPS 2020).
"""

from __future__ import annotations

import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

TRACIN_DOC = """\
**TracIn self-influence** — Σ_k η_k ‖∇_w ℓ(f(x; w_k), y)‖₂² over K checkpoints w_k saved
evenly through training (`--checkpoints K`, default 5), η_k the mean learning rate of the
steps that led to checkpoint k; for each run, averaged over runs. This is the paper's SGD
form: under Adam (the `mlp`, `cnn` and `probe` recipes) a step is not η·g, so the weights
η_k are the schedule's learning rates, not the steps actually taken.

**Higher = harder** (or more likely mislabeled): the example keeps a large loss gradient
all through training, so it is rare, atypical or at odds with its label. All weights by
default (exact batched per-example gradients, eval mode); `--grad-params last` uses the
last layer's closed form ‖p − onehot(y)‖₂² · (‖h‖₂² + 1), bias included.

Source: Pruthi, Liu, Kale & Sundararajan, *Estimating Training Data Influence by Tracing
Gradient Descent*, NeurIPS 2020.
"""


def tracin(*, tracin_self: npt.ArrayLike) -> FloatArray:
    """Per-example TracIn self-influence for each run.

    Parameters
    ----------
    tracin_self : ndarray of shape (n_runs, n_examples)
        Σ_k η_k ‖∇_w ℓ(x, y; w_k)‖² recorded by each run (scoring/grad_arrays.py).

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Higher means harder or more likely mislabeled.
    """
    (values,) = checked(tracin_self=tracin_self)
    return values.astype(float, copy=False)
