"""Neighbourhood issues on the label-free embeddings: near duplicates, outliers, leakage.

All three read `features_free` (the run folder's label-independent embeddings,
`scoring.training.free_features`) under the cosine distance ``1 - cos(x_i, x_j)``; `leakage`
also reads `features_free_test`, the held-out/test rows' embeddings by the same transform.
Vectors are centred on the training rows' mean first, except for `outlier` (cleanlab
Datalab's uncentred ranking, which finds out-of-distribution images far better: see its
docstring). Neighbours are exact: the package's
one blocked kNN (`scoring.scores.knn`: float32 matrix products in blocks, never an N x N
matrix; ties to the lower index).

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

The groups and leaks of an image run (`dup_groups`, `leak_of` given the pixels, images of
`MIN_SHIFT_SIDE` = 16 pixels a side or more) ask the pixels instead: a near copy is a pair
that matches after a shift of a few pixels (`shifted_pairs`, the same calibration on
registered distances). On CIFAR-10 with injected copies (bench/duplicates.py) this found
96-98% of shifted + re-encoded copies where the embeddings' threshold found 2-14%, and
dropped the unrelated look-alikes that threshold joins on pixel embeddings (dark scenes,
sky). The scores themselves stay as above.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.machine import cpu_threads
from scoring.scores._checks import FloatArray, checked
from scoring.scores.knn import knn

EPS = 1e-6  # floor on a cosine distance in the log: exact copies land at log(EPS)
Z_NEAR = 3.0  # robust z-score below which a nearest-neighbour distance is a near duplicate
NEAR_FRACTION = 0.5  # and at most this fraction of the median nearest-neighbour distance
K_OUTLIER = 10  # neighbours averaged by `outlier` (cleanlab's Datalab OutOfDistribution k)
K_PAIRS = 5  # neighbours per row examined for near-duplicate pairs
K_SHIFT = 5  # candidates per row checked for a shifted copy (`shifted_pairs`)
SHIFT_SIDE = 32  # images are pooled to at most this side before matching shifted copies
MIN_SHIFT_SIDE = 16  # smaller images keep the embeddings' threshold (`_pixels_comparable`)
_PAIR_BLOCK = 2048  # image pairs compared at a time

NEAR_DUP_DOC = """\
**Near duplicate** (label-free) — how unusually close a row is to its nearest other training
row: the negated robust z-score of the log cosine distance to that neighbour, on the run's
label-independent embeddings. **Higher = more duplicated** (exact copies score highest). The
score ranks; the flag is one rule, `dup_group` (rows in one duplicate group share it): on
the embeddings, a row whose score is ≥ 3 *and* whose nearest distance is at most half the
median nearest distance; on images of 16 px or more, a copy after a shift of up to 3 px.
"""

OUTLIER_DOC = """\
**Outlier** (label-free) — the mean cosine distance to the 10 nearest other training rows
on the run's label-independent embeddings, as they are (not centred): the ranking of
cleanlab's Datalab outlier check. **Higher = more outlying**: far from anything else in
the data.
"""

LEAKAGE_DOC = """\
**Leakage** (label-free) — how close a training row is to its nearest held-out/test row,
as a robust z-score against the training rows' own nearest-neighbour distances (negated).
**Higher = closer to a test row**. The flag is `leak_of` (it names the test row), by the
same rule as `dup_group`: ≥ 3 and at most half the median nearest distance on the
embeddings, a shifted copy on images of 16 px or more, or an exact copy. A leaked row
inflates test accuracy.
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
    d, _ = _knn(x, 1)
    return -_robust_z(d[:, 0], d[:, 0])


def outlier(*, features_free: npt.ArrayLike) -> FloatArray:
    """Mean cosine distance to the `K_OUTLIER` nearest other rows, on uncentred features.

    The average distance cleanlab's Datalab outlier check ranks by (its score is
    ``exp(-distance / median)``: the same order), computed by the blocked kNN instead of
    scikit-learn's. Not centred, unlike `near_dup`: on CIFAR-10 with injected
    out-of-distribution images (bench/duplicates.py), the centred distance ranked them
    with ROC AUC 0.61, this one with 0.89 (as Datalab).

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
    _, d = knn(x, k=min(K_OUTLIER, x.shape[0] - 1), metric="cosine")
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
    d_self, _ = _knn(x, 1)
    d_test, _ = _knn(x, 1, y)
    return -_robust_z(d_test[:, 0], d_self[:, 0])


# -- neighbours, groups and leaks (what `scores.parquet`'s columns hold) -------------------------


def _knn(x: np.ndarray, k: int, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances (n, k) and indices (n, k) of each row's k nearest rows of `y`
    (or of `x`, itself excluded), both sides centred on `x`'s mean (`scoring.scores.knn`)."""
    # Centred on the searched rows' mean: uncentred pixels (all positive) or anisotropic
    # text embeddings put every pair at a small cosine distance and blur the tail.
    # The query rows are the training rows in every use here, so both sides share their mean.
    key = None
    if y is None:  # the self-search near_dup and leakage both make
        key = _digest(x)
        hit = _SELF_SEARCH.pop(key, None)
        if hit is not None:
            _SELF_SEARCH[key] = hit  # now the most recently used
            if hit[0].shape[1] >= k:
                return hit[0][:, :k].copy(), hit[1][:, :k].copy()
    x64 = np.asarray(x, dtype=np.float64)
    mu = x64.mean(axis=0)
    xc = (x64 - mu).astype(np.float32)
    yc = None if y is None else (np.asarray(y, dtype=np.float64) - mu).astype(np.float32)
    # A self-search goes to K_PAIRS neighbours at once (about the cost of 1): the nearest
    # k of them are the k-search's own result, ties included (`knn` is exact).
    wide = k if key is None else max(k, min(K_PAIRS, x64.shape[0] - 1))
    index, dist = knn(xc, yc, k=wide, metric="cosine")
    if key is not None:
        _SELF_SEARCH.pop(key, None)
        _SELF_SEARCH[key] = (dist, index)
        while len(_SELF_SEARCH) > _SELF_SEARCH_ENTRIES:  # drop the least recently used
            del _SELF_SEARCH[next(iter(_SELF_SEARCH))]
    return dist[:, :k].copy(), index[:, :k].copy()


# The last self-searches, by the content of the rows searched (`_digest`), least recently
# used first: a run's near_dup, leakage and pixel check search the same training
# embeddings, 20-30 s each at 50,000 x 1,280; the pixel check also searches its perceptual
# vectors in between, hence two entries (a few MB each at 50,000 rows).
_SELF_SEARCH: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_SELF_SEARCH_ENTRIES = 2


def _digest(x: np.ndarray) -> str:
    """A hash of an array's values, dtype and shape (a quarter of a second per GB)."""
    x = np.ascontiguousarray(x)
    head = f"{x.dtype.str}{x.shape}".encode()
    return hashlib.blake2b(head + memoryview(x).cast("B"), digest_size=16).hexdigest()


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
    inputs : ndarray of shape (n, channels, height, width), or sequence of n texts (str,
        or (str, str) pairs)
        Float pixels in [0, 1] (hashed as their uint8 rounding) or integer pixels.

    Returns
    -------
    list of n str
        Equal keys = equal content. Text is lowercased with whitespace collapsed.
    """
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "fui":
        pixels = inputs
        if inputs.dtype.kind == "f":
            pixels = np.clip(np.rint(inputs * 255), 0, 255).astype(np.uint8)
        return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in pixels]
    keys = []
    for item in inputs:
        parts = item if isinstance(item, tuple) else (item,)
        text = "\x1f".join(" ".join(str(p).lower().split()) for p in parts)
        keys.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
    return keys


def dup_groups(
    features: np.ndarray,
    keys: Sequence[str],
    images: np.ndarray | None = None,
    shift: ShiftIndex | None = None,
) -> np.ndarray:
    """Duplicate groups: exact copies by content, joined with near-duplicate pairs.

    Parameters
    ----------
    features : ndarray of shape (n, d)
        The label-free embeddings.
    keys : sequence of n str
        `content_keys` of the same rows.
    images : ndarray of shape (n, channels, height, width), optional
        The decoded pixels (any numeric dtype). Given (and at least `MIN_SHIFT_SIDE`
        pixels a side), a near copy is a pair whose pixels match up to a shift of a few
        pixels (`shifted_pairs`) instead of a pair nearer than the embeddings' threshold,
        which on pixels also joins unrelated images of a similar layout
        (bench/duplicates.py).
    shift : ShiftIndex, optional
        `shift_index(images, features)`, when already computed.

    Returns
    -------
    ndarray of shape (n,), int64
        Group number (0, 1, ... in the order of each group's first row), −1 for a row with
        no duplicate. Groups are connected components of the "exact copy or near copy"
        graph; a near copy is, without `images`, one of a row's `K_PAIRS` nearest
        neighbours nearer than `near_threshold`.
    """
    n = len(keys)
    sets = _UnionFind(n)
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            sets.union(first[key], i)
        else:
            first[key] = i
    if _pixels_comparable(images):
        # Images: near copies are confirmed by their pixels (`shifted_pairs`, which also
        # takes the embeddings' neighbours as candidates).
        for i, j in shifted_pairs(images, features=features, shift=shift):
            sets.union(i, j)
    elif n > 1:
        dist, index = _knn(np.asarray(features), min(K_PAIRS, n - 1))
        tau = near_threshold(dist[:, 0])
        for i, j in zip(*np.nonzero(dist <= tau), strict=True):
            sets.union(int(i), int(index[i, j]))
    return sets.group_numbers()


class _UnionFind:
    """Disjoint sets of the rows 0..n-1 (path halving; a set's root is its lowest row)."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def group_numbers(self) -> np.ndarray:
        """(n,) int64: sets of two or more rows numbered 0, 1, ... in the order of their
        first row; −1 for a row alone."""
        n = self.parent.shape[0]
        roots = np.array([self.find(i) for i in range(n)], dtype=np.int64)
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
    images: np.ndarray | None = None,
    test_images: np.ndarray | None = None,
    shift: ShiftIndex | None = None,
) -> np.ndarray:
    """The held-out/test row each training row leaks, −1 for none.

    A leak is an exact content copy of a test row, or a near copy: with `images`, a test
    row whose pixels match up to a shift of a few pixels (`shifted_pairs`, on the training
    rows' own threshold); without, the nearest test row when nearer than the
    near-duplicate threshold of the training rows' own distances (`near_threshold`).

    Parameters
    ----------
    features : ndarray of shape (n, d)
    keys : sequence of n str
    test_features : ndarray of shape (m, d)
    test_keys : sequence of m str
    test_ids : ndarray of shape (m,)
    images, test_images : ndarray of shape (n, channels, height, width) and (m, ...), optional
        The decoded pixels of both sides (any numeric dtype).
    shift : ShiftIndex, optional
        `shift_index(images, features)`, when already computed (`dup_groups` needs it too).

    Returns
    -------
    ndarray of shape (n,), int64
        The test row's id (the exact copy's first, else the near copy's), or −1.
    """
    n = len(keys)
    out = np.full(n, -1, dtype=np.int64)
    if len(test_keys) == 0 or n == 0:
        return out
    test_ids = np.asarray(test_ids, dtype=np.int64)
    if _pixels_comparable(images) and test_images is not None:
        for i, j in shifted_pairs(images, test_images, features, test_features, shift):
            out[i] = test_ids[j]
    elif n > 1:
        d_test, i_test = _knn(np.asarray(features), 1, np.asarray(test_features))
        tau = near_threshold(_knn(np.asarray(features), 1)[0][:, 0])
        near = d_test[:, 0] <= tau
        out[near] = test_ids[i_test[near, 0]]
    exact: dict[str, int] = {}
    for j, key in enumerate(test_keys):
        exact.setdefault(key, j)
    for i, key in enumerate(keys):
        if key in exact:
            out[i] = test_ids[exact[key]]
    return out


@dataclass(frozen=True)
class ShiftIndex:
    """The training rows' side of `shifted_pairs`, computed once (`shift_index`) and
    shared by the duplicate groups and the leaks, which both calibrate on it.

    Attributes
    ----------
    small : ndarray of shape (n, channels, h, w)
        The pixels pooled to at most `SHIFT_SIDE` a side.
    feats : ndarray of shape (n, p), float32
        Their `perceptual_features`.
    index : ndarray of shape (n, k), int64
        Each row's candidates (perceptual and embedding neighbours).
    reg : ndarray of shape (n, k)
        Each candidate pair's registered distance.
    tau : float
        The copy threshold (`near_threshold` of each row's smallest registered distance).
    """

    small: np.ndarray
    feats: np.ndarray
    index: np.ndarray
    reg: np.ndarray
    tau: float


def shift_index(images: np.ndarray, features: np.ndarray | None = None) -> ShiftIndex | None:
    """The training rows' `ShiftIndex`; None where pixels are not compared
    (`_pixels_comparable`). See `shifted_pairs` for what each part is."""
    if not _pixels_comparable(images):
        return None
    n = len(images)
    small = _pooled(images)
    feats = perceptual_features(small)
    index = _knn(feats, min(K_SHIFT, n - 1))[1]
    if features is not None:
        index = np.hstack([index, _knn(np.asarray(features), min(K_PAIRS, n - 1))[1]])
    reg = _registered_pairs(small, small, index)  # (n, k)
    return ShiftIndex(small, feats, index, reg, near_threshold(reg.min(axis=1)))


def shifted_pairs(
    images: np.ndarray,
    others: np.ndarray | None = None,
    features: np.ndarray | None = None,
    other_features: np.ndarray | None = None,
    shift: ShiftIndex | None = None,
) -> list[tuple[int, int]]:
    """Pairs that are one picture up to a shift of a few pixels and a re-encoding.

    Cosine neighbours on raw pixels or a random encoder miss a copy shifted by 1-3 pixels
    and saved as JPEG (bench/duplicates.py: 2-14% of them at the embeddings' threshold),
    although it is among a row's 5 nearest rows 86-96% of the time (pixels, blurred
    pixels); and on pixels the embeddings' threshold also joins unrelated images of a
    similar layout (dark scenes, sky). So each row's `K_SHIFT` nearest rows on blurred,
    subsampled pixels (`perceptual_features`, robust to the shift), and its `K_PAIRS`
    nearest by the run's embeddings, are candidates, and each candidate pair is measured by
    its registered distance: the smallest mean squared difference of the two images'
    interiors over every shift of up to side // 10 pixels (3 px at 32 x 32). A pair is a
    copy when that distance is below `near_threshold` of the training rows' smallest
    registered distances to their candidates: natural neighbours stay apart under every
    shift; copies come down to the re-encoding noise.

    Parameters
    ----------
    images : ndarray of shape (n, channels, height, width)
        Training rows' pixels, any numeric dtype (the threshold is scale-free).
    others : ndarray of shape (m, channels, height, width), optional
        Held-out/test rows' pixels: pairs (training row, its best-matching test row) are
        returned instead, on the training rows' threshold.
    features, other_features : ndarray of shape (n, d) and (m, d), optional
        The run's embeddings of both sides: their neighbours are candidates too.
    shift : ShiftIndex, optional
        `shift_index(images, features)`, when already computed (it is the costly part).

    Returns
    -------
    list of (int, int)
        (i, j) with i < j among `images`, or (i, test row j); ascending.
    """
    if shift is None:
        shift = shift_index(images, features)
    if shift is None:
        return []
    if others is None:
        rows, cols = np.nonzero(shift.reg <= shift.tau)
        pairs = {
            tuple(sorted((int(i), int(shift.index[i, c])))) for i, c in zip(rows, cols, strict=True)
        }
        return sorted(pairs)
    return _shifted_test_pairs(
        shift.small, shift.feats, shift.tau, others, features, other_features
    )


def _shifted_test_pairs(
    small: np.ndarray,
    feats: np.ndarray,
    tau: float,
    others: np.ndarray,
    features: np.ndarray | None,
    other_features: np.ndarray | None,
) -> list[tuple[int, int]]:
    """(training row i, its best-matching test row j) for each i whose best registered
    distance is within the training rows' threshold `tau` (`shifted_pairs` with `others`).

    `small` and `feats` are the training rows' pooled pixels and perceptual features.
    """
    if len(others) == 0:
        return []
    small_t = _pooled(others)
    index_t = _knn(feats, min(K_SHIFT, len(others)), perceptual_features(small_t))[1]
    if features is not None and other_features is not None:
        near_t = _knn(np.asarray(features), min(K_PAIRS, len(others)), other_features)[1]
        index_t = np.hstack([index_t, near_t])
    reg_t = _registered_pairs(small, small_t, index_t)  # (n, k)
    best = reg_t.argmin(axis=1)  # the first of equal distances: the nearest candidate
    hit = reg_t[np.arange(small.shape[0]), best] <= tau
    return [(int(i), int(index_t[i, best[i]])) for i in np.nonzero(hit)[0]]


def _pixels_comparable(images: np.ndarray | None) -> bool:
    """Whether `shifted_pairs` applies: two or more images of at least `MIN_SHIFT_SIDE`
    pixels a side. On smaller ones a one-pixel shift is an eighth of the image: on
    scikit-learn's 8x8 digits, different writers' "1"s matched (6 groups, 8 leaks where
    the embeddings' threshold found 1 and 1)."""
    return images is not None and len(images) > 1 and min(images.shape[-2:]) >= MIN_SHIFT_SIDE


def perceptual_features(images: np.ndarray) -> np.ndarray:
    """Blurred, subsampled pixels: what a shift of a few pixels or a JPEG re-encoding
    barely moves (candidates for `shifted_pairs`).

    Parameters
    ----------
    images : ndarray of shape (n, channels, height, width), any numeric dtype

    Returns
    -------
    ndarray of shape (n, channels * ceil(height / 2) * ceil(width / 2)), float32
        Each channel blurred by a Gaussian of sigma = side / 16 (2 px at 32 x 32), every
        other pixel kept.
    """
    from scipy.ndimage import gaussian_filter

    sigma = max(min(images.shape[-2:]) / 16, 0.5)
    out = []
    for start in range(0, len(images), _PAIR_BLOCK):
        block = np.asarray(images[start : start + _PAIR_BLOCK], dtype=np.float32)
        blurred = gaussian_filter(block, (0, 0, sigma, sigma))[:, :, ::2, ::2]
        out.append(blurred.reshape(len(block), -1))
    return np.concatenate(out)


def _pooled(images: np.ndarray) -> np.ndarray:
    """Images mean-pooled by an integer factor to a side of at most `SHIFT_SIDE` (copied
    only when pooled; integer pixels stay integers)."""
    images = np.asarray(images)
    f = -(-max(images.shape[-2:]) // SHIFT_SIDE)  # ceil
    if f == 1:
        return images
    n, c, h, w = images.shape
    h, w = h // f * f, w // f * f
    out = np.empty((n, c, h // f, w // f), dtype=images.dtype)
    for start in range(0, n, _PAIR_BLOCK):
        block = np.asarray(images[start : start + _PAIR_BLOCK, :, :h, :w], dtype=np.float32)
        pooled = block.reshape(len(block), c, h // f, f, w // f, f).mean(axis=(3, 5))
        out[start : start + _PAIR_BLOCK] = np.rint(pooled) if out.dtype.kind in "ui" else pooled
    return out


def _registered_pairs(a: np.ndarray, b: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(n, k): for each row i of `a` and candidate `index[i, c]` of `b`, the smallest mean
    squared difference of the interiors over shifts of up to `max_shift` pixels.

    Blocks of pairs are independent and numpy releases the GIL in their arithmetic, so they
    run on one thread per core (`machine.cpu_threads`), with the same numbers.
    """
    n, k = index.shape
    s = max(1, min(a.shape[-2:]) // 10)  # 3 px at 32 x 32, 1 px at 8 x 8
    # A pair found by both candidate lists is compared once.
    flat, back = np.unique(np.repeat(np.arange(n), k) * len(b) + index.ravel(), return_inverse=True)
    rows, cols = np.divmod(flat, len(b))
    out = np.empty(len(flat))

    def block(start: int) -> None:
        r, c = rows[start : start + _PAIR_BLOCK], cols[start : start + _PAIR_BLOCK]
        x = np.asarray(a[r], dtype=np.float32)  # (p, C, H, W)
        y = np.asarray(b[c], dtype=np.float32)
        h, w = x.shape[-2:]
        core = x[..., s : h - s, s : w - s]
        best = np.full(len(r), np.inf, dtype=np.float32)
        for dy in range(-s, s + 1):
            for dx in range(-s, s + 1):
                diff = core - y[..., s + dy : h - s + dy, s + dx : w - s + dx]
                np.minimum(best, np.einsum("pchw,pchw->p", diff, diff), out=best)
        out[start : start + _PAIR_BLOCK] = best / core[0].size

    starts = range(0, len(flat), _PAIR_BLOCK)
    workers = cpu_threads()
    if workers == 1 or len(starts) == 1:
        for start in starts:
            block(start)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(block, starts))  # list(): re-raises a block's error here
    return out[back].reshape(n, k)


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


def _mad(logs: np.ndarray) -> float:
    """1.4826 x median absolute deviation, floored so a constant input does not divide by 0."""
    return max(1.4826 * float(np.median(np.abs(logs - np.median(logs)))), 1e-3)


def _robust_z(values: np.ndarray, reference: np.ndarray) -> FloatArray:
    """Robust z-scores of log(values + EPS) against log(reference + EPS)."""
    ref = np.log(np.asarray(reference, np.float64) + EPS)
    med = float(np.median(ref))
    return (np.log(np.asarray(values, np.float64) + EPS) - med) / _mad(ref)
