"""Neighbourhood issues on the label-free embeddings: near duplicates, outliers, leakage.

All three read `features_free` (the run folder's label-independent embeddings,
`scoring.training.free_features`) under the cosine distance ``1 - cos(x_i, x_j)``; `leakage`
also reads `features_free_test`, the held-out/test rows' embeddings by the same transform.
Vectors are centred on the training rows' mean first. Neighbours are exact: a blocked
float32 matrix product (`BLOCK` query rows at a time, never an N x N matrix).

The near-duplicate threshold is calibrated on the data's own distance distribution, not a
fixed number, because cosine distances between pixels, random projections and text
embeddings live on very different scales. Let ``d1_i`` be row i's distance to its nearest
other training row; on ``log(d1 + EPS)``, the robust z-score

    z_i = (log(d1_i + EPS) - median) / (1.4826 * MAD)

is about standard normal for the bulk of the rows; a pair closer than the distance at
``z = -Z_NEAR`` and than ``NEAR_FRACTION`` x the median of ``d1`` is a near duplicate
(`near_threshold`). The log makes the rule scale-free and sends exact copies (``d1 = 0``) far
into the tail; the second bound matters where the bulk's spread is wide and the z-rule alone
reaches into ordinary neighbours (measured on blocky synthetic images: natural pairs from
0.41, one-pixel shifts at 0.15-0.19, z-rule alone 0.44, with the bound 0.33).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

BLOCK = 2048  # query rows per matrix product: memory ~ BLOCK * N floats
EPS = 1e-6  # floor on a cosine distance in the log: exact copies land at log(EPS)
Z_NEAR = 3.0  # robust z-score below which a nearest-neighbour distance is a near duplicate
NEAR_FRACTION = 0.5  # and at most this fraction of the median nearest-neighbour distance
K_OUTLIER = 5  # neighbours averaged by `outlier` (as cleanlab's Datalab OutOfDistribution)
K_PAIRS = 5  # neighbours per row examined for near-duplicate pairs

NEAR_DUP_DOC = """\
**Near duplicate** (label-free) — how unusually close a row is to its nearest other training
row: the negated robust z-score of the log cosine distance to that neighbour, on the run's
label-independent embeddings. **Higher = more duplicated**; a value ≥ 3 is flagged as a near
duplicate (exact copies score highest). Rows in one duplicate group share `dup_group`.
"""

OUTLIER_DOC = """\
**Outlier** (label-free) — the mean cosine distance to the 5 nearest other training rows
on the run's label-independent embeddings (the k-nearest-neighbour distance of cleanlab's
Datalab outlier check). **Higher = more outlying**: far from anything else in the data.
"""

LEAKAGE_DOC = """\
**Leakage** (label-free) — how close a training row is to its nearest held-out/test row,
as a robust z-score against the training rows' own nearest-neighbour distances (negated).
**Higher = closer to a test row**; ≥ 3 (or an exact copy) is flagged as a leak and
`leak_of` names the test row. A leaked row inflates test accuracy.
"""


def near_dup(*, features_free: npt.ArrayLike) -> FloatArray:
    """Negated robust z-score of the log nearest-neighbour cosine distance.

    Parameters
    ----------
    features_free : ndarray of shape (n_examples, n_features)

    Returns
    -------
    ndarray of shape (n_examples,), float64
        Higher = closer to its nearest other row than the data's typical row is.
    """
    (x,) = checked(features_free=features_free)
    d, _ = knn(x, 1)
    return -_robust_z(d[:, 0], d[:, 0])


def outlier(*, features_free: npt.ArrayLike) -> FloatArray:
    """Mean cosine distance to the `K_OUTLIER` nearest other rows.

    Parameters
    ----------
    features_free : ndarray of shape (n_examples, n_features)

    Returns
    -------
    ndarray of shape (n_examples,), float64, in [0, 2]
        Higher = more outlying. With fewer rows, every other row is a neighbour.
    """
    (x,) = checked(features_free=features_free)
    if x.shape[0] < 2:
        return np.zeros(x.shape[0])
    d, _ = knn(x, min(K_OUTLIER, x.shape[0] - 1))
    return d.mean(axis=1)


def leakage(*, features_free: npt.ArrayLike, features_free_test: npt.ArrayLike) -> FloatArray:
    """Negated robust z-score of the distance to the nearest test row, on the train scale.

    Parameters
    ----------
    features_free : ndarray of shape (n_examples, n_features)
    features_free_test : ndarray of shape (n_test, n_features)
        May have no rows (no held-out split): every value is then 0.

    Returns
    -------
    ndarray of shape (n_examples,), float64
        Higher = closer to a held-out/test row, measured against the training rows'
        nearest-neighbour distances (so ≥ `Z_NEAR` means "as close as a near duplicate").
    """
    x, y = checked(features_free=features_free, features_free_test=features_free_test)
    if y.shape[0] == 0:
        return np.zeros(x.shape[0])
    d_self, _ = knn(x, 1)
    d_test, _ = knn(x, 1, y)
    return -_robust_z(d_test[:, 0], d_self[:, 0])


# -- neighbours, groups and leaks (what `scores.parquet`'s columns hold) -------------------------


def knn(x: np.ndarray, k: int, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k nearest neighbours, blocked over the query rows.

    Parameters
    ----------
    x : ndarray of shape (n, d)
        Query rows.
    k : int
        Neighbours per row; at most ``len(y)`` (or ``n - 1`` when `y` is None).
    y : ndarray of shape (m, d), optional
        Rows searched; None searches `x` itself, never returning a row as its own
        neighbour.

    Returns
    -------
    dist : ndarray of shape (n, k), float64
        Cosine distances ``1 - cos`` after centring both sides on `x`'s mean, ascending per
        row, clipped to [0, 2].
    index : ndarray of shape (n, k), int64
        Rows of `y` (or `x`); among equal distances the lower index comes first.
    """
    # Centred on the searched rows' mean: uncentred pixels (all positive) or anisotropic
    # text embeddings put every pair at a small cosine distance and blur the tail.
    # The query rows are the training rows in every use here, so both sides share their mean.
    mu = np.asarray(x, dtype=np.float64).mean(axis=0)
    xn = _unit(np.asarray(x, dtype=np.float64) - mu)
    yn = xn if y is None else _unit(np.asarray(y, dtype=np.float64) - mu)
    n = xn.shape[0]
    dist = np.empty((n, k))
    index = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        d = 1.0 - (xn[start:stop] @ yn.T).astype(np.float64)  # (b, m)
        np.clip(d, 0.0, 2.0, out=d)
        if y is None:
            d[np.arange(stop - start), np.arange(start, stop)] = np.inf
        # A stable sort on (distance, index) makes the result independent of row order.
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        index[start:stop] = order
        dist[start:stop] = np.take_along_axis(d, order, axis=1)
    return dist, index


def near_threshold(d1: np.ndarray) -> float:
    """The cosine distance under which a pair is a near duplicate (module docstring).

    Parameters
    ----------
    d1 : ndarray of shape (n,)
        Each row's distance to its nearest other row.
    """
    logs = np.log(d1 + EPS)
    med = float(np.median(logs))
    robust = float(np.exp(med - Z_NEAR * _mad(logs)) - EPS)
    return min(robust, NEAR_FRACTION * float(np.median(d1)))


def content_keys(inputs: np.ndarray | Sequence) -> list[str]:
    """A digest of each row's content: decoded pixels as uint8 bytes, or normalized text.

    Parameters
    ----------
    inputs : ndarray of shape (n, channels, height, width) in [0, 1], or sequence of n
        texts (str, or (str, str) pairs)

    Returns
    -------
    list of n str
        Equal keys = equal content. Text is lowercased with whitespace collapsed.
    """
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind == "f":
        pixels = np.clip(np.rint(inputs * 255), 0, 255).astype(np.uint8)
        return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in pixels]
    keys = []
    for item in inputs:
        parts = item if isinstance(item, tuple) else (item,)
        text = "\x1f".join(" ".join(str(p).lower().split()) for p in parts)
        keys.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
    return keys


def dup_groups(features: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    """Duplicate groups: exact copies by content, joined with near-duplicate pairs.

    Parameters
    ----------
    features : ndarray of shape (n, d)
        The label-free embeddings.
    keys : sequence of n str
        `content_keys` of the same rows.

    Returns
    -------
    ndarray of shape (n,), int64
        Group number (0, 1, ... in the order of each group's first row), −1 for a row with
        no duplicate. Groups are connected components of the "exact copy or nearer than
        `near_threshold`" graph over each row's `K_PAIRS` nearest neighbours.
    """
    n = len(keys)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            union(first[key], i)
        else:
            first[key] = i
    if n > 1:
        dist, index = knn(np.asarray(features), min(K_PAIRS, n - 1))
        tau = near_threshold(dist[:, 0])
        for i, j in zip(*np.nonzero(dist <= tau), strict=True):
            union(int(i), int(index[i, j]))
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    sizes = np.bincount(roots, minlength=n)
    out = np.full(n, -1, dtype=np.int64)
    numbers: dict[int, int] = {}
    for i in range(n):
        if sizes[roots[i]] > 1:
            out[i] = numbers.setdefault(int(roots[i]), len(numbers))
    return out


def leak_of(
    features: np.ndarray,
    keys: Sequence[str],
    test_features: np.ndarray,
    test_keys: Sequence[str],
    test_ids: np.ndarray,
) -> np.ndarray:
    """The held-out/test row each training row leaks, −1 for none.

    A leak is an exact content copy of a test row, or a test row nearer than the
    near-duplicate threshold of the training rows' own distances (`near_threshold`).

    Parameters
    ----------
    features : ndarray of shape (n, d)
    keys : sequence of n str
    test_features : ndarray of shape (m, d)
    test_keys : sequence of m str
    test_ids : ndarray of shape (m,)

    Returns
    -------
    ndarray of shape (n,), int64
        The test row's id (the exact copy's first, else the nearest), or −1.
    """
    n = len(keys)
    out = np.full(n, -1, dtype=np.int64)
    if len(test_keys) == 0 or n == 0:
        return out
    test_ids = np.asarray(test_ids, dtype=np.int64)
    d_test, i_test = knn(np.asarray(features), 1, np.asarray(test_features))
    if n > 1:
        tau = near_threshold(knn(np.asarray(features), 1)[0][:, 0])
        near = d_test[:, 0] <= tau
        out[near] = test_ids[i_test[near, 0]]
    exact: dict[str, int] = {}
    for j, key in enumerate(test_keys):
        exact.setdefault(key, j)
    for i, key in enumerate(keys):
        if key in exact:
            out[i] = test_ids[exact[key]]
    return out


def issue_counts(
    dup_group: np.ndarray, leak: np.ndarray, outlier_score: np.ndarray, labels: np.ndarray
) -> dict[str, object]:
    """Counts per issue type for `summary.json`.

    Returns
    -------
    dict
        `duplicate_groups`, `rows_in_duplicate_groups`, `redundant_rows` (rows a `dedup`
        drops), `leaks`, `outliers` (outlier robust z-score ≥ `Z_NEAR`), and
        `class_imbalance`: per-class counts and the largest/smallest class ratio.
    """
    in_group = dup_group >= 0
    n_groups = int(np.unique(dup_group[in_group]).size)
    counts = np.bincount(labels)
    present = counts[counts > 0]
    z = _robust_z(outlier_score, outlier_score) if outlier_score.size else outlier_score
    return {
        "duplicate_groups": n_groups,
        "rows_in_duplicate_groups": int(in_group.sum()),
        "redundant_rows": int(in_group.sum()) - n_groups,
        "leaks": int((leak >= 0).sum()),
        "outliers": int((z >= Z_NEAR).sum()),
        "class_imbalance": {
            "counts": counts.tolist(),
            "max_over_min": float(present.max() / present.min()) if present.size else None,
        },
    }


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))  # a zero row stays zero: distance 1


def _mad(logs: np.ndarray) -> float:
    """1.4826 x median absolute deviation, floored so a constant input does not divide by 0."""
    return max(1.4826 * float(np.median(np.abs(logs - np.median(logs)))), 1e-3)


def _robust_z(values: np.ndarray, reference: np.ndarray) -> FloatArray:
    """Robust z-scores of log(values + EPS) against log(reference + EPS)."""
    ref = np.log(np.asarray(reference, np.float64) + EPS)
    med = float(np.median(ref))
    return (np.log(np.asarray(values, np.float64) + EPS) - med) / _mad(ref)
