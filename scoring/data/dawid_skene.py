"""Dawid–Skene: consensus labels from several annotators' votes alone, by EM.

Dawid & Skene, "Maximum Likelihood Estimation of Observer Error-Rates Using the EM
Algorithm", Applied Statistics 28(1), 1979. Each annotator a has a confusion matrix
π_a[k, l] = P(a votes l | the true class is k); the classes have a prior ρ_k. EM alternates
the posterior of each example's true class given its votes (E) and the maximum-likelihood
prior and confusion matrices given those posteriors (M), started from the vote shares.

It reads no model: the comparison for CROWDLAB (`scoring.scores.annotators`, which adds the
out-of-fold model) in `bench/annotators.py`, not a score of the runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.data.annotators import NO_VOTE, vote_counts
from scoring.errors import InputError


@dataclass(frozen=True)
class DawidSkene:
    """A fitted model.

    Attributes
    ----------
    posterior : ndarray of shape (n_examples, n_classes)
        P(true class | votes) per example.
    labels : ndarray of shape (n_examples,), int64
        Its argmax (ties: the lowest class id).
    confusion : ndarray of shape (n_annotators, n_classes, n_classes)
        π_a[k, l] = P(annotator a votes l | true class k).
    prior : ndarray of shape (n_classes,)
    accuracy : ndarray of shape (n_annotators,)
        Each annotator's estimated accuracy, Σ_k ρ_k π_a[k, k].
    n_iter : int
    """

    posterior: np.ndarray
    labels: np.ndarray
    confusion: np.ndarray
    prior: np.ndarray
    accuracy: np.ndarray
    n_iter: int


def dawid_skene(
    votes: np.ndarray,
    n_classes: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    smooth: float = 0.01,
) -> DawidSkene:
    """Fit Dawid–Skene to a vote matrix.

    Parameters
    ----------
    votes : ndarray of shape (n_examples, n_annotators), int
        Class ids in [0, n_classes), -1 = no vote; every example has a vote.
    n_classes : int
    max_iter : int
        EM iterations at most.
    tol : float
        Stop when no posterior moves by more than this.
    smooth : float
        Added to every confusion count (a Dirichlet prior), so a class an annotator never
        saw does not give probability 0.

    Returns
    -------
    DawidSkene
    """
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.dtype.kind not in "iu" or votes.min() < NO_VOTE:
        raise InputError("votes: expected integer class ids of shape (n_examples, n_annotators)")
    if votes.max() >= n_classes or not (votes != NO_VOTE).any(axis=1).all():
        raise InputError(f"votes: expected ids below {n_classes} and a vote on every example")
    counts = vote_counts(votes, n_classes).astype(np.float64)  # (N, K)
    posterior = counts / counts.sum(axis=1, keepdims=True)  # (N, K) start: vote shares
    onehot = _one_hot(votes, n_classes)  # (N, A, K), all zero where no vote
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        # M: prior and confusion from the current posteriors.
        prior = posterior.mean(axis=0)  # (K,)
        confusion = np.einsum("nk,nal->akl", posterior, onehot) + smooth  # (A, K, K)
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E: log P(k) + Σ_a log π_a[k, vote_a], normalized per example.
        log_post = np.log(prior + 1e-300) + np.einsum("nal,akl->nk", onehot, np.log(confusion))
        log_post -= log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=1, keepdims=True)
        moved = float(np.abs(new - posterior).max())
        posterior = new
        if moved < tol:
            break
    accuracy = np.einsum("k,akk->a", prior, confusion)  # (A,)
    labels = posterior.argmax(axis=1).astype(np.int64)
    return DawidSkene(posterior, labels, confusion, prior, accuracy, n_iter)


def _one_hot(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, A, K) indicator of each vote; rows of zeros where an annotator did not vote."""
    voted = votes != NO_VOTE
    out = np.zeros((*votes.shape, n_classes), dtype=np.float64)
    n, a = np.nonzero(voted)
    out[n, a, votes[n, a]] = 1.0
    return out
