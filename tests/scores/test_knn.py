"""The exact kNN, both backends (the blocked numpy search and faiss's flat index, refined
alike), against scikit-learn's brute force, an independent implementation, and a float64
full sort; the numpy path's block mechanics with backend="numpy"."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from scoring.errors import InputError
from scoring.scores.knn import DEFAULT_BLOCK_BYTES, knn
from scoring.training.executors import LocalExecutor


def _same_up_to_ties(ours_i, ours_d, ref_i, ref_d, atol=1e-5):
    # Distances must agree everywhere; indices may differ only where distances tie.
    np.testing.assert_allclose(ours_d, ref_d, atol=atol)
    differ = ours_i != ref_i
    if differ.any():
        assert np.all(np.abs(np.diff(ref_d, axis=1)).min() < atol)
    return (~differ).mean()


BACKENDS = ["numpy", "faiss"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_self_search_matches_sklearn_brute(metric, backend):
    x = np.random.default_rng(0).normal(size=(700, 24)).astype(np.float32)
    # Tiny block budget: many query and database blocks, so the top-k merge is exercised.
    i, d = knn(x, k=7, metric=metric, block_bytes=20_000, backend=backend)
    ref = NearestNeighbors(
        n_neighbors=7, algorithm="brute", metric="cosine" if metric == "cosine" else "euclidean"
    ).fit(x.astype(np.float64))
    ref_d, ref_i = ref.kneighbors()  # without X: each row's own index excluded
    assert _same_up_to_ties(i, d, ref_i, ref_d, atol=1e-4) == 1.0
    assert not (i == np.arange(len(x))[:, None]).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_query_database_split_matches_sklearn(backend):
    rng = np.random.default_rng(1)
    train = rng.normal(size=(300, 16))
    test = rng.normal(size=(90, 16))
    # A training row copied into the test set is its own nearest test row, at distance 0.
    test[5] = train[42]
    i, d = knn(train, test, k=3, metric="l2", block_bytes=5_000, backend=backend)
    ref_d, ref_i = NearestNeighbors(n_neighbors=3, algorithm="brute").fit(test).kneighbors(train)
    assert _same_up_to_ties(i, d, ref_i, ref_d, atol=1e-4) == 1.0
    assert i[42, 0] == 5 and d[42, 0] < 1e-3


def test_hand_computed_and_executor():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    i, d = knn(x, k=1, metric="cosine", executor=LocalExecutor(), block_bytes=100)
    # Row 0 and 1 are nearest to [1,1] (cos 1/sqrt2); [1,1] ties between 0 and 1 (the lower
    # index wins); [-1,0]'s nearest is [0,1] (cos 0) before [1,1] (cos -1/sqrt2).
    assert i[:, 0].tolist() == [2, 2, 0, 1]
    np.testing.assert_allclose(d[:, 0], [1 - 2**-0.5, 1 - 2**-0.5, 1 - 2**-0.5, 1.0], atol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_the_backends_give_the_same_neighbours_and_distances(metric):
    """faiss proposes the candidates, the same float64 refinement orders them: identical
    output, exact copies, zero rows and a separate database included."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 12)).astype(np.float32)
    x[[300, 900]] = x[11]  # copies: ties broken by index
    x[::97] = 0
    y = rng.normal(size=(150, 12)).astype(np.float32)
    for db, k in ((None, 10), (y, 5)):
        a = knn(x, db, k=k, metric=metric, backend="numpy")
        b = knn(x, db, k=k, metric=metric, backend="faiss")
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        if db is None:  # a copy's nearest rows are its copies, at 0, lower index first
            assert b[0][300, :2].tolist() == [11, 900] and b[1][300, 0] < 1e-12


def test_auto_uses_the_blocked_search_without_faiss_and_faiss_asked_is_refused(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    x = np.random.default_rng(6).normal(size=(200, 8)).astype(np.float32)
    i, _ = knn(x, k=3)  # auto: the numpy search
    np.testing.assert_array_equal(i, knn(x, k=3, backend="numpy")[0])
    with pytest.raises(InputError, match="requirements-faiss.txt"):
        knn(x, k=3, backend="faiss")


def test_bad_input():
    with pytest.raises(InputError, match="k must be"):
        knn(np.ones((3, 2)), k=3)
    with pytest.raises(InputError, match="metric"):
        knn(np.ones((3, 2)), k=1, metric="manhattan")
    with pytest.raises(InputError, match="columns"):
        knn(np.ones((3, 2)), np.ones((3, 4)), k=1)
    with pytest.raises(InputError, match="backend"):
        knn(np.ones((3, 2)), k=1, backend="annoy")


def test_memory_bounded_by_the_block():
    # 20,000 rows: a full distance matrix would be 1.6 GB; numpy reports its buffers to
    # tracemalloc, so the traced peak is the search's own working memory.
    import tracemalloc

    x = np.random.default_rng(2).normal(size=(20_000, 32)).astype(np.float32)
    tracemalloc.start()
    knn(x, k=10, block_bytes=2 * 2**20, backend="numpy")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    outputs = 20_000 * 10 * (8 + 8)  # indices int64 + distances float64
    assert peak < outputs + 8 * 2**20, peak / 2**20


def _reference(x: np.ndarray, y: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full cosine matrix from unit rows, stable sort: nearest first, ties to lower index.

    In float64, one pair at a time (einsum's own loop, no BLAS tiling): equal rows get
    equal distances, as `knn` promises.
    """
    unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # noqa: E731
    xn = unit(x.astype(np.float64))
    yn = xn if y is None else unit(y.astype(np.float64))
    full = 1.0 - np.clip(np.einsum("id,jd->ij", xn, yn), -1.0, 1.0)
    if y is None:
        np.fill_diagonal(full, np.inf)
    order = np.argsort(full, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(full, order, axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block_bytes", [3_000, 60_000, DEFAULT_BLOCK_BYTES])
def test_ties_go_to_the_lower_index_whatever_the_blocks(block_bytes, backend):
    # Coarse values: many rows are exact copies or parallel (cosine ties), so the order
    # among equal distances decides the result; it must be the stable full sort's.
    rng = np.random.default_rng(3)
    x = rng.integers(-1, 2, size=(400, 3)).astype(np.float32)
    x[::7] = 0  # zero rows: distance 1 from everything
    y = rng.integers(-1, 2, size=(50, 3)).astype(np.float32)
    for db, k in ((None, 6), (y, 4)):
        i, d = knn(x, db, k=k, block_bytes=block_bytes, backend=backend)
        ref_i, ref_d = _reference(x, db, k)
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_allclose(d, ref_d, rtol=0, atol=1e-12)


def test_progress_counts_the_blocks():
    class Sink:
        done, stages = 0.0, []

        def advance(self, amount=1.0):
            self.done += amount

        def stage(self, message):
            self.stages.append(message)

    sink = Sink()
    knn(
        np.random.default_rng(4).normal(size=(100, 4)),
        k=2,
        block_bytes=6 * 100 * 30,
        progress=sink,
        backend="numpy",
    )
    assert sink.done == 4  # 30-row query blocks: 30 + 30 + 30 + 10
    assert sink.stages == ["nearest neighbours: 4 block(s) of 30 rows"]


def test_exact_copies_tie_whatever_the_blas_threads():
    """Copies are ordered by index with one BLAS thread or several (as in a Ray worker).

    A float32 product gives equal rows values that differ in the last bit depending on
    the BLAS tiling and thread count; before distances were recomputed per pair, this
    query's copies came out as 700, 1400 with the default threads and 3, 700 with one.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 16)).astype(np.float32)
    x[700] = x[3]
    x[1400] = x[3]
    budget = 6 * 1500 * 200
    i_many, d_many = knn(x, k=5, block_bytes=budget)
    with threadpool_limits(1):
        i_one, d_one = knn(x, k=5, block_bytes=budget)
    np.testing.assert_array_equal(i_many, i_one)
    np.testing.assert_array_equal(d_many, d_one)
    copies = i_many[455][np.isin(i_many[455], [3, 700, 1400])]
    np.testing.assert_array_equal(copies, np.sort(copies))
    assert copies[0] == 3
