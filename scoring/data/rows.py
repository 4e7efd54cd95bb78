"""Which rows: the held-out split (the source's own, or carved) and the --limit subset, as
sorted row indices chosen before anything is decoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from scoring.config import DataConfig
from scoring.data.columns import show_ids
from scoring.errors import InputError

if TYPE_CHECKING:
    import datasets


# Independent random streams per use, so carving does not shift the --limit draw.
_CARVE_STREAM, _LIMIT_STREAM, _LIMIT_TEST_STREAM = 0, 1, 2


def plan_rows(
    train_labels: np.ndarray,
    test_labels: np.ndarray | None,
    label_names: list[str],
    cfg: DataConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and held-out row indices.

    Parameters
    ----------
    train_labels : ndarray of shape (n_train_rows,)
    test_labels : ndarray of shape (n_test_rows,) or None
        None carves the held-out rows out of the training rows.
    label_names : list of str, length n_classes
        For error messages.
    cfg : DataConfig

    Returns
    -------
    train_rows, test_rows : ndarray of shape (n_train,), (n_test,), int64
        Row indices into the training table and into the held-out table (the training
        table itself when carved).
    """
    carved = test_labels is None
    train_rows = np.arange(len(train_labels), dtype=np.int64)
    if carved:
        test_rows = _carve(train_labels, label_names, cfg.test_fraction, cfg.split_seed)
        train_rows = np.setdiff1d(train_rows, test_rows)
    else:
        test_rows = np.arange(len(test_labels), dtype=np.int64)
    if cfg.limit is not None and cfg.limit < len(train_rows):
        rng = np.random.default_rng([cfg.split_seed, _LIMIT_STREAM])
        train_rows = train_rows[_stratified_pick(train_labels[train_rows], cfg.limit, rng)]
        # Keep a carved held-out share at test_fraction of what is used, so that a small
        # limit on a large source also decodes few held-out inputs.
        n_test = round(cfg.limit * cfg.test_fraction / (1 - cfg.test_fraction))
        if carved and n_test < len(test_rows):
            rng = np.random.default_rng([cfg.split_seed, _LIMIT_TEST_STREAM])
            test_rows = test_rows[_stratified_pick(train_labels[test_rows], n_test, rng)]
    return train_rows, test_rows


def _carve(labels: np.ndarray, names: list[str], fraction: float, seed: int) -> np.ndarray:
    """Seeded, stratified held-out rows: about `fraction` of each class, at least one."""
    classes, counts = np.unique(labels, return_counts=True)
    if (counts < 2).any():
        few = [names[k] for k in classes[counts < 2]]
        raise InputError(
            f"cannot carve a held-out split: class(es) {few[:10]} have fewer than 2 examples "
            "(one for training, one held out); add examples, drop those classes, or pass "
            "--test with a held-out file"
        )
    rng = np.random.default_rng([seed, _CARVE_STREAM])
    return _stratified_pick(labels, round(len(labels) * fraction), rng, leave=1)


def _stratified_pick(
    labels: np.ndarray, n_take: int, rng: np.random.Generator, *, leave: int = 0
) -> np.ndarray:
    """Sorted positions of a random class-stratified subset of about `n_take` labels.

    Every class present gets at least one position and keeps `leave` unpicked, so the
    size can differ from `n_take` when those bounds demand it (e.g. fewer than K).
    """
    classes, counts = np.unique(labels, return_counts=True)
    quotas = _quotas(counts, n_take, low=np.ones_like(counts), high=counts - leave)
    chosen = [
        rng.choice(np.flatnonzero(labels == k), size=quota, replace=False)
        for k, quota in zip(classes, quotas, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _quotas(counts: np.ndarray, n_take: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Share `n_take` among classes in proportion to `counts`, each within [low, high].

    Largest-remainder rounding, so the total is exactly `n_take` whenever the bounds allow.
    """
    exact = n_take * counts / counts.sum()  # (K,)
    quotas = np.clip(np.floor(exact).astype(np.int64), low, high)
    while quotas.sum() < n_take and (quotas < high).any():
        quotas[np.argmax(np.where(quotas < high, exact - quotas, -np.inf))] += 1
    while quotas.sum() > n_take and (quotas > low).any():
        quotas[np.argmax(np.where(quotas > low, quotas - exact, -np.inf))] -= 1
    return quotas


def check_row_ids(rows: np.ndarray, n_rows: int, description: str) -> None:
    bad = rows[(rows < 0) | (rows >= n_rows)]
    if bad.size:
        raise InputError(
            f"row ids {show_ids(bad.tolist())} are outside {description}'s training split "
            f"(rows 0..{n_rows - 1})"
        )


def take(table: datasets.Dataset, rows: np.ndarray) -> datasets.Dataset:
    """An in-memory copy of the given rows with the same features (Arrow order = row order)."""
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    taken = table.data.table.take(pa.array(rows, type=pa.int64()))
    info = datasets.DatasetInfo(features=table.features.copy())
    return datasets.Dataset(InMemoryTable(taken), info=info)
