"""Prototypicality: distance to the nearest k-means centroid of label-independent embeddings.

Sorscher, Geirhos, Shekhar, Ganguli, Morcos, "Beyond neural scaling laws: beating power law
scaling via data pruning" (NeurIPS 2022).
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import FloatArray, checked

PROTOTYPE_DOC = """\
**Prototype distance** — k-means on **label-independent** embeddings of the training set,
then each example's distance to its nearest centroid. Computed once per run folder (not per
training run): it never sees a label, so two label-noise draws of the same data give the
same column, and its AUROC for injected label noise is chance by construction.

The embeddings (`features_free`), as Sorscher et al. use self-supervised ones:
- `probe`: the frozen encoder's embeddings the probe trains on;
- `finetune`: the same pre-trained encoder's mean-pooled embeddings, before fine-tuning;
- `tfidf`: the table it trains on, word 1-2-gram TF-IDF reduced to 512 SVD components
  (fitted on the training texts without their labels);
- images without an encoder: the raw pixels, flattened (a seeded Gaussian projection to 256
  dimensions when there are more). Chosen by measurement on digits with 10% label noise
  (AUROC of ranking 71 injected atypical images above the 1,438 training images;
  `bench/prototype_embeddings.py`):
  raw pixels 0.79 / 0.89 / 0.81 (upside-down digits / rotated digits / uniform noise);
  an untrained network's features 0.73 / 0.87 / 0.88 (mean of 5 seeds, seed-dependent:
  rotated 0.72–0.95); PCA of the pixels hides what lies off the training subspace
  (rotated digits 0.23–0.70). Label-noise AUROC 0.50–0.54 for all (null σ 0.026); on raw
  pixels the score agrees with the mean distance to the 10 nearest neighbours at
  Spearman 0.72.

Embeddings are L2-normalised first, as Sorscher et al. do, so the distance measures
direction (cosine-like) rather than scale. The number of clusters is the run's
`n_prototypes` (by default the number of classes). The initial centroids are chosen from the
data by a rule that does not depend on row order (evenly spaced rows along the top principal
component), so the score is deterministic.

**Higher = harder**: far from every prototype means atypical. Sorscher et al. keep the hard
(far) examples when data is plentiful and the easy (near) ones when it is scarce. It ranks
atypical *inputs*, not wrong labels: use it beside the label-dependent scores, not for noise.

Source: Sorscher, Geirhos, Shekhar, Ganguli & Morcos, *Beyond neural scaling laws: beating
power law scaling via data pruning*, NeurIPS 2022.
"""


def prototype(*, features_free: npt.ArrayLike, n_prototypes: int) -> FloatArray:
    """Per-example distance to the nearest k-means centroid of label-independent embeddings.

    Parameters
    ----------
    features_free : ndarray of shape (n_examples, n_features)
        Embeddings of the training set that no label has touched (frozen encoder, or
        pixels; see `PROTOTYPE_DOC`).
    n_prototypes : int
        Number of k-means clusters; clipped to the number of distinct (normalised) rows.

    Returns
    -------
    ndarray of shape (n_examples,)
        Euclidean distance from each L2-normalised embedding to the nearest centroid.
        Higher means less typical.
    """
    features, n_prototypes = checked(features_free=features_free, n_prototypes=n_prototypes)
    return _nearest_centroid_distance(features, n_prototypes)


def _nearest_centroid_distance(features: np.ndarray, n_prototypes: int) -> FloatArray:
    """(N, D) embeddings -> (N,) distances to the nearest of the k-means centroids."""
    x = features.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)  # an all-zero row stays at the origin
    # Work in a canonical (lexicographic) row order: every step below is then a function of
    # the set of rows, not their order, so permuting the examples permutes the output exactly.
    order = _lex_order(x)
    x = x[order]  # (N, D) sorted by column 0, then 1, ...
    init = _spread_init(x, n_prototypes)
    # Imported here: scikit-learn takes seconds to import, and commands that only read a run
    # import this module through the registry.
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    km = KMeans(n_clusters=len(init), init=init, n_init=1)
    with warnings.catch_warnings():
        # Rows equal up to rounding (the same direction at two scales) count as distinct, so
        # two centroids can merge; the nearest-centroid distance is unaffected.
        warnings.filterwarnings(
            "ignore", message="Number of distinct clusters", category=ConvergenceWarning
        )
        dist_sorted = km.fit_transform(x).min(axis=1)  # (N,)
    dist = np.empty_like(dist_sorted)
    dist[order] = dist_sorted
    return dist


def _lex_order(x: np.ndarray) -> np.ndarray:
    """Row order that sorts x lexicographically (column 0 first)."""
    # np.lexsort on all D columns makes D sorting passes (seconds for D = 512); continuous
    # features almost never tie on the first few, so sort on those and refine only the ties.
    head = min(x.shape[1], 3)
    order = np.lexsort(x[:, :head].T[::-1])
    if head == x.shape[1]:
        return order
    lead = x[order, :head]
    ties = np.r_[False, np.all(lead[1:] == lead[:-1], axis=1)]  # ties with the row before
    if not ties.any():
        return order
    group = np.cumsum(~ties)  # (N,) id of each run of tied rows, in sorted position
    pos = np.flatnonzero(ties | np.r_[ties[1:], False])  # positions inside runs of ties
    keys = np.vstack([x[order[pos]].T[::-1], group[pos]])  # last key (group) is primary
    order[pos] = order[pos][np.lexsort(keys)]
    return order


def _spread_init(x: np.ndarray, n_prototypes: int) -> np.ndarray:
    """Evenly spaced quantile rows of the distinct rows of lex-sorted x along the top PC."""
    distinct = np.r_[True, np.any(x[1:] != x[:-1], axis=1)]  # x is sorted, so dups are adjacent
    rows = x[distinct]  # (M, D), still lexicographic
    k = min(n_prototypes, len(rows))
    centered = x - x.mean(axis=0)
    _, vecs = np.linalg.eigh(centered.T @ centered)  # ascending eigenvalues
    top = vecs[:, -1]
    top = top * np.sign(top[np.argmax(np.abs(top))])  # fix the sign eigh leaves free
    # Stable sort on lexicographic rows: ties in projection are broken on feature values.
    ranked = rows[np.argsort(rows @ top, kind="stable")]
    # Midpoints of k equal slices; spacing M/k >= 1 makes the k indices distinct.
    idx = (2 * np.arange(k) + 1) * len(rows) // (2 * k)
    return ranked[idx]
