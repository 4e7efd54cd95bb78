"""Label-noise injection (Data Diet's recipe) and how well a score finds the noisy examples."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from scoring.errors import InputError
from scoring.scores.registry import hardness


def inject_noise(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Permute the labels of a random `fraction` of the examples among themselves.

    As in Paul et al. (2021): the class histogram is unchanged; an example whose label
    happens to land on itself is not noisy.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
    fraction : float in [0, 1)
    seed : int

    Returns
    -------
    noisy_labels : ndarray of shape (n_examples,)
    noisy : ndarray of shape (n_examples,), bool
        True where the label actually changed.
    """
    if not 0 <= fraction < 1:
        raise InputError(f"--noise must be a fraction in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    picked = rng.choice(labels.shape[0], size=round(fraction * labels.shape[0]), replace=False)
    noisy_labels = labels.copy()
    noisy_labels[picked] = labels[rng.permutation(picked)]
    return noisy_labels, noisy_labels != labels


def noise_detection(
    values: np.ndarray, noisy: np.ndarray, higher_is_harder: bool
) -> dict[str, float | None]:
    """AUROC and precision@k (k = number of noisy) of ranking noisy examples first.

    Parameters
    ----------
    values : ndarray of shape (n_examples,)
    noisy : ndarray of shape (n_examples,), bool

    Returns
    -------
    dict with `noise_auroc` and `noise_precision_at_k` (None when there is no noisy or no
    clean example). Ties in precision@k are broken by example order (stable sort), so a
    binary score such as `cl_issue` is not credited with a lucky order.
    """
    k = int(noisy.sum())
    if k == 0 or k == noisy.shape[0]:
        return {"noise_auroc": None, "noise_precision_at_k": None}
    h = hardness(values, higher_is_harder)
    top = np.argsort(-h, kind="stable")[:k]
    return {
        "noise_auroc": float(roc_auc_score(noisy, h)),
        "noise_precision_at_k": float(noisy[top].mean()),
    }
