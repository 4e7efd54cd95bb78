"""Label-independent variants of EL2N and GraNd (Data Diet, appendix D, eqs. 10-12).

They ask how much of EL2N's and GraNd's signal comes from the label: each replaces the label
by something that does not depend on it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

_SOURCE = """
Source: Paul, Ganguli & Dziugaite, *Deep Learning on a Data Diet*, NeurIPS 2021, appendix D
(where the label-dependent scores prune better than these)."""

EL2N_FREE_DOC = (
    """\
**EL2N, label-free** — ‖softmax(f(x; w_t)) − 1/K‖₂, the distance from the uniform
distribution of the softmax EL2N reads (one eval-mode pass with the weights after the early
epoch t, the same for every example); averaged over runs.

**Lower = harder**: the model is still unsure between classes, whatever the label says.
Data Diet's appendix D keeps the *highest* values, which is "keep easiest" here.
"""
    + _SOURCE
)

GRAND_FREE_DOC = (
    """\
**GraNd, label-free (sum of logit gradients)** — ‖Σ_k ∇_w f_k(x)‖₂ over all the weights, at
the same point as GraNd (initialization by default); averaged over runs.

**Higher = harder** (as GraNd): the example's logits pull the weights hardest.
"""
    + _SOURCE
)

GRAND_LOGIT_SQ_DOC = (
    """\
**GraNd, label-free (per-logit squared norms)** — Σ_k ‖∇_w f_k(x)‖₂², one gradient per logit
(batched Jacobians), at the same point as GraNd; averaged over runs.

**Higher = harder** (as GraNd).
"""
    + _SOURCE
)


def el2n_free(*, probs_early: npt.ArrayLike) -> FloatArray:
    """‖p − 1/K‖₂ per run and example.

    Parameters
    ----------
    probs_early : ndarray of shape (n_runs, n_examples, n_classes)
        EL2N's eval-mode softmax with the weights after the early epoch.

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Lower means harder (closer to uniform).
    """
    (probs,) = checked(probs_early=probs_early)
    return np.linalg.norm(probs.astype(float) - 1.0 / probs.shape[-1], axis=-1)  # (R, N)


def grand_free(*, grad_free_norm: npt.ArrayLike) -> FloatArray:
    """‖Σ_k ∇_w f_k(x)‖₂ per run and example.

    Parameters
    ----------
    grad_free_norm : ndarray of shape (n_runs, n_examples)

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Higher means harder.
    """
    (norms,) = checked(grad_free_norm=grad_free_norm)
    return norms.astype(float, copy=False)


def grand_logit_sq(*, grad_logit_sq: npt.ArrayLike) -> FloatArray:
    """Σ_k ‖∇_w f_k(x)‖₂² per run and example.

    Parameters
    ----------
    grad_logit_sq : ndarray of shape (n_runs, n_examples)

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Higher means harder.
    """
    (sq,) = checked(grad_logit_sq=grad_logit_sq)
    return sq.astype(float, copy=False)
