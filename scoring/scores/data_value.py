"""KNN-Shapley data value: how much each training row helps a nearest-neighbour classifier.

Jia et al. (2019, "Efficient task-specific data valuation for nearest neighbor algorithms",
arXiv:1908.08619) give the exact Shapley value of every training row for a K-nearest-
neighbour classifier in closed form, by a recursion over each test point's neighbours sorted
by distance. Here, as in cleanlab's `data_valuation.data_shapley_knn` (Datalab's
data_valuation check), the training rows are their own test points and the neighbours are
those on the run's label-free embeddings (`features_free`, cosine distance, each row's own
index excluded).

For a test row a with neighbours n_1..n_K (nearest first) and m_j = 1 when n_j's label equals
a's, cleanlab's recursion (the paper's eqs. 18-19 with K* = K) is

    s_a(n_K) = 0,    s_a(n_j) = s_a(n_{j+1}) + m_j - m_{j+1},

which telescopes to ``s_a(n_j) = m_j - m_K``; a row's value is the sum of its s over every
test row that has it as a neighbour, divided by N K, and the returned score is
``(value + 1) / 2``. cleanlab builds the (N, N) matrix of s (20 GB at 50,000 rows); the
telescoped form needs only the (N, K) neighbour table, so this is hand-written on the
package's one kNN and checked against cleanlab on small data (tests/scores/test_values.py).

Higher = more valuable (its neighbours share its label: it helps predict them); below 0.5,
estimated to hurt (a row whose neighbours mostly carry other labels, as a flipped label's
do). The Pruning page's "keep easiest" by `knn_shapley` keeps the most valuable rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import checked
from scoring.scores.knn import knn

K_SHAPLEY = 10  # cleanlab's default k
# Scores that value rows (higher = more valuable): "keep easiest" by one keeps the most
# valuable rows, and the pruning controls say so (`prune.select.rule_meaning`).
DATA_VALUES = frozenset({"knn_shapley"})

KNN_SHAPLEY_DOC = f"""**KNN-Shapley data value** (Jia et al., 2019; cleanlab Datalab's
data_valuation): the exact Shapley value of each training row for a {K_SHAPLEY}-nearest-
neighbour classifier on the run's label-free embeddings, each row a test point for the
others, mapped to [0, 1]. Around 0.5 is neutral; **higher = more valuable** (its neighbours
share its label), below 0.5 it is estimated to hurt (its neighbours carry other labels, as a
flipped label's do). Reads the given labels, so it sees label noise; a row with few
neighbours in its class (a rare kind of example) also scores low."""


def knn_shapley(
    *, labels: npt.ArrayLike, features_free: npt.ArrayLike, label_prior: npt.ArrayLike
) -> np.ndarray:
    """KNN-Shapley value of each training row, as cleanlab's `data_shapley_knn` (k = 10).

    Parameters
    ----------
    labels : ndarray of shape (n_examples,), int
        The given labels.
    features_free : ndarray of shape (n_examples, n_features)
        Label-independent embeddings; neighbours by cosine distance, self excluded.
    label_prior : ndarray of shape (n_classes,)
        Read for the number of classes only: a label outside [0, n_classes) is refused, as
        by every score that reads labels.

    Returns
    -------
    ndarray of shape (n_examples,), float64, in [0, 1]
        Higher = more valuable; 0.5 = no effect. All 0.5 with fewer than two rows.
    """
    y, x, _ = checked(labels=labels, features_free=features_free, label_prior=label_prior)
    return shapley_values(y, x, K_SHAPLEY)


def shapley_values(y: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """`knn_shapley` on checked arrays with `k` neighbours (fewer when there are fewer rows).

    Parameters
    ----------
    y : ndarray of shape (n_examples,), int
    x : ndarray of shape (n_examples, n_features)
    k : int

    Returns
    -------
    ndarray of shape (n_examples,), float64
    """
    n = x.shape[0]
    if n < 2:
        return np.full(n, 0.5)
    k = min(k, n - 1)
    index, _ = knn(x, k=k, metric="cosine")  # (N, k), nearest first, self excluded
    match = (y[index] == y[:, None]).astype(np.float64)  # (N, k): m_j per test row
    share = match - match[:, -1:]  # s_a(n_j) = m_j - m_K, telescoped
    value = np.bincount(index.ravel(), weights=share.ravel(), minlength=n) / (n * k)
    return 0.5 * (value + 1.0)
