"""Exact k-nearest neighbours in blocks: no N x N matrix, memory bounded by the block.

The neighbourhood scores (near duplicates, train/test leakage, outliers) need each row's k
nearest neighbours among up to a million embeddings. A full distance matrix is N^2 floats
(4 TB at 1M rows); scikit-learn's brute force chunks it but in float64. Here the queries
are cut into blocks and the database into blocks; each (query block x database block) is
one float32 matrix product. Selecting the top k of every block with `argpartition` costs
more than the product, so each block is first thresholded per row (see `_merge`) and only
the few surviving entries are merged into the running top k. The working memory is about
`block_bytes` whatever N is, and the data is never copied (float32 C-contiguous input).

Distances: `"cosine"` is 1 - cosine similarity (from the rows' norms, not normalised
copies); `"l2"` is the Euclidean distance, ranked by |d|^2 - 2 q.d and recomputed from
the differences for the k winners (the expanded form cancels badly for near duplicates).

With `database=None` the queries search among themselves and each row's own index is
excluded (as scikit-learn's `kneighbors()` without X); with a separate database (train
rows searching the test rows, for leakage) nothing is excluded.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from scoring.errors import InputError

METRICS = ("cosine", "l2")
# Working memory of one (query block x database block) step; 1M x 384 (1.5 GB of data)
# then runs in about 2 GB in all (bench/knn.py).
DEFAULT_BLOCK_BYTES = 256 * 2**20
_DB_BLOCK = 16384


class _Quiet:
    """A progress sink for executors when the caller has none."""

    def advance(self, amount: float = 1.0) -> None:
        pass

    def stage(self, message: str) -> None:
        pass


def knn(
    queries: np.ndarray,
    database: np.ndarray | None = None,
    k: int = 10,
    metric: str = "cosine",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    executor: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact k nearest database rows of every query row.

    Parameters
    ----------
    queries : np.ndarray, shape (n_queries, dim)
        Rows to find neighbours for (any float dtype; used as float32).
    database : np.ndarray, shape (n_database, dim), optional
        Rows to search. None: the queries themselves, each excluding its own index.
    k : int
        Neighbours per query; at most n_database (n_database - 1 without a database).
    metric : {"cosine", "l2"}
        Cosine distance (1 - cosine similarity) or Euclidean distance.
    block_bytes : int
        Working-memory budget of one (query block x database block) step.
    executor : scoring.training.executors.Executor, optional
        Spreads query blocks over workers (e.g. Ray) with `map`; the arrays travel with
        every block's task, so it only pays when the search outweighs that copy.

    Returns
    -------
    indices : np.ndarray, shape (n_queries, k), int64
        Database row indices, nearest first (ties in any order).
    distances : np.ndarray, shape (n_queries, k), float32
        Their distances, ascending.
    """
    if metric not in METRICS:
        raise InputError(f"unknown kNN metric {metric!r}: expected one of {', '.join(METRICS)}")
    q, q_sq = _prepare(queries, "queries")
    self_search = database is None
    db, db_sq = (q, q_sq) if self_search else _prepare(database, "database")
    if db.shape[1] != q.shape[1]:
        raise InputError(
            f"queries have {q.shape[1]} columns but the database has {db.shape[1]}: "
            "embed both with the same encoder"
        )
    available = db.shape[0] - (1 if self_search else 0)
    if not 1 <= k <= available:
        raise InputError(f"k must be between 1 and {available} here, got {k}")
    if metric == "cosine":
        # Scales instead of normalised copies: the data is never copied (1M x 384 float32
        # is 1.5 GB); a zero row stays zero, at cosine distance 1 from everything.
        q_scale = 1 / np.sqrt(np.maximum(q_sq, np.float32(1e-24)))
        db_scale = q_scale if self_search else 1 / np.sqrt(np.maximum(db_sq, np.float32(1e-24)))
        db_term = -db_scale
    else:
        q_scale, db_term = None, db_sq
    db_block = min(db.shape[0], _DB_BLOCK)
    # Per query row and database row: a float32 distance and a boolean mask (+ slack).
    q_block = max(1, min(q.shape[0], block_bytes // (6 * db_block)))
    ranges = [(a, min(a + q_block, q.shape[0])) for a in range(0, q.shape[0], q_block)]
    search = functools.partial(
        _search_block, q=q, q_scale=q_scale, db=db, db_term=db_term, k=k, metric=metric,
        db_block=db_block, self_search=self_search,
    )  # fmt: skip
    indices = np.empty((q.shape[0], k), dtype=np.int64)
    distances = np.empty((q.shape[0], k), dtype=np.float32)

    def keep(i: int, result: tuple[np.ndarray, np.ndarray]) -> None:
        a, b = ranges[i]
        indices[a:b], distances[a:b] = result

    if executor is None:
        for i, r in enumerate(ranges):
            keep(i, search(r))
    else:
        executor.map(lambda r, report: search(r), ranges, _Quiet(), keep)
    return indices, distances


def _prepare(x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Float32 C-contiguous rows (no copy when they already are) and their squared norms."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty 2-D array (rows x dims), got {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    sq = np.einsum("ij,ij->i", x, x)  # (n,): no n x dim temporary, unlike np.linalg.norm
    # A NaN or inf makes its row's norm non-finite (so can overflow: then look closer).
    if not np.isfinite(sq).all() and not np.isfinite(x).all():
        raise InputError(f"{name} contain NaN or infinite values: drop or fill those rows")
    return x, sq


def _search_block(
    bounds: tuple[int, int],
    q: np.ndarray,
    q_scale: np.ndarray | None,
    db: np.ndarray,
    db_term: np.ndarray,
    k: int,
    metric: str,
    db_block: int,
    self_search: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of queries `q[a:b]` over the whole database, one database block at a time."""
    a, b = bounds
    qb = q[a:b] if q_scale is None else q[a:b] * q_scale[a:b, None]  # unit rows (cosine)
    best_d = np.full((b - a, k), np.inf, dtype=np.float32)
    best_i = np.full((b - a, k), -1, dtype=np.int64)
    for s in range(0, db.shape[0], db_block):
        e = min(s + db_block, db.shape[0])
        # Distance up to a per-query constant is enough to rank: -q.d/|d| (cosine, q unit)
        # or |d|^2 - 2 q.d (L2); the exact distance is filled in for the winners only.
        d = np.ascontiguousarray(qb @ db[s:e].T)
        if metric == "cosine":
            d *= db_term[s:e]
        else:
            d *= -2
            d += db_term[s:e]
        if self_search and s < b and a < e:
            # Each query's own row lies in this block: never its own neighbour.
            own = np.arange(max(a, s), min(b, e))
            d[own - a, own - s] = np.inf
        best_d, best_i = _merge(best_d, best_i, d, s, k)
    if metric == "cosine":
        dist = np.maximum(1 + best_d, 0)  # 1 - cos; rounding can dip just below 0
    else:
        # Recomputed from the differences for the k winners: |q|^2 - 2 q.d + |d|^2 cancels
        # catastrophically in float32 for duplicates (distance 0 would come out ~1e-3).
        dist = np.linalg.norm(qb[:, None, :] - db[best_i], axis=2)
    return best_i, dist.astype(np.float32)


def _merge(
    best_d: np.ndarray, best_i: np.ndarray, d: np.ndarray, offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest per row of the running best and a new block, sorted ascending.

    Selecting with argpartition over the whole block costs more than the matrix product;
    instead a threshold per row keeps only the few entries that can enter the top k: the
    k-th smallest of every 16th column bounds the block's k-th smallest from above (k
    entries lie at or below it), and the running k-th smallest bounds what can improve on
    the running best. Entries at or below the smaller bound, with the running best, hold
    at least k per row and every true top-k entry (ties included).

    Parameters
    ----------
    best_d, best_i : np.ndarray, shape (n, k)
        Running distances (inf where empty) and database indices.
    d : np.ndarray, shape (n, width)
        The block's distances (any per-row shift is fine: only the order matters).
    offset : int
        Database index of the block's first column.
    """
    n, width = d.shape
    stride = min(16, width // k)
    thr = best_d.max(axis=1)
    if stride >= 1:
        sub = np.partition(d[:, ::stride], k - 1, axis=1)[:, k - 1]
        thr = np.minimum(thr, sub)
    # flatnonzero on the 1-D view is several times faster than 2-D nonzero; r ascends.
    flat = np.flatnonzero(d <= thr[:, None])
    r, c = np.divmod(flat, width)
    counts = np.bincount(r, minlength=n)
    rank = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]
    # The candidates padded to the widest row (inf beyond a row's count), beside the best.
    cand_d = np.full((n, k + counts.max()), np.inf, dtype=np.float32)
    cand_i = np.full((n, k + counts.max()), -1, dtype=np.int64)
    cand_d[:, :k], cand_i[:, :k] = best_d, best_i
    cand_d[r, k + rank] = d.ravel()[flat]
    cand_i[r, k + rank] = c + offset
    keep = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
    rows = np.arange(n)[:, None]
    best_d, best_i = cand_d[rows, keep], cand_i[rows, keep]
    order = np.argsort(best_d, axis=1, kind="stable")
    return best_d[rows, order], best_i[rows, order]
