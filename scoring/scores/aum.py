"""AUM: area under the margin of the given label's logit over the best other logit.

Pleiss, Zhang, Elenberg, Weinberger, "Identifying Mislabeled Data using the Area Under the
Margin Ranking" (NeurIPS 2020).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

AUM_DOC = """\
**AUM** (area under the margin) — the mean over epochs of the margin
logit_y(x) − max_{j≠y} logit_j(x), from the training pass; averaged over runs.

**Low = suspect**: a negative AUM means the model kept preferring another class to the
given one while it was being trained on the given one, the signature of a mislabeled
example. Higher is easier.

Source: Pleiss, Zhang, Elenberg & Weinberger, *Identifying Mislabeled Data using the Area
Under the Margin Ranking*, NeurIPS 2020.
"""


def aum(*, logit_given: npt.ArrayLike, logit_other: npt.ArrayLike) -> FloatArray:
    """Per-example area under the margin for each run.

    Parameters
    ----------
    logit_given : ndarray of shape (n_runs, n_epochs, n_examples)
        Logit of the given label, per epoch.
    logit_other : ndarray of shape (n_runs, n_epochs, n_examples)
        Largest logit among the other classes, per epoch.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Mean over epochs of logit_given - logit_other. Lower means more likely mislabeled.
    """
    logit_given, logit_other = checked(logit_given=logit_given, logit_other=logit_other)
    # The mean is linear, so two float64 means avoid an (R, T, N) temporary.
    return logit_given.mean(axis=1, dtype=np.float64) - logit_other.mean(axis=1, dtype=np.float64)
