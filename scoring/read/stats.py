"""Summaries behind the Scores and Correlations pages: binned counts, tables, rank correlations.

Pure numpy/pandas, so every number a page shows is computed and tested here. Histograms are
aggregated before plotting: at 50,000 examples a figure carries B bins, never N points.
Non-finite values (NaN from an older or partial run) are left out of every summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.errors import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Columns of `summary_table`, in the order a reader expects from `describe()`.
SUMMARY_COLUMNS = ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]
ALL_ROW = "all"
_ROUNDOFF = 1e-10  # relative size below which a mean is float round-off, not signal


def _as_values(values: npt.ArrayLike) -> FloatArray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise InputError(f"values must have shape (n_examples,), got shape {values.shape}")
    return values


def _as_labels(labels: npt.ArrayLike, n_examples: int, n_classes: int | None) -> IntArray:
    labels = np.asarray(labels)
    if labels.shape != (n_examples,):
        raise InputError(
            f"labels must have shape ({n_examples},) like the values, got shape {labels.shape}"
        )
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise InputError(f"labels must be >= 0, found {labels.min()}")
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        raise InputError(f"labels must be < n_classes = {n_classes}, found {labels.max()}")
    return labels


def bin_edges(
    values: npt.ArrayLike, bins: int = 40, range: tuple[float, float] | None = None
) -> FloatArray:
    """Shared bin edges for a histogram of `values`.

    Parameters
    ----------
    values : array-like of shape (n_examples,)
    bins : int
        Number of equal-width bins when the values are continuous.
    range : (low, high), optional
        Span of the bins; default the finite min and max of `values`.

    Returns
    -------
    ndarray of shape (n_bins + 1,)
        Integer-valued data spanning at most `bins` levels (forgetting counts, 0/1 flags) get
        one bin per integer, centred on it, so no bin straddles two levels or sits empty
        between them. Constant data get one unit-wide bin around the value; no finite data
        get [0, 1].
    """
    if bins < 1:
        raise InputError(f"bins must be >= 1, got {bins}")
    values = _as_values(values)
    finite = values[np.isfinite(values)]
    if range is not None:
        low, high = float(range[0]), float(range[1])
        if not high > low:
            raise InputError(f"range must be (low, high) with low < high, got {range}")
        return np.linspace(low, high, bins + 1)
    if finite.size == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    low, high = float(finite.min()), float(finite.max())
    if np.all(finite == np.round(finite)) and high - low + 1 <= bins:
        return np.arange(low - 0.5, high + 1.0, 1.0)  # (high - low + 2,) edges
    if high == low:
        return np.array([low - 0.5, high + 0.5])
    return np.linspace(low, high, bins + 1)


def histogram(
    values: npt.ArrayLike, bins: int = 40, range: tuple[float, float] | None = None
) -> tuple[IntArray, FloatArray]:
    """Binned counts of the finite values.

    Parameters
    ----------
    values : array-like of shape (n_examples,)
    bins, range
        As in `bin_edges`.

    Returns
    -------
    counts : ndarray of shape (n_bins,), int64
    edges : ndarray of shape (n_bins + 1,)
        Bins are half-open [a, b) except the last, which includes its right edge (numpy's
        convention); values outside `range` are not counted.
    """
    values = _as_values(values)
    edges = bin_edges(values, bins, range)
    counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
    return counts.astype(np.int64), edges


def histograms_by_class(
    values: npt.ArrayLike,
    labels: npt.ArrayLike,
    n_classes: int,
    bins: int = 40,
    range: tuple[float, float] | None = None,
) -> tuple[IntArray, FloatArray]:
    """Binned counts per class on shared edges (so class histograms can be overlaid).

    Parameters
    ----------
    values : array-like of shape (n_examples,)
    labels : array-like of int, shape (n_examples,), in [0, n_classes)
    n_classes : int
    bins, range
        As in `bin_edges`; the edges come from all classes together.

    Returns
    -------
    counts : ndarray of shape (n_classes, n_bins), int64
        Row k is `histogram` of the class-k values on the shared edges.
    edges : ndarray of shape (n_bins + 1,)
    """
    values = _as_values(values)
    labels = _as_labels(labels, len(values), n_classes)
    edges = bin_edges(values, bins, range)
    n_bins = len(edges) - 1
    keep = np.isfinite(values) & (values >= edges[0]) & (values <= edges[-1])
    v, y = values[keep], labels[keep]
    # One pass over N (a bincount on class * B + bin) instead of K calls to np.histogram.
    idx = np.searchsorted(edges, v, side="right") - 1  # (N,) in [0, B]
    idx = np.minimum(idx, n_bins - 1)  # the last bin is closed on the right
    flat = np.bincount(y * n_bins + idx, minlength=n_classes * n_bins)
    return flat.reshape(n_classes, n_bins).astype(np.int64), edges


def _describe(values: FloatArray) -> list[float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [0.0] + [np.nan] * (len(SUMMARY_COLUMNS) - 1)
    q25, q50, q75 = np.quantile(finite, [0.25, 0.5, 0.75])
    mean = float(finite.mean())
    # The mean of z-scored data is 0 up to summation round-off (~1e-14); show it as 0.
    if abs(mean) <= _ROUNDOFF * float(np.abs(finite).max()):
        mean = 0.0
    return [
        float(finite.size),
        mean,
        float(finite.std()),  # population std (ddof=0): z-scored data show exactly 1
        float(finite.min()),
        float(q25),
        float(q50),
        float(q75),
        float(finite.max()),
    ]


def summary_table(
    values: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    label_names: Sequence[str] | None = None,
    name: str = ALL_ROW,
) -> pd.DataFrame:
    """Count, mean, std, min, quartiles and max, overall or per class.

    Parameters
    ----------
    values : array-like of shape (n_examples,)
    labels : array-like of int, shape (n_examples,), optional
        Given: one row per class (in class order, classes without examples included with
        count 0), then a row for all examples.
    label_names : sequence of str, optional
        Row names for the classes (and the class count); default "0", "1", ...
    name : str
        Row name for all examples.

    Returns
    -------
    DataFrame of shape (n_rows, 8)
        Columns `SUMMARY_COLUMNS`; the std is the population std (ddof=0), so within-class
        z-scores show mean 0 and std 1. Counts are of finite values only.
    """
    values = _as_values(values)
    overall = pd.DataFrame([_describe(values)], index=[name], columns=SUMMARY_COLUMNS)
    if labels is None:
        overall["count"] = overall["count"].astype(np.int64)
        return overall
    n_classes = len(label_names) if label_names is not None else None
    labels = _as_labels(labels, len(values), n_classes)
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if labels.size else 0
    names = list(label_names) if label_names is not None else [str(k) for k in range(n_classes)]
    rows = [_describe(values[labels == k]) for k in range(n_classes)]
    table = pd.concat([pd.DataFrame(rows, index=names, columns=SUMMARY_COLUMNS), overall])
    table["count"] = table["count"].astype(np.int64)
    table.index.name = "class"
    return table


def is_binary(values: npt.ArrayLike) -> bool:
    """True when every finite value is 0 or 1 (a flag such as cl_issue), and there is one."""
    values = _as_values(values)
    finite = values[np.isfinite(values)]
    return bool(finite.size) and bool(np.isin(finite, (0.0, 1.0)).all())


def flag_counts(
    values: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    label_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """How many examples a 0/1 score flags, overall or per class.

    Parameters
    ----------
    values : array-like of shape (n_examples,), finite values in {0, 1}
    labels : array-like of int, shape (n_examples,), optional
    label_names : sequence of str, optional

    Returns
    -------
    DataFrame with columns `not flagged`, `flagged` (int) and `fraction flagged`
        One row per class when `labels` is given (no "all" row: these feed a bar chart),
        else one row "all".
    """
    values = _as_values(values)
    if not is_binary(values):
        raise InputError("flag_counts needs a 0/1 score (such as cl_issue)")
    finite = np.isfinite(values)
    if labels is None:
        groups, names = np.zeros(len(values), dtype=np.int64), [ALL_ROW]
    else:
        n_classes = len(label_names) if label_names is not None else None
        groups = _as_labels(labels, len(values), n_classes)
        k = n_classes if n_classes is not None else (int(groups.max()) + 1 if groups.size else 0)
        names = list(label_names) if label_names is not None else [str(c) for c in range(k)]
    k = len(names)
    flagged = np.bincount(groups[finite], weights=values[finite], minlength=k).astype(np.int64)
    total = np.bincount(groups[finite], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(total > 0, flagged / np.maximum(total, 1), np.nan)
    return pd.DataFrame(
        {"not flagged": total - flagged, "flagged": flagged, "fraction flagged": fraction},
        index=pd.Index(names, name="class" if labels is not None else None),
    )


def constant_columns(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The keys whose finite values take fewer than two distinct values (Spearman undefined)."""
    out = []
    for key in keys:
        col = frame[key].to_numpy(dtype=np.float64)
        if np.unique(col[np.isfinite(col)]).size < 2:
            out.append(key)
    return out


def spearman_matrix(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Spearman rank correlation between every pair of score columns.

    Parameters
    ----------
    frame : DataFrame with one row per example and a float column per key
    keys : sequence of str, the columns to correlate

    Returns
    -------
    DataFrame of shape (n_keys, n_keys), index and columns `keys`
        Pearson correlation of the average ranks (ties share their mean rank, as in
        `scipy.stats.spearmanr`), over the rows where every key is finite. A column that is
        constant on those rows has NaN in its row and column, diagonal included, since its
        correlation with anything is undefined.
    """
    keys = list(keys)
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise InputError(f"no column {', '.join(missing)} in the table; it has {list(frame)}")
    values = frame[keys].to_numpy(dtype=np.float64)  # (N, S)
    values = values[np.isfinite(values).all(axis=1)]
    ranks = pd.DataFrame(values).rank(method="average").to_numpy()  # (N, S)
    centred = ranks - ranks.mean(axis=0) if len(ranks) else ranks
    norms = np.sqrt((centred**2).sum(axis=0))  # (S,)
    defined = norms > 0
    safe = np.where(defined, norms, 1.0)
    rho = (centred.T @ centred) / np.outer(safe, safe)  # (S, S)
    rho = np.clip(rho, -1.0, 1.0)  # rounding can overshoot by an ulp
    np.fill_diagonal(rho, 1.0)  # exactly, where the division left 1 - ulp
    rho[~defined, :] = np.nan
    rho[:, ~defined] = np.nan
    return pd.DataFrame(rho, index=keys, columns=keys)


def strongest_pair(matrix: pd.DataFrame) -> tuple[str, str] | None:
    """The two distinct scores with the largest |Spearman| (ties: first in matrix order).

    Parameters
    ----------
    matrix : DataFrame of shape (n_keys, n_keys), as from `spearman_matrix`

    Returns
    -------
    (row key, column key), row before column in matrix order, or None when no off-diagonal
    value is defined.
    """
    rho = np.abs(matrix.to_numpy(dtype=np.float64))
    upper = np.triu(np.ones_like(rho, dtype=bool), k=1)
    candidates = np.where(upper & np.isfinite(rho), rho, -1.0)
    if candidates.size == 0 or candidates.max() < 0:
        return None
    i, j = np.unravel_index(np.argmax(candidates), candidates.shape)
    return str(matrix.index[i]), str(matrix.columns[j])


STABILITY_WARNING = 0.5  # spearman_loo below this: one run's ranking is not to be trusted


@dataclass(frozen=True)
class RunStability:
    """A score's rank stability across training runs, as `summarize` wrote it (see
    `rank_stability`). R = runs, n = points of the curve (R // 2).

    Attributes
    ----------
    loo : float
        Mean over runs of Spearman(run r, mean of the other runs).
    pairwise : float
        Mean Spearman over pairs of runs.
    loo_per_run : ndarray of shape (R,)
    curve : DataFrame with columns n_runs, spearman; n rows
        Spearman between the mean of n runs and the mean of n other runs (Data Diet).
    chance : float
        |rho| two independent random rankings stay below 95% of the time.
    """

    loo: float
    pairwise: float
    loo_per_run: FloatArray
    curve: pd.DataFrame
    chance: float

    @property
    def unstable(self) -> bool:
        """One run ranks examples unlike the others (LOO below `STABILITY_WARNING`)."""
        return not self.loo >= STABILITY_WARNING  # NaN (a constant score) counts as unstable


def run_stability(summary: Mapping[str, Any], key: str) -> RunStability | None:
    """The stability figures of one score from a run's summary.json.

    Parameters
    ----------
    summary : mapping, a run's summary.json
    key : str, a score key

    Returns
    -------
    RunStability, or None when the score was computed once (cl_quality, cl_issue), the run
    had one training run, or the summary predates these figures (`stability_outdated` tells
    that case apart: rescore the run).
    """
    block = summary.get("scores", {}).get(key) or {}
    if block.get("spearman_loo") is None:
        return None
    curve = pd.DataFrame(block.get("stability_curve") or [], columns=["n_runs", "spearman"])

    def number(value: Any) -> float:
        return float("nan") if value is None else float(value)

    return RunStability(
        loo=number(block["spearman_loo"]),
        pairwise=number(block.get("spearman_pairwise")),
        loo_per_run=np.array([number(v) for v in block.get("spearman_loo_per_run") or []]),
        curve=curve.astype({"n_runs": np.int64, "spearman": np.float64}),
        chance=number(block.get("stability_chance")),
    )


def stability_outdated(summary: Mapping[str, Any], key: str) -> bool:
    """The summary was written before leave-one-out stability existed (rescore for it)."""
    block = summary.get("scores", {}).get(key) or {}
    return "spearman_loo" not in block and block.get("spearman_single_vs_mean") is not None


def pair_frame(table: pd.DataFrame, x: str, y: str, label_names: Sequence[str]) -> pd.DataFrame:
    """The columns a pair scatter needs, with a colour group per example.

    Parameters
    ----------
    table : DataFrame, a run's table (`id`, `label`, optional `noisy`, score columns)
    x, y : str, two distinct score columns
    label_names : sequence of str

    Returns
    -------
    DataFrame with columns `id`, x, y, `label` (name) and `colour`
        `colour` is "injected noise" / "clean" when the table has a `noisy` column, else the
        label name. Rows where x or y is not finite are dropped.
    """
    if x == y:
        raise InputError(f"pick two different scores (both are {x!r})")
    names = np.asarray(list(label_names), dtype=object)
    out = pd.DataFrame(
        {
            "id": table["id"].to_numpy(),
            x: table[x].to_numpy(dtype=np.float64),
            y: table[y].to_numpy(dtype=np.float64),
            "label": names[table["label"].to_numpy(dtype=np.int64)],
        }
    )
    if "noisy" in table.columns:
        out["colour"] = np.where(table["noisy"].to_numpy(dtype=bool), "injected noise", "clean")
    else:
        out["colour"] = out["label"]
    return out[np.isfinite(out[x]) & np.isfinite(out[y])].reset_index(drop=True)


def _rank_rows(matrix: FloatArray) -> FloatArray:
    """Average ranks of each row (ties share their mean rank), as scipy's rankdata."""
    from scipy.stats import rankdata

    return rankdata(matrix, axis=-1).astype(np.float64)


def _pearson_rows(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pearson correlation of matching rows of `a` and `b`, shape (n_rows,); NaN if constant."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=-1) / denom, np.nan)


def _spearman(a: FloatArray, b: FloatArray) -> float:
    return float(_pearson_rows(_rank_rows(a[None]), _rank_rows(b[None]))[0])


def rank_stability(
    per_run: npt.ArrayLike, *, max_splits: int = 20, seed: int = 0
) -> dict[str, Any] | None:
    """How reproducible a score's ranking is across independent training runs.

    Never compares a run with a mean that contains it (that inflates agreement: pure noise
    already scores about 1/sqrt(R) against the mean of R runs including itself).

    Parameters
    ----------
    per_run : array-like of shape (n_runs, n_examples)
        The score of every example from each run.
    max_splits : int
        Random disjoint splits averaged per point of the curve (all splits when fewer).
    seed : int
        Seeds the choice of splits.

    Returns
    -------
    dict or None (fewer than 2 runs, or fewer than 3 examples)
        ``spearman_loo``: mean over runs r of Spearman(run r, mean of the other runs);
        ``spearman_pairwise``: mean Spearman over all pairs of runs;
        ``spearman_loo_per_run``: the R leave-one-out values;
        ``curve``: list of {"n_runs": n, "spearman": rho} for n = 1 .. R // 2, rho the mean
        Spearman between the mean of n runs and the mean of n *other* runs (Data Diet's
        check of how many runs a score needs);
        ``chance``: 1.96 / sqrt(N - 1), the |rho| two independent random rankings of N
        examples stay below 95% of the time.
    """
    scores = np.asarray(per_run, dtype=np.float64)
    if scores.ndim != 2:
        raise InputError(f"per_run must have shape (n_runs, n_examples), got {scores.shape}")
    n_runs, n = scores.shape
    if n_runs < 2 or n < 3:
        return None
    ranks = _rank_rows(scores)  # (R, N)
    total = scores.sum(axis=0)
    others = (total[None] - scores) / (n_runs - 1)  # (R, N): mean of the other runs
    loo = _pearson_rows(ranks, _rank_rows(others))
    i, j = np.triu_indices(n_runs, k=1)
    pairwise = _pearson_rows(ranks[i], ranks[j])
    rng = np.random.default_rng(seed)
    curve = []
    for k in range(1, n_runs // 2 + 1):
        rhos = []
        for _ in range(max_splits):
            order = rng.permutation(n_runs)
            a, b = scores[order[:k]].mean(axis=0), scores[order[k : 2 * k]].mean(axis=0)
            rhos.append(_spearman(a, b))
        curve.append({"n_runs": k, "spearman": float(np.nanmean(rhos))})
    return {
        "spearman_loo": float(np.nanmean(loo)),
        "spearman_pairwise": float(np.nanmean(pairwise)),
        "spearman_loo_per_run": [float(v) for v in loo],
        "curve": curve,
        "chance": float(1.96 / np.sqrt(n - 1)),
    }


# Pairs that measure one quantity twice (loss and confidence both read p(y) over the training
# pass; cl_quality and pvi both read the out-of-fold p(y), pvi on a log scale less the class
# prior; cl_issue is a cut of cl_quality): their high ρ says nothing, so no default pair.
SAME_QUANTITY = frozenset(
    {
        frozenset({"loss", "confidence"}),
        frozenset({"cl_quality", "pvi"}),
        frozenset({"cl_quality", "cl_issue"}),
    }
)


def informative_pair(
    matrix: pd.DataFrame, skip: frozenset[frozenset[str]] = SAME_QUANTITY
) -> tuple[str, str] | None:
    """The most correlated pair (largest |ρ|) that is not one quantity measured twice.

    Parameters
    ----------
    matrix : DataFrame of shape (n_keys, n_keys), as from `spearman_matrix`
    skip : set of two-key sets never chosen (default `SAME_QUANTITY`)

    Returns
    -------
    (row key, column key) as `strongest_pair` orders them; `strongest_pair(matrix)` when
    every defined pair is in `skip`; None when no off-diagonal value is defined.
    """
    keys = [str(k) for k in matrix.index]
    rho = np.abs(matrix.to_numpy(dtype=np.float64))  # (S, S)
    allowed = np.array([[frozenset({a, b}) not in skip for b in keys] for a in keys])
    upper = np.triu(np.ones_like(rho, dtype=bool), k=1)
    candidates = np.where(upper & allowed & np.isfinite(rho), rho, -1.0)
    if candidates.size == 0 or candidates.max() < 0:
        return strongest_pair(matrix)
    i, j = np.unravel_index(np.argmax(candidates), candidates.shape)
    return keys[i], keys[j]


def clustered_order(matrix: pd.DataFrame) -> list[str]:
    """Score keys ordered so that scores that agree sit together.

    Average-linkage hierarchical clustering on the distance 1 − ρ (scipy, with the leaf
    order that keeps neighbouring leaves most similar); keys whose row is undefined (a
    constant score) follow, in their original order.

    Parameters
    ----------
    matrix : DataFrame of shape (n_keys, n_keys), as from `spearman_matrix`

    Returns
    -------
    list of str, a permutation of `matrix.index`
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    keys = [str(k) for k in matrix.index]
    rho = matrix.to_numpy(dtype=np.float64)  # (S, S)
    defined = ~np.isnan(np.diag(rho))  # a constant score's row and column are NaN
    kept = [k for k, d in zip(keys, defined, strict=True) if d]
    if len(kept) < 3:  # nothing to reorder
        return kept + [k for k in keys if k not in kept]
    sub = rho[np.ix_(defined, defined)]
    distance = np.clip(1.0 - np.nan_to_num(sub, nan=0.0), 0.0, 2.0)
    distance = (distance + distance.T) / 2  # exactly symmetric for squareform
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average", optimal_ordering=True)
    return [kept[i] for i in leaves_list(tree)] + [k for k in keys if k not in kept]
