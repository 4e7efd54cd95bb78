"""The examples a recording is of, checked once when the Recorder is made: `Examples`.

`check_examples` validates the Recorder's arguments, in the order the user reads them, and
sorts the ids: the sorted order is the row order of every file of the run. `Examples` then
answers, for every later call, which row each id is (`rows`) and which held-out ids a run's
test logits belong to (`test_ids`). Nothing here changes after construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scoring.config import DataConfig
from scoring.errors import InputError
from scoring.training.record.inputs import (
    check_inputs,
    check_link,
    data_config,
    int_vector,
    label_names,
)

KINDS = ("recorded", "imported")


@dataclass(frozen=True, eq=False)
class Examples:
    """The training examples of a recording and where its run goes.

    Attributes
    ----------
    cache_dir : Path
    name : str
        The run's name in lists and captions (stripped).
    kind : {"recorded", "imported"}
    n_classes : int
    early_epoch : int or None
        EL2N's epoch (1-based) as given; None: about 10% of the epochs, set by `finish`.
    ids : ndarray of shape (n_examples,), int64
        Sorted: the row order of every file of the run.
    order : ndarray of shape (n_examples,), int64
        Given position -> sorted position (`argsort` of the given ids).
    labels : ndarray of shape (n_examples,), int64
        In `ids` order: the given ones, else the linked source's.
    label_names : list of n_classes str
    data_config : DataConfig or None
        The linked source.
    link : dict or None
        What `inputs.check_link` read of the linked source.
    inputs : tuple of (str, object) or None
        Display inputs in `ids` order: ("image", (N, C, H, W) float32) or ("text", list).
    direct : bool
        The ids are 0..N-1, so an id is its own row (the common case: the row index).
    """

    cache_dir: Path
    name: str
    kind: str
    n_classes: int
    early_epoch: int | None
    ids: np.ndarray
    order: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    data_config: DataConfig | None
    link: dict[str, Any] | None
    inputs: tuple[str, Any] | None
    direct: bool

    @property
    def n(self) -> int:
        """The number of examples N."""
        return int(self.ids.shape[0])

    def rows(self, ids: Any) -> np.ndarray:
        """Row of each id in the run's (sorted) order; InputError for an id never given."""
        batch = int_vector(ids, "ids")
        n = self.n
        if self.direct:  # no search: `log` runs this every training step
            if batch.size and (batch.min() < 0 or batch.max() >= n):
                bad = batch[(batch < 0) | (batch >= n)][0]
                raise InputError(f"ids: id {bad} is not among the Recorder's ids (0..{n - 1})")
            return batch
        pos = np.searchsorted(self.ids, batch)
        pos = np.minimum(pos, n - 1)
        wrong = self.ids[pos] != batch
        if wrong.any():
            raise InputError(f"ids: id {batch[wrong][0]} is not among the Recorder's ids")
        return pos

    def given_order_rows(self) -> np.ndarray:
        """Rows of the ids in the order the user gave them, shape (n_examples,)."""
        pos = np.empty(self.n, dtype=np.int64)
        pos[self.order] = np.arange(self.n)
        return pos

    def test_ids(self, test_ids: Any, m: int) -> np.ndarray:
        """Ids of a run's m held-out rows: the given ones, checked; else the linked source's
        held-out split when its size is m; else 0..m-1. Shape (m,), int64."""
        known = None if self.link is None else self.link["test_ids"]
        if test_ids is not None:
            ids = int_vector(test_ids, "test_ids")
            if ids.shape[0] != m:
                raise InputError(f"test_ids: expected {m} ids (one per test row), got {ids.size}")
            if np.unique(ids).shape[0] != m:
                raise InputError("test_ids: expected unique ids")
            if known is not None and not np.isin(ids, np.asarray(known)).all():
                raise InputError(
                    f"test_ids: expected ids of the dataset's held-out split ({len(known):,} rows)"
                )
            return ids
        if known is not None:
            linked = np.asarray(known, dtype=np.int64)
            if linked.shape[0] != m:
                raise InputError(
                    f"end_run: {m} test rows, but the dataset's held-out split has "
                    f"{linked.shape[0]:,}; give test_ids"
                )
            return linked
        return np.arange(m, dtype=np.int64)


def check_examples(
    cache_dir: Path | str,
    name: str,
    ids: Any,
    labels: Any,
    num_classes: int,
    label_names_: Sequence[str] | None,
    *,
    dataset: str | DataConfig | None,
    inputs: Any,
    early_epoch: int | None,
    kind: str,
) -> Examples:
    """The Recorder's arguments, checked (see `Recorder` for each); InputError on the first
    bad one. A linked source is loaded here, before training, so a wrong id fails early."""
    _check_settings(name, kind, num_classes, early_epoch)
    k = int(num_classes)
    cache_dir = Path(cache_dir)
    order, sorted_ids = _sorted_ids(ids)
    n = int(sorted_ids.shape[0])
    config = data_config(dataset)
    given = None if labels is None else _given_labels(labels, n, k)  # before loading a source
    if given is None and config is None:
        raise InputError(
            "labels: expected one label per id (only with dataset= may they be left "
            "out: then the source's labels are used)"
        )
    link = None if config is None else check_link(config, sorted_ids, k, cache_dir)
    names = label_names(label_names_, k)
    if link is not None:
        if label_names_ is not None and list(label_names_) != link["label_names"]:
            raise InputError(
                f"label_names {list(label_names_)} differ from the dataset's "
                f"{link['label_names']}; leave label_names out with a dataset"
            )
        names = link["label_names"]
        if inputs is not None:
            raise InputError("give dataset= or inputs=, not both (the dataset has the rows)")
    return Examples(
        cache_dir=cache_dir,
        name=name.strip(),
        kind=kind,
        n_classes=k,
        early_epoch=early_epoch,
        ids=sorted_ids,
        order=order,
        labels=given[order] if given is not None else link["labels"],  # type: ignore[index]
        label_names=names,
        data_config=config,
        link=link,
        inputs=None if inputs is None else check_inputs(inputs, n, order),
        direct=bool(sorted_ids[-1] == n - 1),
    )


def _check_settings(name: str, kind: str, num_classes: int, early_epoch: int | None) -> None:
    """The scalar arguments: a name, a known kind, K >= 2, a 1-based early epoch."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"name must be a non-empty text, got {name!r}")
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise InputError(f"num_classes must be a whole number, got {num_classes!r}")
    if num_classes < 2:
        raise InputError(f"num_classes must be at least 2, got {num_classes}")
    if early_epoch is not None and (
        isinstance(early_epoch, bool) or not isinstance(early_epoch, int) or early_epoch < 1
    ):
        raise InputError(f"early_epoch must be a whole number >= 1, got {early_epoch!r}")


def _sorted_ids(ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """(order, sorted ids), both (N,) int64: given position -> sorted position, and the ids
    in that order; the ids must be unique and >= 0."""
    given = int_vector(ids, "ids")
    if given.size == 0:
        raise InputError("ids: expected at least one example id, got none")
    if given.min() < 0:
        raise InputError(f"ids: expected ids >= 0, got {given.min()}")
    order = np.argsort(given, kind="stable")
    ids_sorted = given[order]
    dup = ids_sorted[1:] == ids_sorted[:-1]
    if dup.any():
        raise InputError(f"ids: expected unique ids, id {ids_sorted[1:][dup][0]} repeats")
    return order, ids_sorted


def _given_labels(labels: Any, n: int, k: int) -> np.ndarray:
    """The given labels (N,) int64 in the given order, each a class index in [0, k)."""
    lab = int_vector(labels, "labels")
    if lab.shape[0] != n:
        raise InputError(f"labels: expected {n} labels (one per id), got {lab.shape[0]}")
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        bad = lab[(lab < 0) | (lab >= k)][0]
        raise InputError(
            f"labels: expected class indices in [0, {k}), got {bad}; map "
            "label names to 0..num_classes-1"
        )
    return lab
