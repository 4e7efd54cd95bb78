"""Several annotators per example: their votes, the classes they name, the majority vote.

Two inputs give the same vote matrix, shape (n_rows, n_annotators), int64 class ids with -1
for "this annotator did not label this row":

- one column per annotator in the source table (``--annotator-cols a,b,c``); a missing
  value (null, NaN, blank text) is no vote;
- a long table (``--annotations FILE``, .csv/.tsv/.parquet/.jsonl/.json) with columns
  ``id`` (the row's index in the source's training split: Winnow's own ``id``),
  ``annotator`` and ``label``: one row per vote.

The classes are the label column's when ``--label-col`` names one (a vote outside them is an
error), else every value any annotator gave, sorted (numerically when they are all
integers), as `columns.LabelCodec` does for one column. The given label is the label column
when named, else the majority vote (`majority_vote`: ties go to the class with the fewest
votes in the whole table, then to the lowest class id).

Every check here raises `InputError` with one line: unknown ids, a single annotator, a
label outside the classes, a row nobody labelled, a (row, annotator) pair given twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.data.columns import (
    SCALAR_KINDS,
    LabelCodec,
    column_kind,
    column_kinds,
    column_values,
    describe,
    is_blank,
    show_ids,
)
from scoring.errors import InputError

if TYPE_CHECKING:
    import datasets

NO_VOTE = -1
FILE_COLUMNS = ("id", "annotator", "label")
_MAX_SHOWN = 10


@dataclass(frozen=True)
class RawVotes:
    """Votes as read, before classes are known: one list of label keys per annotator.

    Attributes
    ----------
    annotators : tuple of str, length n_annotators
    keys : list of n_annotators lists of length n_rows
        Each vote as the label name it spells (a ClassLabel id as its name, a number as
        its integer text), None for no vote.
    class_names : list of str or None
        The names of the annotators' ClassLabel columns when they all have the same ones.
    """

    annotators: tuple[str, ...]
    keys: list[list[str | None]]
    class_names: list[str] | None = None


def column_votes(table: datasets.Dataset, cols: Sequence[str], where: str) -> RawVotes:
    """The votes of the annotator columns `cols` of `table` (one column per annotator)."""
    features = table.features
    keys = [_keys(features[col], column_values(table, col), col, where) for col in cols]
    class_names = None
    if all(column_kind(features[c]) == "classlabel" for c in cols):
        names = {tuple(features[c].names) for c in cols}
        class_names = list(names.pop()) if len(names) == 1 else None
    return RawVotes(tuple(cols), keys, class_names)


def file_votes(table: datasets.Dataset, n_rows: int, where: str) -> RawVotes:
    """The votes of a long `id, annotator, label` table, for a source of `n_rows` rows.

    Raises
    ------
    InputError
        Missing columns, ids that are not row ids of the source's training split, a
        (row, annotator) pair voted twice, fewer than two annotators.
    """
    kinds = column_kinds(table)
    missing = [c for c in FILE_COLUMNS if c not in kinds]
    if missing:
        raise InputError(
            f"{where} has no column(s) {', '.join(map(repr, missing))}; expected one row per "
            f"vote with columns id (the row's index in the source), annotator, label; "
            f"available columns: {describe(kinds)}"
        )
    ids = _row_ids(column_values(table, "id"), n_rows, where)
    who = [None if is_blank(v) else str(v).strip() for v in column_values(table, "annotator")]
    if None in who:
        rows = [i for i, v in enumerate(who) if v is None]
        raise InputError(f"{where}: rows {show_ids(rows)} have no annotator; name who voted")
    labels = _keys(table.features["label"], column_values(table, "label"), "label", where)
    annotators = tuple(dict.fromkeys(who))  # in order of first appearance
    column = {name: a for a, name in enumerate(annotators)}
    keys: list[list[str | None]] = [[None] * n_rows for _ in annotators]
    seen: set[tuple[int, int]] = set()
    for row, name, key in zip(ids, who, labels, strict=True):
        if key is None:
            continue  # a blank label is no vote
        pair = (row, column[name])
        if pair in seen:
            raise InputError(
                f"{where}: annotator {name!r} votes twice for id {row}; keep one vote per "
                "id and annotator"
            )
        seen.add(pair)
        keys[column[name]][row] = key
    feature = table.features["label"]
    class_names = list(feature.names) if column_kind(feature) == "classlabel" else None
    return RawVotes(annotators, keys, class_names)


def _row_ids(values: list, n_rows: int, where: str) -> list[int]:
    """The `id` column as row ids of the source, every one known."""
    bad = [v for v in values if is_blank(v) or not float(v).is_integer()]
    if bad:
        raise InputError(f"{where}: ids must be whole numbers (row ids), got e.g. {bad[0]!r}")
    ids = [int(v) for v in values]
    unknown = sorted({i for i in ids if not 0 <= i < n_rows})
    if unknown:
        raise InputError(
            f"{where} names unknown ids {show_ids(unknown)}: the source's training split has "
            f"rows 0..{n_rows - 1} (an id is the row's index in the source, as Winnow's id)"
        )
    return ids


def _keys(feature: Any, values: list, col: str, where: str) -> list[str | None]:
    """Each vote as the label name it spells, None for no vote."""
    kind = column_kind(feature)
    if kind not in SCALAR_KINDS:
        raise InputError(
            f"annotator column {col!r} in {where} holds {kind} values; votes must be class "
            "names or integers"
        )
    keys: list[str | None] = []
    for value in values:
        if is_blank(value):
            keys.append(None)
        elif kind == "classlabel":
            if not 0 <= value < feature.num_classes:  # -1 marks "unlabelled" in HF datasets
                keys.append(None)
            else:
                keys.append(feature.names[value])
        elif kind in ("int", "float"):
            if not float(value).is_integer():
                raise InputError(
                    f"annotator column {col!r} in {where} holds {value}, not a class: votes "
                    "must be integers or names"
                )
            keys.append(str(int(value)))
        else:
            keys.append(str(value))
    return keys


@dataclass(frozen=True)
class VoteCodec:
    """The classes votes are encoded into (index = class id)."""

    names: list[str]
    ids_are_indices: bool = False  # the label column is a ClassLabel: "3" may mean class 3

    @classmethod
    def fit(cls, raw: RawVotes, label_codec: LabelCodec | None) -> VoteCodec:
        """The label column's classes when there is one, else every class a vote names."""
        if label_codec is not None:
            return cls(list(label_codec.names), label_codec.ids_are_indices)
        if raw.class_names is not None:
            return cls(raw.class_names)
        found = {key for keys in raw.keys for key in keys if key is not None}
        if all(_is_int(k) for k in found):
            return cls([str(v) for v in sorted({int(k) for k in found})])
        return cls(sorted(found))

    def encode(self, raw: RawVotes, where: str) -> np.ndarray:
        """The vote matrix, shape (n_rows, n_annotators), int64, -1 = no vote.

        Raises InputError for a vote outside the classes.
        """
        index = {name: i for i, name in enumerate(self.names)}
        if self.ids_are_indices:  # integers also name class ids, as `LabelCodec` reads them
            index.update({str(i): i for i in range(len(self.names)) if str(i) not in index})
        outside = sorted({k for keys in raw.keys for k in keys if k is not None} - index.keys())
        if outside:
            raise InputError(
                f"votes in {where} name labels outside the classes: {outside[:_MAX_SHOWN]}; "
                f"the classes are {self.names[:20]} (those of --label-col when given, else "
                "the training split's votes): fix those votes or the label column"
            )
        votes = np.full((len(raw.keys[0]) if raw.keys else 0, len(raw.keys)), NO_VOTE, np.int64)
        for a, keys in enumerate(raw.keys):
            votes[:, a] = [NO_VOTE if k is None else index[k] for k in keys]
        return votes


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def require_votes(votes: np.ndarray, annotators: Sequence[str], where: str) -> None:
    """Every row has a vote, and two or more annotators voted.

    Parameters
    ----------
    votes : ndarray of shape (n_rows, n_annotators), int
        -1 = no vote.
    annotators : sequence of str, length n_annotators
    where : str
        For messages ("the training data", ...).

    Raises
    ------
    InputError
        A row without any vote (CROWDLAB and the majority need one), or fewer than two
        annotators with votes (one annotator's labels are a label column).
    """
    voted = votes != NO_VOTE  # (N, A)
    active = [name for a, name in enumerate(annotators) if voted[:, a].any()]
    if len(active) < 2:
        raise InputError(
            f"{where} has votes from {len(active)} annotator(s) ({', '.join(active) or 'none'}); "
            "several annotators means two or more: a single column of labels is --label-col"
        )
    empty = np.flatnonzero(~voted.any(axis=1))
    if empty.size:
        raise InputError(
            f"rows {show_ids(empty.tolist())} of {where} have no vote from any annotator; "
            "every example needs at least one: add their votes or drop those rows"
        )


def majority_vote(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """The class most annotators chose, per row, with a deterministic tie rule.

    Ties go to the tied class with the fewest votes in the whole table (cleanlab's
    `get_majority_vote_label` without a model does the same: it keeps rare classes from
    shrinking further), then to the lowest class id. No model enters: the given label is
    fixed before any training.

    Parameters
    ----------
    votes : ndarray of shape (n_rows, n_annotators), int
        Class ids in [0, n_classes), -1 = no vote; every row has at least one vote.
    n_classes : int

    Returns
    -------
    ndarray of shape (n_rows,), int64
    """
    counts = vote_counts(votes, n_classes)  # (N, K)
    totals = counts.sum(axis=0)  # (K,)
    top = counts == counts.max(axis=1, keepdims=True)  # (N, K) the tied classes
    # Among the tied classes: fewest votes overall, then the lowest id (argmin takes the first).
    rank = np.argsort(np.argsort(totals, kind="stable"), kind="stable")  # (K,) 0 = rarest
    return np.where(top, rank[None, :], n_classes).argmin(axis=1).astype(np.int64)


def vote_counts(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Votes per class, shape (n_rows, n_classes), int64 (-1 entries are not counted)."""
    counts = np.zeros((votes.shape[0], n_classes), dtype=np.int64)
    rows, cols = np.nonzero(votes != NO_VOTE)
    np.add.at(counts, (rows, votes[rows, cols]), 1)
    return counts
