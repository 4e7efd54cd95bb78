"""Forgetting events: how often an example goes from correct to incorrect during training.

Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural Network
Learning" (ICLR 2019).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

FORGETTING_DOC = """\
**Forgetting** — the number of forgetting events: consecutive epochs where the example was
classified correctly in the training pass and then incorrectly in the next. Per run,
averaged over runs.

**Never learned counts as T** (the number of epochs): an example that is never classified
correctly has no event to count, yet it is the hardest of all. An example that is learned at
some point can be forgotten at most ⌊T/2⌋ times, so T ranks every never-learned example
above every learned one, with a finite number (not the `inf` of the original code).

**Higher = harder** (forgotten often, or never learned).

Source: Toneva, Sordoni, Combes, Trischler, Bengio & Gordon, *An Empirical Study of Example
Forgetting during Deep Neural Network Learning*, ICLR 2019.
"""


def forgetting(*, correct: npt.ArrayLike) -> FloatArray:
    """Per-example forgetting-event count for each run.

    Parameters
    ----------
    correct : ndarray of shape (n_runs, n_epochs, n_examples)
        Whether the training-pass argmax equalled the given label, per epoch.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Number of correct -> incorrect transitions between consecutive epochs; an example
        never correct in any epoch gets n_epochs. A learned example has at most
        floor(n_epochs / 2) events, so never-learned ranks above all of them.
        Higher means harder.
    """
    (correct,) = checked(correct=correct)
    n_epochs = correct.shape[1]
    events = np.sum(correct[:, :-1] & ~correct[:, 1:], axis=1)  # (R, N)
    never_learned = ~correct.any(axis=1)  # (R, N)
    return np.where(never_learned, n_epochs, events).astype(np.float64)
