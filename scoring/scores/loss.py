"""Mean training loss over epochs: the plain baseline every other score should beat."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

LOSS_DOC = """\
**Loss** — the mean over epochs of the per-example cross-entropy recorded in the training
pass (`reduction='none'`); averaged over runs.

**Higher = harder**. A baseline: it needs nothing beyond the loss the training loop computes
anyway, and the other scores are worth their cost only where they beat it.
"""


def loss(*, loss: npt.ArrayLike) -> FloatArray:
    """Per-example mean training loss over epochs, for each run.

    Parameters
    ----------
    loss : ndarray of shape (n_runs, n_epochs, n_examples)
        Per-example cross-entropy from the training pass.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Mean over epochs. Higher means harder.
    """
    (loss,) = checked(loss=loss)
    return loss.mean(axis=1, dtype=np.float64)
