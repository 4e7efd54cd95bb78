"""VoG: variance of the input gradient of the given label's logit across checkpoints.

Agarwal, D'souza, Hooker, "Estimating Example Difficulty using Variance of Gradients"
(CVPR 2022); dataset- vs class-normalization: "Influence Scores at Scale for Efficient
Language Data Sampling" (2023).
"""

from __future__ import annotations

import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

VOG_DOC = """\
**VoG (variance of gradients)** — for K checkpoints saved evenly through training
(`--checkpoints K`, default 5), the gradient g_k = ∂ f_y(x; w_k) / ∂ x of the given label's
pre-softmax logit with respect to the input (pixels; for the text probe, its sentence
embedding), then the variance over the K checkpoints of each input dimension, averaged over
dimensions; for each run, averaged over runs. (The VoG paper averages the per-pixel
standard deviation instead; the ranking is close but not identical.)

**Higher = harder**: the model's view of the example keeps changing during training.
The raw value is stored; normalize within each class (the VoG paper) or over the whole
dataset (better under class imbalance, per *Influence Scores at Scale*, 2023) with the
normalization control where it is read.

Sources: Agarwal, D'souza & Hooker, *Estimating Example Difficulty using Variance of
Gradients*, CVPR 2022; *Influence Scores at Scale for Efficient Language Data Sampling*,
2023.
"""


def vog(*, input_grad_var: npt.ArrayLike) -> FloatArray:
    """Per-example VoG for each run.

    Parameters
    ----------
    input_grad_var : ndarray of shape (n_runs, n_examples)
        Mean over input dimensions of the variance over checkpoints of ∂ f_y / ∂ x
        (scoring/grad_arrays.py).

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Higher means harder.
    """
    (values,) = checked(input_grad_var=input_grad_var)
    return values.astype(float, copy=False)
