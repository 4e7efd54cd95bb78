"""Epoch statistics: what one epoch's training-pass logits become in a recording.

`end_epoch` keeps, per example, the four numbers `loop.fit` records (`STATS`) and, at a
candidate for EL2N's epoch, the softmax; `epoch_arrays` is that flush, `epoch_stats` the
arithmetic (numpy, float32, as `loop._epoch_stats` computes it in torch).
"""

from __future__ import annotations

import numpy as np

# Row order of an epoch's statistics (as `loop._STATS`).
STATS = ("loss", "logit_given", "logit_other", "prob_given")


def epoch_stats(
    logits: np.ndarray, labels: np.ndarray, *, probs: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-example statistics of one epoch's training pass, as `loop._epoch_stats`.

    Parameters
    ----------
    logits : ndarray of shape (n_examples, n_classes), float32
    labels : ndarray of shape (n_examples,)
    probs : bool
        Also return the softmax (sharing the exponentials).

    Returns
    -------
    stats : ndarray of shape (4, n_examples), float32
        Rows `STATS`: cross-entropy loss, logit of the given label, largest other logit,
        softmax probability of the given label.
    probs : ndarray of shape (n_examples, n_classes), float32, or None
    """
    rows = np.arange(logits.shape[0])
    top = logits.max(axis=1, keepdims=True)  # (N, 1)
    shifted = logits - top  # (N, K)
    out = np.empty((len(STATS), logits.shape[0]), dtype=np.float32)
    out[0] = -shifted[rows, labels]
    np.exp(shifted, out=shifted)  # reuse the buffer: exp(logit - max)
    total = shifted.sum(axis=1)  # (N,)
    out[0] += np.log(total)  # loss = logsumexp - logit_y
    p = None
    if probs:
        p = shifted
        p /= total[:, None]
    out[1] = logits[rows, labels]
    other = logits.copy()  # the other classes' logits, exactly (no shift and back)
    other[rows, labels] = -np.inf
    out[2] = other.max(axis=1)
    out[3] = np.exp(-out[0])
    return out, p


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, float32: (n, K) -> (n, K)."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def epoch_arrays(
    pos: np.ndarray, logits: np.ndarray, labels: np.ndarray, *, probs: bool
) -> dict[str, np.ndarray]:
    """One epoch's flush: the rows logged, their statistics and, if asked, their softmax.

    Parameters
    ----------
    pos : ndarray of shape (n,), int
        The rows (run order) logged in the epoch.
    logits : ndarray of shape (n, n_classes), float32
        Their training-pass logits.
    labels : ndarray of shape (n,)
        Their given labels.
    probs : bool
        Keep the softmax: the epoch is a candidate for EL2N's.

    Returns
    -------
    dict of str to ndarray
        ``pos`` (n,), ``stats`` (4, n) float32 and, with `probs`, ``probs`` (n, n_classes)
        float16: EL2N's input is stored in float16 by every run anyway.
    """
    stats, p = epoch_stats(logits, labels, probs=probs)  # (4, n)
    arrays: dict[str, np.ndarray] = {"pos": pos, "stats": stats}
    if p is not None:
        arrays["probs"] = p.astype(np.float16)
    return arrays
