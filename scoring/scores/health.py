"""Dataset-level issues of a run: overlapping classes, weak slices, a non-IID row order.

What `health.json` holds (`store.RunDir.write_health`), computed once at the end of scoring
from arrays the run already has, so no page computes anything on load:

- **overlapping classes** — cleanlab's `find_overlapping_classes` on the out-of-fold
  probabilities and the given labels (pairs of classes the data does not separate, from the
  confident joint), and `rank_classes_by_label_quality` (per-class label quality). A pair is
  *flagged* when its overlapping examples are at least `OVERLAP_MIN_SHARE` (5%) of the
  pair's rows: "cat/dog: 6% of their rows look like the other class".
- **weak slices** (Datalab's `underperforming_group`) — clusters of the label-free embeddings
  (`features_free`) whose out-of-fold predictions are far worse than the rest. The quality of
  a cluster is Datalab's: the mean self-confidence p_oof(given label) of its rows divided by
  the mean over all rows. Datalab clusters with DBSCAN on the 10-NN graph and flags only its
  worst cluster under 0.1; on digits' pixels that puts 1,755 of 1,797 rows in one cluster
  (measured), so it finds no slice at all. Here the clusters are k-means' on the
  L2-normalised embeddings (about sqrt(N) of them, seeded), and every cluster of at least
  `MIN_SLICE` (Datalab's `min_cluster_samples`, 5) rows whose quality ratio is below
  `SLICE_RATIO` (0.5: its rows get less than half the probability the average row gets for
  its own label) is a weak slice, with its size, out-of-fold accuracy and rows.
- **non-IID order** — Datalab's `non_iid` issue manager, called as it is (cleanlab's own
  code): a permutation test of whether neighbours on the 10-NN graph of the embeddings sit
  closer together in row order than chance; flagged at p < `NON_IID_P` (0.05, Datalab's
  `significance_threshold`).

Pure numpy / scikit-learn / cleanlab: no torch, no file access (the pipeline reads the arrays
and writes the record).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.scores._checks import checked

# Importing cleanlab silences every warning of the process (a Datalab module calls
# `warnings.filterwarnings("ignore")`): import it with the filter list saved and restored.
with warnings.catch_warnings():
    from cleanlab import Datalab
    from cleanlab.dataset import find_overlapping_classes, rank_classes_by_label_quality

HEALTH_VERSION = 1  # enters the record; bump when a definition below changes
OVERLAP_MIN_SHARE = 0.05  # a pair is flagged when >= 5% of its rows look like the other class
MAX_PAIRS = 20  # pairs kept besides the flagged ones (the closest unflagged ones, for context)
SLICE_RATIO = 0.5  # a weak slice: mean p_oof(given) under half the dataset's
MIN_SLICE = 5  # Datalab's min_cluster_samples
MINIBATCH_FROM = 20_000  # rows from which k-means runs in mini-batches (seconds, not minutes)
NON_IID_K = 10  # Datalab's default k for the non_iid kNN graph
NON_IID_P = 0.05  # Datalab's significance_threshold
SEED = 0  # k-means and the permutation test: a dataset's report is the same every time


def overlapping_classes(
    *, labels: npt.ArrayLike, oof_probs: npt.ArrayLike, min_share: float = OVERLAP_MIN_SHARE
) -> dict[str, Any]:
    """Pairs of classes the data does not separate, and each class's label quality.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
        The given labels.
    oof_probs : ndarray of shape (n_examples, n_classes)
        Out-of-fold probabilities (no model saw the row it predicts).
    min_share : float
        A pair is flagged when its overlapping examples are at least this share of its rows.

    Returns
    -------
    dict
        `pairs`: the flagged pairs and the `MAX_PAIRS` closest others, by `share` (most
        overlapping first), each `classes` [a, b] (a < b), `n_overlapping` (cleanlab's
        "Num Overlapping Examples": rows given one class that the confident joint puts in
        the other),
        `joint_probability`, `share` (n_overlapping / rows given a or b) and `flagged`;
        `class_quality`: per class `class`, `n`, `label_issues`, `inverse_label_issues`,
        `label_noise`, `inverse_label_noise`, `quality` (cleanlab's columns), worst first;
        `min_share`.
    """
    labels, oof_probs = checked(labels=labels, oof_probs=oof_probs)
    return _compute_overlaps(labels, oof_probs, min_share)


def _compute_overlaps(labels: np.ndarray, probs: np.ndarray, min_share: float) -> dict[str, Any]:
    counts = np.bincount(labels, minlength=probs.shape[1])  # (K,)
    probs = np.asarray(probs, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes it finds no issue in
        found = find_overlapping_classes(labels=labels, pred_probs=probs)
        ranked = rank_classes_by_label_quality(labels=labels, pred_probs=probs)
    pairs = []
    columns = ["Class Index A", "Class Index B", "Num Overlapping Examples", "Joint Probability"]
    for a, b, n, joint in found[columns].itertuples(index=False):
        a, b = sorted((int(a), int(b)))
        share = float(n) / max(int(counts[a] + counts[b]), 1)
        pairs.append(
            {
                "classes": [a, b],
                "n_overlapping": int(n),
                "joint_probability": float(joint),
                "share": share,
                "flagged": bool(n > 0 and share >= min_share),
            }
        )
    pairs.sort(key=lambda p: (-p["share"], -p["n_overlapping"], p["classes"]))
    flagged = [p for p in pairs if p["flagged"]]
    others = [p for p in pairs if not p["flagged"] and p["n_overlapping"] > 0][:MAX_PAIRS]
    quality = [
        {
            "class": int(row["Class Index"]),
            "n": int(counts[int(row["Class Index"])]),
            "label_issues": int(row["Label Issues"]),
            "inverse_label_issues": int(row["Inverse Label Issues"]),
            "label_noise": float(row["Label Noise"]),
            "inverse_label_noise": float(row["Inverse Label Noise"]),
            "quality": float(row["Label Quality Score"]),
        }
        for row in ranked.to_dict("records")
    ]
    return {"pairs": flagged + others, "class_quality": quality, "min_share": min_share}


def weak_slices(
    *,
    labels: npt.ArrayLike,
    oof_probs: npt.ArrayLike,
    features_free: npt.ArrayLike,
    n_clusters: int | None = None,
    ratio: float = SLICE_RATIO,
    min_size: int = MIN_SLICE,
) -> dict[str, Any]:
    """Clusters of the label-free embeddings where out-of-fold predictions are far worse.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
    oof_probs : ndarray of shape (n_examples, n_classes)
    features_free : ndarray of shape (n_examples, n_features)
        Label-independent embeddings (`features_free.npz`).
    n_clusters : int, optional
        k-means clusters; default round(sqrt(n_examples)), at most n_examples // min_size.
    ratio : float
        A cluster is weak when its quality ratio (Datalab's underperforming-group score:
        mean p_oof(given label) in the cluster / mean over every row) is below this.
    min_size : int
        Smaller clusters are never weak (too few rows to tell).

    Returns
    -------
    dict
        `slices`: the weak clusters, worst first, each `cluster`, `size`, `accuracy`
        (out-of-fold argmax = given label), `rest_accuracy` (the other rows'),
        `quality_ratio`, `rows` (positions in training order); `n_clusters`, `accuracy`
        (every row's), `ratio`, `min_size`, `method`.
    """
    labels, oof_probs, features = checked(
        labels=labels, oof_probs=oof_probs, features_free=features_free
    )
    n = labels.shape[0]
    k = n_clusters if n_clusters is not None else int(round(np.sqrt(n)))
    k = max(1, min(k, n // max(min_size, 1), n))
    clusters = _kmeans(features, k)  # (N,)
    return _score_clusters(labels, np.asarray(oof_probs, np.float64), clusters, ratio, min_size)


def _kmeans(features: np.ndarray, k: int) -> np.ndarray:
    """Cluster ids (N,) of k-means on the L2-normalised rows (cosine-like, as `prototype`)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    x = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    if k <= 1:
        return np.zeros(x.shape[0], dtype=np.int64)
    if x.shape[0] >= MINIBATCH_FROM:
        model: Any = MiniBatchKMeans(k, batch_size=4096, n_init=3, random_state=SEED)
    else:
        model = KMeans(k, n_init=1, random_state=SEED)
    with warnings.catch_warnings():  # repeated rows: fewer distinct clusters than asked
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return model.fit_predict(x).astype(np.int64)


def _score_clusters(
    labels: np.ndarray, probs: np.ndarray, clusters: np.ndarray, ratio: float, min_size: int
) -> dict[str, Any]:
    rows = np.arange(labels.shape[0])
    confidence = probs[rows, labels]  # (N,) Datalab's self-confidence
    right = probs.argmax(axis=1) == labels  # (N,)
    mean_confidence = float(confidence.mean())
    slices = []
    for c in np.unique(clusters):
        member = clusters == c
        size = int(member.sum())
        score = float(confidence[member].mean()) / max(mean_confidence, 1e-12)
        if size < min_size or score >= ratio:
            continue
        rest = ~member
        slices.append(
            {
                "cluster": int(c),
                "size": size,
                "accuracy": float(right[member].mean()),
                "rest_accuracy": float(right[rest].mean()) if rest.any() else None,
                "quality_ratio": score,
                "rows": np.flatnonzero(member).tolist(),
            }
        )
    slices.sort(key=lambda s: (s["quality_ratio"], -s["size"]))
    return {
        "slices": slices,
        "n_clusters": int(np.unique(clusters).size),
        "accuracy": float(right.mean()),
        "ratio": ratio,
        "min_size": min_size,
        "method": "kmeans",
    }


def non_iid(
    *, labels: npt.ArrayLike, features_free: npt.ArrayLike, k: int = NON_IID_K
) -> dict[str, Any]:
    """Whether the row order carries information: Datalab's `non_iid` p-value.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
        Given to Datalab as its label column (the test itself reads only the embeddings).
    features_free : ndarray of shape (n_examples, n_features)
    k : int
        Neighbours in the kNN graph.

    Returns
    -------
    dict
        `p_value` (small: neighbours in embedding space sit close in row order, more than
        any shuffle gives), `flagged` (p < NON_IID_P), `significance`, `k`, `metric`.
    """
    labels, features = checked(labels=labels, features_free=features_free)
    if labels.shape[0] <= k + 1:  # Datalab needs more rows than neighbours
        return {"p_value": None, "flagged": False, "significance": NON_IID_P, "k": k}
    with _global_rng_kept(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
        lab.find_issues(
            features=np.asarray(features, dtype=np.float32),
            issue_types={"non_iid": {"k": k, "seed": SEED}},
        )
        info = lab.get_info("non_iid")
    p = float(info["p-value"])
    return {
        "p_value": p,
        "flagged": bool(p < NON_IID_P),
        "significance": NON_IID_P,
        "k": k,
        "metric": str(info.get("metric")),
    }


@contextlib.contextmanager
def _global_rng_kept() -> Iterator[None]:
    """Datalab's permutation test seeds numpy's global generator: give the caller its own back."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def dataset_health(
    *,
    labels: npt.ArrayLike,
    oof_probs: npt.ArrayLike | None,
    features_free: npt.ArrayLike | None,
) -> dict[str, Any]:
    """The whole `health.json` record: each dataset-level issue, or what it lacks.

    Parameters
    ----------
    labels : ndarray of shape (n_examples,)
    oof_probs : ndarray of shape (n_examples, n_classes), or None when the run has none
    features_free : ndarray of shape (n_examples, n_features), or None when the run has none

    Returns
    -------
    dict
        `version`, `n_examples`; `overlapping_classes`, `underperforming_group`, `non_iid`:
        each `{"available": True, ...}` (the fields of `overlapping_classes`, `weak_slices`,
        `non_iid`), `{"available": False, "missing": [names of the arrays it needs]}`, or
        `{"available": False, "error": "..."}` when the check failed on these arrays;
        `seconds`: wall time of each.
    """
    labels = np.asarray(labels)
    record: dict[str, Any] = {"version": HEALTH_VERSION, "n_examples": int(labels.shape[0])}
    seconds: dict[str, float] = {}
    arrays = {"oof_probs": oof_probs, "features_free": features_free}
    for name, (needed, compute) in _ISSUES.items():
        missing = [a for a in needed if arrays[a] is None]
        if missing:
            record[name] = {"available": False, "missing": missing}
            continue
        t0 = time.perf_counter()
        try:
            found = compute(labels=labels, **{a: arrays[a] for a in needed})
        except (ValueError, ArithmeticError, AssertionError) as err:
            # A report line lost, never the run: scoring has finished by now, and the
            # report says the check failed and why (e.g. embeddings that are all zero).
            record[name] = {"available": False, "error": f"{type(err).__name__}: {err}"}
        else:
            record[name] = {"available": True, **found}
        seconds[name] = round(time.perf_counter() - t0, 3)
    record["seconds"] = seconds
    return record


# Each dataset-level issue of `health.json`: the arrays it needs, and its function.
_ISSUES: dict[str, tuple[tuple[str, ...], Callable[..., dict[str, Any]]]] = {
    "overlapping_classes": (("oof_probs",), overlapping_classes),
    "underperforming_group": (("oof_probs", "features_free"), weak_slices),
    "non_iid": (("features_free",), non_iid),
}

__all__ = [
    "dataset_health",
    "non_iid",
    "overlapping_classes",
    "weak_slices",
]
