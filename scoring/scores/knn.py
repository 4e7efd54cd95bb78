"""Exact k-nearest neighbours in blocks: no N x N matrix, memory bounded by the block.

The one kNN of the package: the neighbourhood scores (near duplicates, train/test leakage,
outliers, `scoring.scores.neighbourhood`) and the benchmark (`bench/knn.py`) both call
`knn`. It lives beside the scores because they are its first users and `scoring.read`
imports `scoring.scores` (not the other way round); it has no torch, like every module here.

A full distance matrix is N^2 floats (4 TB at 1M rows); scikit-learn's brute force chunks it
but in float64. Here the queries are cut into blocks and the database into blocks; each
(query block x database block) is one float32 matrix product. Selecting the top k of every
block with `argpartition` costs more than the product, so each block is first thresholded
per row (see `_merge`) and only the few surviving entries are merged into the running top
k. The working memory is about `block_bytes` whatever N is, and the data is never copied
whole (float32 C-contiguous input; unit rows are made one block at a time).

Distances: `"cosine"` is ``1 - cos(q, d)`` clipped to [0, 2] on unit rows
(``x / max(|x|, 1e-12)``; a zero row stays zero, at distance 1 from everything); `"l2"` is
the Euclidean distance. The search ranks by float32 products (-cos, or |d|^2 - 2 q.d), keeps
k + 8 candidates per query, and recomputes their distances per pair in float64 (`_refine`):
a float32 product can give exact copies different values depending on BLAS tiling and
threads, and the expanded l2 form cancels badly for near duplicates.

Order: nearest first, and among equal distances the lower database index first, so a
result never depends on the block sizes, the executor or the order blocks finish in.

With `database=None` the queries search among themselves and each row's own index is
excluded (as scikit-learn's `kneighbors()` without X); with a separate database (train
rows searching the test rows, for leakage) nothing is excluded.

Backends: "numpy" is the blocked search above; "faiss" asks faiss's exact flat index
(`IndexFlatIP` on unit rows, `IndexFlatL2`) for the same k + 8 float32 candidates and hands
them to the same float64 `_refine`, so both give the same neighbours, ties included;
"auto" (the default) uses faiss when it imports (`pip install -r requirements-faiss.txt`)
and no executor spreads the blocks, the blocked search otherwise. `bench/knn.py` times
both.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

from scoring.errors import InputError

METRICS = ("cosine", "l2")
BACKENDS = ("auto", "faiss", "numpy")
# Working memory of one (query block x database block) step; 1M x 384 (1.5 GB of data)
# then runs in about 2 GB in all (bench/knn.py).
DEFAULT_BLOCK_BYTES = 256 * 2**20
_DB_BLOCK = 16384
_TINY = np.float32(1e-12)  # norm floor: a zero row stays a zero row
_NORM_ROWS = 65536  # rows per norm computation: x * x is never made for all rows at once
_TIE_SLACK = 8  # candidates kept beyond k for the float64 re-ranking (`_refine`)
_REFINE_BYTES = 32 * 2**20  # float64 candidate rows re-ranked at once


class _Quiet:
    """A progress sink for executors when the caller has none."""

    def advance(self, amount: float = 1.0) -> None:
        pass

    def stage(self, message: str) -> None:
        pass


# The executor `knn` spreads its blocks over when the caller passes none: set for the span
# of a scoring job run with `--executor ray` (`spread_over`), so that every score searching
# neighbours (near_dup, outlier, leakage, knn_shapley, ...) uses it without an argument.
_EXECUTOR: contextvars.ContextVar[Any] = contextvars.ContextVar("knn_executor", default=None)


@contextlib.contextmanager
def spread_over(executor: Any) -> Iterator[None]:
    """Within the block, `knn` calls without an `executor` use this one (None: none)."""
    token = _EXECUTOR.set(executor)
    try:
        yield
    finally:
        _EXECUTOR.reset(token)


def knn(
    queries: np.ndarray,
    database: np.ndarray | None = None,
    k: int = 10,
    metric: str = "cosine",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    executor: Any = None,
    progress: Any = None,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """The exact k nearest database rows of every query row.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, dim)
        Rows to find neighbours for (any float dtype; used as float32).
    database : ndarray of shape (n_database, dim), optional
        Rows to search. None: the queries themselves, each excluding its own index.
    k : int
        Neighbours per query; at most n_database (n_database - 1 without a database).
    metric : {"cosine", "l2"}
        Cosine distance (1 - cosine similarity) or Euclidean distance.
    block_bytes : int
        Working-memory budget of one (query block x database block) step.
    executor : scoring.training.executors.Executor, optional
        Spreads query blocks over workers (e.g. Ray) with `map`; the arrays travel once to
        the workers (Ray's object store), so it pays when the search outweighs that copy.
        The result is the same as without one. Default: the one `spread_over` set, if any.
    progress : scoring.training.executors.Report, optional
        Told `advance(1)` per query block done, after a `stage` naming the block count.
    backend : {"auto", "faiss", "numpy"}
        Who proposes the candidates (see the module docstring); the result is the same.

    Returns
    -------
    indices : ndarray of shape (n_queries, k), int64
        Database row indices, nearest first; ties in ascending index.
    distances : ndarray of shape (n_queries, k), float64
        Their distances, ascending.
    """
    q, q_norm, db, db_norm = _operands(queries, database, k, metric)
    self_search = database is None
    executor = executor if executor is not None else _EXECUTOR.get()
    if _use_faiss(backend, executor):
        search = functools.partial(
            _faiss_block, q=q, q_norm=q_norm, db=db, db_norm=db_norm, k=k, metric=metric,
            self_search=self_search, index=_faiss_index(db, db_norm, metric),
        )  # fmt: skip
        step = max(1, min(q.shape[0], block_bytes // (8 * (k + _TIE_SLACK + 1) * q.shape[1])))
        ranges = [(a, min(a + step, q.shape[0])) for a in range(0, q.shape[0], step)]
        return _run_blocks(search, ranges, k, None, progress)
    db_block = min(db.shape[0], _DB_BLOCK)
    # Per query row and database row: a float32 distance and a boolean mask (+ slack).
    q_block = max(1, min(q.shape[0], block_bytes // (6 * db_block)))
    ranges = [(a, min(a + q_block, q.shape[0])) for a in range(0, q.shape[0], q_block)]
    search = functools.partial(
        _search_block, q=q, q_norm=q_norm, db=db, db_norm=db_norm, k=k, metric=metric,
        db_block=db_block, self_search=self_search,
    )  # fmt: skip
    return _run_blocks(search, ranges, k, executor, progress)


def _use_faiss(backend: str, executor: Any) -> bool:
    """Whether faiss proposes the candidates: asked for, or "auto" with faiss importable and
    no executor (a faiss index does not travel to Ray workers; the blocks do)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown kNN backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "numpy" or (backend == "auto" and executor is not None):
        return False
    try:
        import faiss  # noqa: F401
    except ImportError:
        if backend == "faiss":
            raise InputError(
                "the faiss kNN backend needs faiss: pip install -r requirements-faiss.txt "
                "(or use backend='numpy', the same neighbours)"
            ) from None
        return False
    return True


def _faiss_index(db: np.ndarray, db_norm: np.ndarray, metric: str) -> Any:
    """faiss's exact flat index over the database (unit rows for cosine)."""
    import faiss

    if metric == "cosine":
        index = faiss.IndexFlatIP(db.shape[1])
        for s in range(0, db.shape[0], _NORM_ROWS):  # unit rows, a chunk at a time
            e = min(s + _NORM_ROWS, db.shape[0])
            index.add(db[s:e] / np.maximum(db_norm[s:e, None], _TINY))
    else:
        index = faiss.IndexFlatL2(db.shape[1])
        index.add(db)
    return index


def _faiss_block(
    bounds: tuple[int, int],
    q: np.ndarray,
    q_norm: np.ndarray,
    db: np.ndarray,
    db_norm: np.ndarray,
    k: int,
    metric: str,
    self_search: bool,
    index: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of queries `q[a:b]`: faiss's k + 8 float32 candidates, refined in float64.

    Where the last candidate ties the k-th (coarse data: more equal distances than the
    slack holds), faiss's choice among the tied rows is not the lowest indices: those rows
    are searched again by the blocked search, so the result is the same as "numpy"'s.
    """
    a, b = bounds
    qb = q[a:b]
    if metric == "cosine":
        qb = qb / np.maximum(q_norm[a:b, None], _TINY)
    kc = min(k + _TIE_SLACK, db.shape[0] - (1 if self_search else 0))
    found_d, cand = index.search(np.ascontiguousarray(qb, dtype=np.float32), kc + self_search)
    if self_search:  # drop each query's own row (or, where faiss left it out, the last)
        own = cand == np.arange(a, b)[:, None]
        own[~own.any(axis=1), -1] = True
        keep = ~own
        cand, found_d = cand[keep].reshape(b - a, kc), found_d[keep].reshape(b - a, kc)
    indices, distances = _refine(q[a:b], db, cand.astype(np.int64), k, metric)
    # faiss gives similarities (IP) or squared distances: equal at the k-th and the last
    # candidate (up to float32 rounding) means the tie may reach beyond the candidates.
    edge = np.abs(found_d[:, -1] - found_d[:, k - 1])
    unsure = np.flatnonzero(
        (kc < db.shape[0] - self_search)
        & (edge <= 1e-5 * np.maximum(1.0, np.abs(found_d[:, k - 1])))
    )
    for r in unsure:
        indices[r], distances[r] = _search_block(
            (a + r, a + r + 1), q=q, q_norm=q_norm, db=db, db_norm=db_norm, k=k,
            metric=metric, db_block=min(db.shape[0], _DB_BLOCK), self_search=self_search,
        )  # fmt: skip
    return indices, distances


def _operands(
    queries: np.ndarray, database: np.ndarray | None, k: int, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked float32 queries and database with their row norms: (q, q_norm, db, db_norm).

    Without a database, the queries (and their norms) are the database.
    """
    if metric not in METRICS:
        raise InputError(f"unknown kNN metric {metric!r}: expected one of {', '.join(METRICS)}")
    q, q_norm = _prepare(queries, "queries")
    self_search = database is None
    db, db_norm = (q, q_norm) if self_search else _prepare(database, "database")
    if db.shape[1] != q.shape[1]:
        raise InputError(
            f"queries have {q.shape[1]} columns but the database has {db.shape[1]}: "
            "embed both with the same encoder"
        )
    available = db.shape[0] - (1 if self_search else 0)
    if not 1 <= k <= available:
        raise InputError(f"k must be between 1 and {available} here, got {k}")
    return q, q_norm, db, db_norm


def _run_blocks(
    search: functools.partial,
    ranges: list[tuple[int, int]],
    k: int,
    executor: Any,
    progress: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Every query block's search, here or through `executor`, gathered in query order.

    Returns (indices, distances), each of shape (n_queries, k), as `knn`.
    """
    n_queries = ranges[-1][1]
    indices = np.empty((n_queries, k), dtype=np.int64)
    distances = np.empty((n_queries, k), dtype=np.float64)

    def keep(i: int, result: tuple[np.ndarray, np.ndarray]) -> None:
        a, b = ranges[i]
        indices[a:b], distances[a:b] = result

    report = _Quiet() if progress is None else progress
    q_block = ranges[0][1] - ranges[0][0]
    report.stage(f"nearest neighbours: {len(ranges)} block(s) of {q_block} rows")
    if executor is None:
        for i, r in enumerate(ranges):
            keep(i, _Block(search)(r, report))
    else:
        executor.map(_Block(search), ranges, report, keep)
    return indices, distances


class _Block:
    """One query block's search as an executor's `fn(item, report)` (picklable for Ray)."""

    def __init__(self, search: functools.partial) -> None:
        self.search = search

    def __call__(self, bounds: tuple[int, int], report: Any) -> tuple[np.ndarray, np.ndarray]:
        result = self.search(bounds)
        report.advance(1.0)
        return result


def _prepare(x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Float32 C-contiguous rows (no copy when they already are) and their float32 norms."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty 2-D array (rows x dims), got {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    # np.linalg.norm row by row (each row's value does not depend on the chunk), in chunks
    # so that its x * x temporary stays small.
    norm = np.concatenate(
        [np.linalg.norm(x[s : s + _NORM_ROWS], axis=1) for s in range(0, len(x), _NORM_ROWS)]
    )
    # A NaN or inf makes its row's norm non-finite (so can overflow: then look closer).
    if not np.isfinite(norm).all() and not np.isfinite(x).all():
        raise InputError(f"{name} contain NaN or infinite values: drop or fill those rows")
    return x, norm


def _search_block(
    bounds: tuple[int, int],
    q: np.ndarray,
    q_norm: np.ndarray,
    db: np.ndarray,
    db_norm: np.ndarray,
    k: int,
    metric: str,
    db_block: int,
    self_search: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of queries `q[a:b]` over the whole database, one database block at a time."""
    a, b = bounds
    # Cosine: negated unit rows, so the product is -cos (smallest = nearest); negation is
    # exact, so this equals -(unit q . unit d) bit for bit.
    qb = -(q[a:b] / np.maximum(q_norm[a:b, None], _TINY)) if metric == "cosine" else q[a:b]
    # A few candidates beyond k: exact copies whose float32 distances differ by rounding
    # are all kept for `_refine` to tie and order by index.
    kc = min(k + _TIE_SLACK, db.shape[0] - (1 if self_search else 0))
    best_d = np.full((b - a, kc), np.inf, dtype=np.float32)
    best_i = np.full((b - a, kc), -1, dtype=np.int64)
    for s in range(0, db.shape[0], db_block):
        e = min(s + db_block, db.shape[0])
        if metric == "cosine":
            d = qb @ (db[s:e] / np.maximum(db_norm[s:e, None], _TINY)).T  # (b - a, e - s)
            # Clipped as the distance is ([0, 2]): rounding past +-1 ties, then by index.
            np.clip(d, -1, 1, out=d)
        else:
            # |d|^2 - 2 q.d: the distance up to a per-query constant is enough to rank.
            d = np.ascontiguousarray(qb @ db[s:e].T)
            d *= -2
            d += np.square(db_norm[s:e])
        if self_search and s < b and a < e:
            # Each query's own row lies in this block: never its own neighbour.
            own = np.arange(max(a, s), min(b, e))
            d[own - a, own - s] = np.inf
        best_d, best_i = _merge(best_d, best_i, d, s, kc)
    return _refine(q[a:b], db, best_i, k, metric)


def _refine(
    q: np.ndarray, db: np.ndarray, cand: np.ndarray, k: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of each row's candidates, by distances recomputed in float64 per pair.

    A float32 matrix product does not give two equal database rows (exact copies) the same
    value: BLAS sums a column in an order that depends on where it falls in its kernel's
    tiles and on the thread count (one in a Ray worker), so copies would tie or not by
    chance, and the order of tied neighbours would depend on the executor. Recomputed per
    pair in float64 (the same arithmetic for every pair, whatever its position), equal rows
    get equal distances, ties go to the lower index, and the expanded
    |q|^2 - 2 q.d + |d|^2 (which cancels for near duplicates) is never used for a distance.

    Parameters
    ----------
    q : ndarray of shape (n, dim), float32
        The block's queries.
    db : ndarray of shape (n_database, dim), float32
        The database.
    cand : ndarray of shape (n, c), int64
        Each query's candidates (c >= k, the float32 search's top c).
    k : int
        Neighbours to keep.
    metric : {"cosine", "l2"}

    Returns
    -------
    indices : ndarray of shape (n, k), int64
    distances : ndarray of shape (n, k), float64
    """
    dist = np.empty(cand.shape, dtype=np.float64)
    step = max(1, _REFINE_BYTES // (8 * cand.shape[1] * db.shape[1]))
    for s in range(0, q.shape[0], step):
        qs = q[s : s + step].astype(np.float64)  # (m, dim)
        ds = db[cand[s : s + step]].astype(np.float64)  # (m, c, dim)
        if metric == "cosine":
            qs /= np.maximum(np.linalg.norm(qs, axis=1), 1e-12)[:, None]
            ds /= np.maximum(np.linalg.norm(ds, axis=2), 1e-12)[:, :, None]
            cos = np.einsum("ij,ikj->ik", qs, ds)
            dist[s : s + step] = 1.0 - np.clip(cos, -1.0, 1.0)
        else:
            dist[s : s + step] = np.linalg.norm(ds - qs[:, None, :], axis=2)
    order = np.lexsort((cand, dist), axis=1)[:, :k]
    rows = np.arange(cand.shape[0])[:, None]
    return cand[rows, order], dist[rows, order]


def _merge(
    best_d: np.ndarray, best_i: np.ndarray, d: np.ndarray, offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest (distance, index) pairs per row of the running best and a new block.

    Selecting with argpartition over the whole block costs more than the matrix product;
    instead a threshold per row keeps only the few entries that can enter the top k: the
    k-th smallest of every 16th column bounds the block's k-th smallest from above (k
    entries lie at or below it), and the running k-th smallest bounds what can improve on
    the running best. Entries at or below the smaller bound, with the running best, hold
    at least k per row and every true top-k entry, ties included; among those a sort on
    (distance, index) keeps the lower index of equal distances.

    Parameters
    ----------
    best_d, best_i : ndarray of shape (n, k)
        Running distances (inf where empty) and database indices, sorted.
    d : ndarray of shape (n, width)
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
    order = np.lexsort((cand_i, cand_d), axis=1)[:, :k]
    rows = np.arange(n)[:, None]
    return cand_d[rows, order], cand_i[rows, order]
