"""GraNd: the norm of an example's loss gradient with respect to the weights.

Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet" (NeurIPS 2021).
"""

from __future__ import annotations

import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

GRAND_DOC = """\
**GraNd** — the gradient norm ‖∇_w ℓ(f(x; w_t), y)‖₂ of the example's cross-entropy loss over
all the weights, for each run at initialization (t = 0, as Data Diet does; `--grad-at
early` takes the weights after EL2N's early epoch, the very weights EL2N's eval pass reads);
averaged over runs.

**Higher = harder** (more important to keep): the example would move the weights most.
Computed exactly with batched per-example gradients (`torch.func`), in eval mode (BatchNorm
uses running statistics, estimated from the data for a fresh model); `--grad-params last`
uses the last layer's closed form ‖p − onehot(y)‖₂ · ‖[h, 1]‖₂.

Source: Paul, Ganguli & Dziugaite, *Deep Learning on a Data Diet: Finding Important Examples
Early in Training*, NeurIPS 2021.
"""


def grand(*, grad_norm: npt.ArrayLike) -> FloatArray:
    """Per-example GraNd for each run.

    Parameters
    ----------
    grad_norm : ndarray of shape (n_runs, n_examples)
        ‖∇_w ℓ(f(x), y)‖₂ recorded by each run (scoring/grad_arrays.py).

    Returns
    -------
    ndarray of shape (n_runs, n_examples)
        Higher means harder (more important).
    """
    (norms,) = checked(grad_norm=grad_norm)
    return norms.astype(float, copy=False)
