"""Checks of what the user hands a Recorder: numbers, ids, label names, a data source, inputs.

Each function turns one user-given value into what the recording stores (float32 or int64
numpy, a `DataConfig`, display inputs in the run's order) or raises an `InputError` that
names the argument, what was expected and what came. They know nothing of the recording
itself, so the Recorder and `end_run`'s evidence share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scoring import data, store
from scoring.config import DataConfig, ScoreConfig
from scoring.errors import InputError


def host(x: Any) -> np.ndarray:
    """A tensor or array on the host as float32 numpy (one device-to-host copy for a tensor)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype != torch.float32:
            x = x.float()
        return x.cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"expected numbers (a tensor or an array), got {type(x).__name__}"
        ) from err
    return arr


def int_vector(x: Any, what: str) -> np.ndarray:
    """A 1-D int64 array from a tensor, an array or a list; InputError otherwise."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise InputError(f"{what}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
            return arr.astype(np.int64)
        raise InputError(
            f"{what}: expected integers, got dtype {arr.dtype}; map your ids or labels to "
            "integers (e.g. row numbers, class indices)"
        )
    return arr.astype(np.int64, copy=False)


def label_names(names: Sequence[str] | None, k: int) -> list[str]:
    """The K class names: the given ones, checked, else "0", "1", ..."""
    if names is None:
        return [str(i) for i in range(k)]
    names = [str(n) for n in names]
    if len(names) != k:
        raise InputError(f"label_names: expected {k} names (one per class), got {len(names)}")
    if len(set(names)) != k:
        raise InputError("label_names: expected distinct names")
    return names


def data_config(dataset: str | DataConfig | None) -> DataConfig | None:
    """The linked data source as a validated `DataConfig`; None without one."""
    if dataset is None:
        return None
    if isinstance(dataset, str):
        dataset = DataConfig(source=dataset)
    if not isinstance(dataset, DataConfig):
        raise InputError(
            f"dataset: expected a source (e.g. 'digits', a file) or a DataConfig, got {dataset!r}"
        )
    ScoreConfig(data=dataset).validate()
    return dataset


def check_link(cfg: DataConfig, ids: np.ndarray, k: int, cache_dir: Path) -> dict[str, Any]:
    """Load the linked source once, before training: the ids must be its training rows.

    Parameters
    ----------
    cfg : DataConfig
    ids : ndarray of shape (n_examples,), int64
        The recording's ids, sorted.
    k : int
        The number of classes the user gave.
    cache_dir : Path

    Returns
    -------
    dict
        ``label_names`` (list of str), ``test_ids`` (list of int: the source's held-out
        rows) and ``labels`` (ndarray of shape (n_examples,), int64, in `ids` order).
    """
    ds = data.load(cfg, hf_cache_dir=str(store.hf_cache_dir(cache_dir)))
    if len(ds.label_names) != k:
        raise InputError(
            f"num_classes is {k} but {ds.description} has {len(ds.label_names)} classes "
            f"({', '.join(ds.label_names[:10])})"
        )
    known = np.isin(ids, ds.train.ids)
    if not known.all():
        raise InputError(
            f"ids: id {ids[~known][0]} is not a training row of {ds.description} "
            f"({len(ds.train.ids):,} training rows after its held-out split); with dataset=, "
            "ids are the source's row ids of its training split. A source without a test "
            "split has a share carved off (test_fraction); if you trained on every row, "
            "link your held-out file too (DataConfig(test=...), `--test FILE`) so nothing is "
            "carved, or record without a data source"
        )
    order = np.argsort(ds.train.ids, kind="stable")
    rows = order[np.searchsorted(ds.train.ids[order], ids)]
    return {
        "label_names": list(ds.label_names),
        "test_ids": ds.test.ids.tolist(),
        "labels": np.asarray(ds.train.labels[rows], dtype=np.int64),  # (N,) in `ids` order
    }


def check_inputs(inputs: Any, n: int, order: np.ndarray) -> tuple[str, Any]:
    """Display inputs in the run's order: ("image", (N, C, H, W) float32) or ("text", list)."""
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "uif" and inputs.ndim >= 3:
        return "image", _images(inputs, n, order)
    if isinstance(inputs, np.ndarray | list | tuple):
        items = list(inputs)
        if len(items) != n:
            raise InputError(f"inputs: expected {n} texts (one per id), got {len(items)}")
        ok = all(
            isinstance(t, str)
            or (isinstance(t, tuple) and len(t) == 2 and all(isinstance(p, str) for p in t))
            for t in items
        )
        if ok:
            return "text", [items[i] for i in order]
    raise InputError(
        "inputs: expected images as an array (N, H, W[, C]) or texts as a list of str "
        "(or (str, str) pairs), one per id"
    )


def _images(inputs: np.ndarray, n: int, order: np.ndarray) -> np.ndarray:
    """Images (N, H, W), (N, H, W, C) or (N, C, H, W) as (N, C, H, W) float32 in [0, 1]."""
    if inputs.shape[0] != n:
        raise InputError(f"inputs: expected {n} images (one per id), got {inputs.shape[0]}")
    x = inputs[order]
    if x.ndim == 3:  # (N, H, W) grey
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(
            f"inputs: expected images (N, H, W), (N, H, W, C) or (N, C, H, W) with 1 or 3 "
            f"channels, got shape {inputs.shape}"
        )
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255)
    elif x.min() < 0 or x.max() > 1:
        raise InputError("inputs: float images must lie in [0, 1] (or give uint8 pixels)")
    return np.ascontiguousarray(x, dtype=np.float32)
