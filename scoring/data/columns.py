"""Columns of a table source: which holds the inputs and which the label, and label encoding.

Auto-detection (an image column, a sentence pair, a conventionally named text column; a
ClassLabel, a conventional name or the one class-like column) with overrides, and the
checks that turn a wrong column choice into one clear message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.errors import InputError

if TYPE_CHECKING:
    import datasets


# Auto-detection, in priority order (matched case-insensitively).
_LABEL_NAMES = ("label", "labels", "class", "target", "y", "category", "sentiment")
_TEXT_NAMES = ("text", "sentence", "content", "review", "document", "question")
_PAIR_NAMES = (("premise", "hypothesis"), ("sentence1", "sentence2"))
# A label column found by cardinality has at most this many classes and fewer distinct
# values than this share of rows (free text is mostly distinct, classes repeat).
_MAX_DETECTED_CLASSES = 1000
_MAX_DISTINCT_SHARE = 0.5
SCALAR_KINDS = frozenset({"classlabel", "int", "float", "str", "bool"})
_MAX_IDS_SHOWN = 5


def column_values(table: datasets.Dataset, col: str, rows: np.ndarray | None = None) -> list:
    """Raw values of one column (images as {'bytes', 'path'} dicts), of all rows or some.

    Reads the Arrow table directly, which skips datasets' formatting and image decoding;
    tables here come straight from `load_dataset`, so Arrow order is source row order.
    """
    import pyarrow as pa

    column = table.data.column(col)
    if rows is not None:
        column = column.take(pa.array(rows, type=pa.int64()))
    return column.to_pylist()


def column_kind(feature: Any) -> str:
    """'image', 'classlabel', 'int', 'float', 'str', 'bool' or 'other' for an HF feature."""
    import datasets

    if isinstance(feature, datasets.Image) or (isinstance(feature, dict) and "bytes" in feature):
        return "image"
    if isinstance(feature, datasets.ClassLabel):
        return "classlabel"
    if isinstance(feature, datasets.Value):
        dtype = feature.dtype
        if dtype in ("string", "large_string"):
            return "str"
        if dtype == "bool":
            return "bool"
        if dtype.startswith(("int", "uint")):
            return "int"
        if dtype.startswith("float"):
            return "float"
    return "other"


def input_modality(table: datasets.Dataset, input_cols: tuple[str, ...]) -> str:
    """'image' for an image column, else 'text'."""
    return "image" if column_kind(table.features[input_cols[0]]) == "image" else "text"


def column_kinds(table: datasets.Dataset) -> dict[str, str]:
    """Column name -> kind, in table order."""
    return {col: column_kind(table.features[col]) for col in table.column_names}


def describe(kinds: dict[str, str]) -> str:
    """'img (image), label (classlabel)' for error messages."""
    return ", ".join(f"{col} ({kind})" for col, kind in kinds.items())


def require_columns(
    kinds: dict[str, str], names: Sequence[str], where: str, *, same_as_training: bool = False
) -> None:
    """Every named column exists, else say which columns there are."""
    missing = [name for name in names if name not in kinds]
    if not missing:
        return
    hint = " (it needs the same columns as the training data)" if same_as_training else ""
    if kinds and all(re.fullmatch(r"column_\d+", col) for col in kinds):
        hint += " (the file has no header row, so its columns are named column_0, column_1, ...)"
    raise InputError(
        f"{where} has no column(s) {', '.join(map(repr, missing))}{hint}; "
        f"available columns: {describe(kinds)}"
    )


def resolve_columns(
    table: datasets.Dataset,
    input_cols: Sequence[str] | None,
    label_col: str | None,
    *,
    annotator_cols: Sequence[str] = (),
    voted: bool = False,
) -> tuple[tuple[str, ...], str | None]:
    """The input column(s) and the label column: the overrides, else auto-detected.

    `voted` (several annotators, `scoring.data.annotators`): the label is their majority
    unless `label_col` names one, so none is detected (None); `annotator_cols` are never
    taken for an input.
    """
    kinds = column_kinds(table)
    inputs = as_tuple(input_cols) if input_cols else None
    named = [*(inputs or ()), *filter(None, [label_col]), *annotator_cols]
    require_columns(kinds, named, "the training data")
    if inputs is None:
        inputs = _detect_inputs(kinds, exclude={label_col, *annotator_cols})
    label = label_col
    if label is None and not voted:
        label = _detect_label(table, kinds, exclude=set(inputs or ()))
    if inputs is None:
        inputs = (_detect_text_column(table, kinds, label, exclude=annotator_cols),)
    if label in inputs:
        raise InputError(
            f"column {label!r} cannot be both an input and the label; "
            "pass different --input-col and --label-col"
        )
    both = [col for col in annotator_cols if col in (*inputs, label)]
    if both:
        raise InputError(
            f"column {both[0]!r} cannot be both an annotator and the input or the label; "
            "pass different --annotator-cols"
        )
    _check_input_kinds(inputs, kinds)
    return inputs, label


def _detect_inputs(kinds: dict[str, str], exclude: set[str | None]) -> tuple[str, ...] | None:
    """An image column, a sentence pair or a conventionally named text column, if any."""
    images = [col for col, kind in kinds.items() if kind == "image" and col not in exclude]
    if len(images) > 1:
        raise InputError(
            f"several image columns ({', '.join(images)}); pass --input-col to choose one"
        )
    if images:
        return (images[0],)
    texts = {
        col.lower(): col for col, kind in kinds.items() if kind == "str" and col not in exclude
    }
    for first, second in _PAIR_NAMES:
        if first in texts and second in texts:
            return texts[first], texts[second]
    for name in _TEXT_NAMES:
        if name in texts:
            return (texts[name],)
    return None


def _detect_label(table: datasets.Dataset, kinds: dict[str, str], exclude: set[str]) -> str:
    """A ClassLabel column, else a conventional name, else the one class-like column."""
    candidates = [col for col, kind in kinds.items() if kind in SCALAR_KINDS and col not in exclude]
    class_labels = [col for col in candidates if kinds[col] == "classlabel"]
    if len(class_labels) == 1:
        return class_labels[0]
    by_name = {col.lower(): col for col in candidates}
    for name in _LABEL_NAMES:
        if name in by_name:
            return by_name[name]
    integers = {col for col in candidates if kinds[col] in ("int", "classlabel")}
    few_values = {col for col in candidates if _is_low_cardinality(table, col)}
    # Narrow step by step: an integer id column is class-like by type but not by cardinality.
    for group in (integers | few_values, few_values, integers & few_values):
        if len(group) == 1:
            return next(iter(group))
    problem = (
        f"several columns could be the label ({', '.join(sorted(integers | few_values))})"
        if integers | few_values
        else f"no ClassLabel column, none named {'/'.join(_LABEL_NAMES)}, and no integer "
        "or low-cardinality column"
    )
    raise InputError(
        f"could not tell which column holds the labels: {problem}; columns: {describe(kinds)}. "
        "Pass --label-col NAME."
    )


def _is_low_cardinality(table: datasets.Dataset, col: str) -> bool:
    """Few distinct values, both in absolute terms and relative to the number of rows."""
    import pyarrow.compute as pc

    distinct = pc.count_distinct(table.data.column(col)).as_py()
    return distinct <= _MAX_DETECTED_CLASSES and distinct < _MAX_DISTINCT_SHARE * table.num_rows


def _detect_text_column(
    table: datasets.Dataset, kinds: dict[str, str], label: str | None, exclude: Sequence[str] = ()
) -> str:
    """The one string column besides the label (and `exclude`); with several, the longest on
    average."""
    texts = [
        col for col, kind in kinds.items() if kind == "str" and col != label and col not in exclude
    ]
    if not texts:
        besides = f"the label {label!r}" if label else "the annotator columns"
        raise InputError(
            f"no input column found: expected an image column or a text column besides "
            f"{besides}; columns: {describe(kinds)}. Pass --input-col NAME "
            "(two names for sentence pairs)."
        )
    return max(texts, key=lambda col: _mean_length(table, col))


def _mean_length(table: datasets.Dataset, col: str) -> float:
    """Mean number of characters of a string column (nulls ignored)."""
    import pyarrow.compute as pc

    mean = pc.mean(pc.utf8_length(table.data.column(col))).as_py()
    return mean or 0.0


def _check_input_kinds(inputs: tuple[str, ...], kinds: dict[str, str]) -> None:
    """One image column, or one or two columns whose values read as text."""
    for col in inputs:
        if kinds[col] == "other":
            raise InputError(
                f"input column {col!r} holds neither text nor images; pass --input-col with a "
                f"text or image column; columns: {describe(kinds)}"
            )
    if len(inputs) == 2 and "image" in (kinds[inputs[0]], kinds[inputs[1]]):
        raise InputError(
            f"input columns {list(inputs)}: an image column cannot be part of a sentence pair; "
            "pass one image column"
        )


@dataclass(frozen=True)
class LabelCodec:
    """Maps a label column's raw values to class ids through the training label names."""

    names: list[str]
    ids_are_indices: bool  # training labels were a ClassLabel: plain integers elsewhere are ids

    @classmethod
    def fit(cls, table: datasets.Dataset, col: str) -> LabelCodec:
        """Label names of the training split: ClassLabel names, else its sorted values."""
        feature = table.features[col]
        kind = column_kind(feature)
        values = _checked_label_values(
            kind, feature, column_values(table, col), col, "the training data"
        )
        if kind == "classlabel":
            names = list(feature.names)
            present = len(set(values))
        elif kind in ("int", "float"):
            names = [str(v) for v in sorted({int(v) for v in values})]
            present = len(names)
        else:
            names = sorted({str(v) for v in values})
            present = len(names)
        if present < 2:
            raise InputError(
                f"only one class ({_label_keys(kind, feature, values[:1])[0]!r}) in label column "
                f"{col!r}; classification needs at least two classes: check --label-col"
            )
        return cls(names, ids_are_indices=kind == "classlabel")

    def encode(self, table: datasets.Dataset, col: str, where: str) -> np.ndarray:
        """Class ids of every row, shape (n_rows,); labels unknown to training are an error."""
        feature = table.features[col]
        kind = column_kind(feature)
        values = _checked_label_values(kind, feature, column_values(table, col), col, where)
        if self.ids_are_indices and kind in ("int", "float"):
            # e.g. a headerless TSV --test file for a parquet whose labels are a ClassLabel
            _check_label_range([int(v) for v in values], len(self.names), col, where)
            return np.asarray(values, dtype=np.int64)
        index = {name: i for i, name in enumerate(self.names)}
        keys = _label_keys(kind, feature, values)
        unseen = sorted(set(keys) - index.keys())
        if unseen:
            raise InputError(
                f"{where} has labels not seen in training: {unseen[:10]}"
                f"{' ...' if len(unseen) > 10 else ''}; the training labels are "
                f"{self.names[:20]}. The held-out data must use the same label set."
            )
        return np.fromiter((index[key] for key in keys), dtype=np.int64, count=len(keys))


def _checked_label_values(kind: str, feature: Any, values: list, col: str, where: str) -> list:
    """The raw labels, after rejecting missing, fractional and out-of-range values."""
    if kind not in SCALAR_KINDS:
        raise InputError(
            f"label column {col!r} holds {kind} values; classes must be integers or strings: "
            "pass --label-col with a class column"
        )
    missing = [i for i, v in enumerate(values) if is_blank(v)]
    if missing:
        raise InputError(
            f"{len(missing)} example(s) in {where} have no label in column {col!r} "
            f"(row ids {show_ids(missing)}); every example needs a class: drop or fill them"
        )
    if kind == "float":
        fractional = [i for i, v in enumerate(values) if not float(v).is_integer()]
        if fractional:
            raise InputError(
                f"label column {col!r} in {where} holds non-integer numbers (e.g. "
                f"{values[fractional[0]]} at row id {fractional[0]}); this looks like a "
                "regression target; classes must be integers or strings"
            )
    if kind == "classlabel":
        _check_label_range(values, feature.num_classes, col, where)
    return values


def _check_label_range(values: list[int], n_classes: int, col: str, where: str) -> None:
    """Class ids must index the label names."""
    bad = [i for i, v in enumerate(values) if not 0 <= v < n_classes]
    if bad:
        raise InputError(
            f"labels out of range in {where}: column {col!r} has {n_classes} class names "
            f"(ids 0..{n_classes - 1}) but row ids {show_ids(bad)} hold "
            f"{sorted({values[i] for i in bad})[:5]}; -1 usually marks unlabeled rows: drop "
            "them, or pass --test with a labeled file"
        )


def _label_keys(kind: str, feature: Any, values: list) -> list[str]:
    """Each raw label as the name it has in the label names."""
    if kind == "classlabel":
        return [feature.names[v] for v in values]
    if kind in ("int", "float"):
        return [str(int(v)) for v in values]
    return [str(v) for v in values]


def is_blank(value: Any) -> bool:
    """None, NaN, or a string with nothing but whitespace."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value  # NaN
    return isinstance(value, str) and not value.strip()


def show_ids(ids: Sequence[int]) -> str:
    """The first few row ids, and how many more there are."""
    shown = ", ".join(str(int(i)) for i in ids[:_MAX_IDS_SHOWN])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > _MAX_IDS_SHOWN else "")


def image_columns(features: datasets.Features) -> list[str]:
    """Names of the columns that hold images (an ``Image`` feature or a bytes/path struct)."""
    return [col for col, feature in features.items() if column_kind(feature) == "image"]


def label_value(feature: Any, label_names: Sequence[str], label: int) -> Any:
    """The raw value a label column of this feature type holds for class id `label`.

    The inverse of how `load` reads labels: a ClassLabel column holds the id itself, an
    integer or float column the number its label name spells, a string column the name.

    Parameters
    ----------
    feature : the label column's datasets feature
    label_names : sequence of str, length n_classes
        The run's label names (index = class id).
    label : int
        Class id in [0, n_classes).
    """
    if not 0 <= label < len(label_names):
        raise InputError(f"class id {label} is outside [0, {len(label_names) - 1}]")
    kind, name = column_kind(feature), label_names[label]
    if kind == "classlabel":
        return int(label)
    if kind == "int":
        return int(name)
    if kind == "float":
        return float(name)
    if kind == "bool":
        return name == "True"
    if kind == "str":
        return name
    raise InputError(f"cannot write a class into a label column of kind {kind!r}")


def as_tuple(cols: Sequence[str] | str) -> tuple[str, ...]:
    """A bare string is one column name, not a sequence of one-letter names."""
    return (cols,) if isinstance(cols, str) else tuple(cols)
