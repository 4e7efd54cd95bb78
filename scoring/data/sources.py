"""Sources -> one uniform dataset view: ids, inputs, labels, label names, modality.

`load(cfg)` reads any supported source and returns a `Dataset` of two `Split`s (training
and held-out). Sources:

- ``"digits"``: scikit-learn's bundled 8x8 digits (offline default).
- a local ``.parquet`` / ``.csv`` / ``.tsv`` / ``.jsonl`` / ``.json`` file, read through
  Hugging Face ``datasets`` (CSV/TSV files without a header row get ``column_0``, ...);
- a local folder of images, one sub-folder per class (``imagefolder``);
- ``"hf:NAME"`` or ``"hf:NAME:CONFIG"``: a Hugging Face Hub dataset.

The order of work keeps large sources cheap: open the source as Arrow tables (nothing
decoded) -> resolve the input and label columns -> encode the labels of whole splits (one
column) -> choose the held-out rows and the ``limit`` subset as row indices -> decode the
inputs of those rows only. Every example keeps its row index in its source split as `id`.

Bad input raises `InputError` with a message that says what was expected and how to fix it;
the private helpers below assume the config passed `_check_config`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.config import DataConfig
from scoring.errors import InputError

if TYPE_CHECKING:
    import datasets
    from PIL import Image as PILImage

# Bump when a change here alters the arrays `load` returns for the same source and config:
# it enters the fingerprint, so caches keyed on it are not reused across such a change.
DATA_VERSION = 1

# suffix -> (datasets builder, reader arguments)
_FILE_READERS: dict[str, tuple[str, dict[str, Any]]] = {
    ".parquet": ("parquet", {}),
    ".csv": ("csv", {}),
    # GLUE-style TSVs leave quotes unescaped; CSV quoting would swallow the lines after a
    # stray '"', so a TSV is read with quoting off.
    ".tsv": ("csv", {"delimiter": "\t", "quoting": csv.QUOTE_NONE}),
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
}
# Auto-detection, in priority order (matched case-insensitively).
_LABEL_NAMES = ("label", "labels", "class", "target", "y", "category", "sentiment")
_TEXT_NAMES = ("text", "sentence", "content", "review", "document", "question")
_PAIR_NAMES = (("premise", "hypothesis"), ("sentence1", "sentence2"))
# A label column found by cardinality has at most this many classes and fewer distinct
# values than this share of rows (free text is mostly distinct, classes repeat).
_MAX_DETECTED_CLASSES = 1000
_MAX_DISTINCT_SHARE = 0.5
_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
_SCALAR_KINDS = frozenset({"classlabel", "int", "float", "str", "bool"})
# Independent random streams per use, so carving does not shift the --limit draw.
_CARVE_STREAM, _LIMIT_STREAM, _LIMIT_TEST_STREAM = 0, 1, 2
_CHUNK_BYTES = 1 << 20
_MAX_IDS_SHOWN = 5
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_SOURCE_HELP = (
    "expected 'digits', a .parquet/.csv/.tsv/.jsonl/.json file, a folder with one "
    "sub-folder of images per class, or hf:NAME[:CONFIG]"
)


@dataclass
class Split:
    """The examples of one split, aligned by position.

    Attributes
    ----------
    ids : ndarray of shape (n_examples,), int64
        Row index of each example in its source split; sorted ascending, stable everywhere.
    inputs : ndarray of shape (n_examples, n_channels, height, width), float32, or list
        Images scaled to [0, 1] with 1 or 3 channels; or texts, one ``str`` per example,
        or one ``(str, str)`` tuple per example for sentence pairs.
    labels : ndarray of shape (n_examples,), int64
        Class ids in [0, n_classes).
    """

    ids: np.ndarray
    inputs: np.ndarray | list
    labels: np.ndarray


@dataclass
class Dataset:
    """A training and a held-out split with everything needed to name and cache them.

    Attributes
    ----------
    train, test : Split
    label_names : list of str, length n_classes
        Index = class id.
    modality : {"image", "text"}
    input_cols : tuple of str
        The resolved input column(s); two for sentence pairs.
    label_col : str
        The resolved label column.
    fingerprint : str
        16 hex chars: hash of the source (and --test file) content, the column choice, the
        limit and the split settings.
    test_origin : {"file", "source", "carved"}
        Where the held-out split came from: the --test file, the source's own
        test/validation split, or a seeded stratified split carved from the training data.
    description : str
        One line for people, e.g. ``"digits"``, ``"cifar10/train.parquet"``,
        ``"hf:glue:sst2"``.
    """

    train: Split
    test: Split
    label_names: list[str]
    modality: str
    input_cols: tuple[str, ...]
    label_col: str
    fingerprint: str
    test_origin: str
    description: str


def load(cfg: DataConfig, *, hf_cache_dir: str | None = None) -> Dataset:
    """Load the source named by `cfg` as a training and a held-out split.

    Parameters
    ----------
    cfg : DataConfig
        Source, optional --test file, column overrides, limit and split settings.
    hf_cache_dir : str, optional
        Passed to every ``datasets.load_dataset`` call; None uses the datasets default.

    Returns
    -------
    Dataset
        ``train`` holds at most ``cfg.limit`` examples (stratified, at least one per class);
        ``test`` is the --test file, the source's labeled test (else validation) split, or
        a carved stratified ``cfg.test_fraction`` of the training split.

    Raises
    ------
    InputError
        For any problem with the source or the config that a person can fix.
    """
    _check_config(cfg)
    if cfg.source == "digits":
        return _load_digits(cfg)
    return _load_tables(cfg, hf_cache_dir)


# --- config ------------------------------------------------------------------------------


def _check_config(cfg: DataConfig) -> None:
    """Reject settings that no source could satisfy."""
    if not cfg.source:
        raise InputError(f"no data source given; {_SOURCE_HELP}")
    if not 0 < cfg.test_fraction < 1:
        raise InputError(
            f"test_fraction must lie strictly between 0 and 1, got {cfg.test_fraction}; "
            "e.g. 0.2 holds out a fifth of the examples"
        )
    if cfg.limit is not None and (not isinstance(cfg.limit, int) or cfg.limit < 1):
        raise InputError(f"limit must be a positive number of examples, got {cfg.limit}")
    if cfg.split_seed < 0:
        raise InputError(f"split_seed must be a non-negative integer, got {cfg.split_seed}")
    if cfg.input_cols is not None and not 1 <= len(_as_tuple(cfg.input_cols)) <= 2:
        raise InputError(
            f"input columns {list(cfg.input_cols)}: give one column, or two for sentence pairs"
        )


def _as_tuple(cols: Sequence[str] | str) -> tuple[str, ...]:
    """A bare string is one column name, not a sequence of one-letter names."""
    return (cols,) if isinstance(cols, str) else tuple(cols)


# --- digits ------------------------------------------------------------------------------


def _load_digits(cfg: DataConfig) -> Dataset:
    """scikit-learn's 8x8 digits; it has no test split, so one is always carved."""
    from sklearn.datasets import load_digits

    if cfg.test is not None:
        raise InputError(
            "--test needs a file or folder source; 'digits' carves its own held-out split "
            "(set test_fraction to change its size)"
        )
    wrong_inputs = cfg.input_cols is not None and _as_tuple(cfg.input_cols) != ("image",)
    if wrong_inputs or cfg.label_col not in (None, "label"):
        raise InputError(
            "digits has exactly two columns, 'image' (the input) and 'label'; "
            "drop the column options or name those columns"
        )

    bunch = load_digits()
    images = (bunch.images[:, None] / 16).astype(np.float32)  # (N, 1, 8, 8), pixels 0..16
    labels = bunch.target.astype(np.int64)  # (N,)
    label_names = [str(k) for k in range(10)]
    train_rows, test_rows = _plan_rows(labels, None, label_names, cfg)

    content = hashlib.sha256(b"digits\0")
    content.update(np.ascontiguousarray(bunch.images).tobytes())
    content.update(np.ascontiguousarray(bunch.target).tobytes())
    input_cols, label_col = ("image",), "label"
    return Dataset(
        train=Split(train_rows, images[train_rows], labels[train_rows]),
        test=Split(test_rows, images[test_rows], labels[test_rows]),
        label_names=label_names,
        modality="image",
        input_cols=input_cols,
        label_col=label_col,
        fingerprint=_fingerprint([content.digest()], input_cols, label_col, cfg),
        test_origin="carved",
        description="digits",
    )


# --- tabular sources (files, folders, Hub) -----------------------------------------------


@dataclass
class _Source:
    """An opened source: its splits as undecoded Arrow-backed tables, and a content digest."""

    splits: dict[str, datasets.Dataset]
    description: str
    digest: bytes


@dataclass
class _HeldOut:
    """Where the held-out examples come from; `table` None means carve from training."""

    table: datasets.Dataset | None
    labels: np.ndarray | None  # (N_test,) for every row of `table`
    origin: str
    where: str
    digest: bytes = b""


def _load_tables(cfg: DataConfig, cache_dir: str | None) -> Dataset:
    """Any source read through Hugging Face datasets."""
    source = _open_source(cfg.source, cache_dir, role="source")
    train = source.splits["train"]
    input_cols, label_col = _resolve_columns(train, cfg.input_cols, cfg.label_col)
    codec = _LabelCodec.fit(train, label_col)
    train_labels = codec.encode(train, label_col, "the training data")  # (N,)
    held_out = _held_out(cfg, source, (*input_cols, label_col), codec, cache_dir)
    train_rows, test_rows = _plan_rows(train_labels, held_out.labels, codec.names, cfg)

    test_table = train if held_out.table is None else held_out.table
    test_labels = train_labels if held_out.labels is None else held_out.labels
    parts = [(train, train_rows, "the training data"), (test_table, test_rows, held_out.where)]
    modality = _modality(train, input_cols)
    if _modality(test_table, input_cols) != modality:
        raise InputError(
            f"{held_out.where} holds {_modality(test_table, input_cols)} in {list(input_cols)} "
            f"but the training data holds {modality}; both need the same kind of input"
        )
    if modality == "image":
        train_inputs, test_inputs = _read_images(input_cols[0], parts)
    else:
        train_inputs, test_inputs = (_read_texts(t, input_cols, r, w) for t, r, w in parts)

    return Dataset(
        train=Split(train_rows, train_inputs, train_labels[train_rows]),
        test=Split(test_rows, test_inputs, test_labels[test_rows]),
        label_names=codec.names,
        modality=modality,
        input_cols=input_cols,
        label_col=label_col,
        fingerprint=_fingerprint([source.digest, held_out.digest], input_cols, label_col, cfg),
        test_origin=held_out.origin,
        description=source.description,
    )


def _open_source(spec: str, cache_dir: str | None, role: str) -> _Source:
    """Open a Hub name, a local file or a local image folder."""
    if spec.startswith("hf:"):
        return _open_hub(spec.removeprefix("hf:"), cache_dir)
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(f"{role} {spec!r} does not exist; {_SOURCE_HELP}")
    if path.is_dir():
        return _open_folder(path, cache_dir)
    table = _open_file(path, cache_dir)
    name = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    return _Source({"train": table}, name, _file_digest(path))


def _open_file(path: Path, cache_dir: str | None) -> datasets.Dataset:
    """One local data file as a table (HF names a single-file load's split 'train')."""
    suffix = path.suffix.lower()
    if suffix not in _FILE_READERS:
        raise InputError(
            f"{path}: unknown file type {suffix or '(none)'!r}; expected one of "
            f"{', '.join(_FILE_READERS)}, or a folder with one sub-folder of images per class"
        )
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty; expected a header and one example per row")
    builder, options = _FILE_READERS[suffix]
    if builder == "csv":
        options = {**options, **_csv_header_options(path, options)}
    table = _hf_load(str(path), cache_dir, builder, data_files=str(path), **options)["train"]
    if table.num_rows == 0:
        raise InputError(f"{path} has no rows; expected one example per row")
    return table


def _csv_header_options(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Reader options that name the columns column_0, column_1, ... when there is no header.

    A header is taken to be missing when a "column name" in the first row looks like data:
    a number, or a phrase of more than six words.
    """
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as file:
            rows = csv.reader(
                file,
                delimiter=options.get("delimiter", ","),
                quoting=options.get("quoting", csv.QUOTE_MINIMAL),
            )
            first, second = next(rows, None), next(rows, None)
    except csv.Error:  # e.g. a huge first field: let the real reader decide
        return {}
    if not first:
        raise InputError(f"{path} has no rows; expected one example per row")
    if any(_looks_like_data(cell) for cell in first):
        return {"column_names": [f"column_{i}" for i in range(len(first))]}
    if second is None:
        raise InputError(f"{path} has a header row but no examples; expected one example per row")
    return {}


def _looks_like_data(cell: str) -> bool:
    """A number or a sentence is a value, not a column name."""
    cell = cell.strip()
    return bool(_NUMBER.fullmatch(cell)) or len(cell.split()) > 6


def _open_folder(path: Path, cache_dir: str | None) -> _Source:
    """An image folder: one sub-folder per class (or train/ and test/ folders of those)."""
    splits = _hf_load(
        f"image folder {path} (expected one sub-folder of images per class)",
        cache_dir,
        "imagefolder",
        data_dir=str(path),
    )
    if "train" not in splits:
        raise InputError(
            f"image folder {path} has no training images (found splits {sorted(splits)}); "
            "expected one sub-folder of images per class"
        )
    return _Source(dict(splits), f"{path.name}/", _folder_digest(path))


def _open_hub(spec: str, cache_dir: str | None) -> _Source:
    """A Hub dataset 'NAME' or 'NAME:CONFIG'; its content digest is datasets' own."""
    name, _, config = spec.partition(":")
    splits = _hf_load(
        f"Hub dataset {name!r}{f' config {config!r}' if config else ''} (needs internet "
        "and the exact name, e.g. hf:uoft-cs/cifar10 or hf:glue:sst2)",
        cache_dir,
        name,
        config or None,
    )
    if "train" not in splits:
        raise InputError(f"hf:{spec} has no 'train' split (found {sorted(splits)})")
    ids = {"name": name, "config": config, "splits": {k: v._fingerprint for k, v in splits.items()}}
    digest = hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).digest()
    return _Source(dict(splits), f"hf:{spec}", digest)


def _hf_load(what: str, cache_dir: str | None, *args: Any, **kwargs: Any) -> Any:
    """`datasets.load_dataset`, with a reader's failure reported as bad input."""
    import datasets

    datasets.disable_progress_bars()  # the engine draws its own progress; these are noise
    try:
        return datasets.load_dataset(*args, cache_dir=cache_dir, **kwargs)
    except Exception as error:  # a reader failing on the user's data is not a bug here
        raise InputError(f"could not read {what}: {_root_cause(error)}") from error


def _root_cause(error: BaseException) -> str:
    """The innermost error: datasets wraps parser errors in a generic one."""
    for _ in range(20):  # chains can in principle loop
        inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    return f"{type(error).__name__}: {error}"


def _held_out(
    cfg: DataConfig,
    source: _Source,
    columns: tuple[str, ...],
    codec: _LabelCodec,
    cache_dir: str | None,
) -> _HeldOut:
    """The --test file, else the source's labeled test or validation split, else carving."""
    label_col = columns[-1]
    if cfg.test is not None:
        if cfg.test.startswith("hf:"):
            raise InputError("--test takes a local file or image folder, not a Hub dataset")
        test_source = _open_source(cfg.test, cache_dir, role="--test file")
        table = test_source.splits["train"]
        _require_columns(_kinds(table), columns, "the --test file", same_as_training=True)
        labels = codec.encode(table, label_col, "the --test file")
        return _HeldOut(table, labels, "file", "the --test file", test_source.digest)
    for name in ("test", "validation"):
        table = source.splits.get(name)
        if table is None or label_col not in table.column_names:
            continue
        # Hub test splits often hide their labels as -1: such a split cannot score a model.
        if all(v is None or v == -1 for v in _column(table, label_col)):
            continue
        where = f"the source's {name!r} split"
        _require_columns(_kinds(table), columns, where, same_as_training=True)
        return _HeldOut(table, codec.encode(table, label_col, where), "source", where)
    return _HeldOut(None, None, "carved", "the training data")


def _column(table: datasets.Dataset, col: str, rows: np.ndarray | None = None) -> list:
    """Raw values of one column (images as {'bytes', 'path'} dicts), of all rows or some.

    Reads the Arrow table directly, which skips datasets' formatting and image decoding;
    tables here come straight from `load_dataset`, so Arrow order is source row order.
    """
    import pyarrow as pa

    column = table.data.column(col)
    if rows is not None:
        column = column.take(pa.array(rows, type=pa.int64()))
    return column.to_pylist()


# --- columns -----------------------------------------------------------------------------


def _column_kind(feature: Any) -> str:
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


def _modality(table: datasets.Dataset, input_cols: tuple[str, ...]) -> str:
    """'image' for an image column, else 'text'."""
    return "image" if _column_kind(table.features[input_cols[0]]) == "image" else "text"


def _kinds(table: datasets.Dataset) -> dict[str, str]:
    """Column name -> kind, in table order."""
    return {col: _column_kind(table.features[col]) for col in table.column_names}


def _describe(kinds: dict[str, str]) -> str:
    """'img (image), label (classlabel)' for error messages."""
    return ", ".join(f"{col} ({kind})" for col, kind in kinds.items())


def _require_columns(
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
        f"available columns: {_describe(kinds)}"
    )


def _resolve_columns(
    table: datasets.Dataset, input_cols: Sequence[str] | None, label_col: str | None
) -> tuple[tuple[str, ...], str]:
    """The input column(s) and the label column: the overrides, else auto-detected."""
    kinds = _kinds(table)
    inputs = _as_tuple(input_cols) if input_cols else None
    _require_columns(kinds, [*(inputs or ()), *filter(None, [label_col])], "the training data")
    if inputs is None:
        inputs = _detect_inputs(kinds, exclude={label_col})
    label = label_col or _detect_label(table, kinds, exclude=set(inputs or ()))
    if inputs is None:
        inputs = (_detect_text_column(table, kinds, label),)
    if label in inputs:
        raise InputError(
            f"column {label!r} cannot be both an input and the label; "
            "pass different --input-col and --label-col"
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
    candidates = [
        col for col, kind in kinds.items() if kind in _SCALAR_KINDS and col not in exclude
    ]
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
        f"could not tell which column holds the labels: {problem}; columns: {_describe(kinds)}. "
        "Pass --label-col NAME."
    )


def _is_low_cardinality(table: datasets.Dataset, col: str) -> bool:
    """Few distinct values, both in absolute terms and relative to the number of rows."""
    import pyarrow.compute as pc

    distinct = pc.count_distinct(table.data.column(col)).as_py()
    return distinct <= _MAX_DETECTED_CLASSES and distinct < _MAX_DISTINCT_SHARE * table.num_rows


def _detect_text_column(table: datasets.Dataset, kinds: dict[str, str], label: str) -> str:
    """The one string column besides the label; with several, the longest on average."""
    texts = [col for col, kind in kinds.items() if kind == "str" and col != label]
    if not texts:
        raise InputError(
            f"no input column found: expected an image column or a text column besides the "
            f"label {label!r}; columns: {_describe(kinds)}. Pass --input-col NAME "
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
                f"text or image column; columns: {_describe(kinds)}"
            )
    if len(inputs) == 2 and "image" in (kinds[inputs[0]], kinds[inputs[1]]):
        raise InputError(
            f"input columns {list(inputs)}: an image column cannot be part of a sentence pair; "
            "pass one image column"
        )


# --- labels ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LabelCodec:
    """Maps a label column's raw values to class ids through the training label names."""

    names: list[str]
    ids_are_indices: bool  # training labels were a ClassLabel: plain integers elsewhere are ids

    @classmethod
    def fit(cls, table: datasets.Dataset, col: str) -> _LabelCodec:
        """Label names of the training split: ClassLabel names, else its sorted values."""
        feature = table.features[col]
        kind = _column_kind(feature)
        values = _checked_label_values(kind, feature, _column(table, col), col, "the training data")
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
        kind = _column_kind(feature)
        values = _checked_label_values(kind, feature, _column(table, col), col, where)
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
    if kind not in _SCALAR_KINDS:
        raise InputError(
            f"label column {col!r} holds {kind} values; classes must be integers or strings: "
            "pass --label-col with a class column"
        )
    missing = [i for i, v in enumerate(values) if _is_blank(v)]
    if missing:
        raise InputError(
            f"{len(missing)} example(s) in {where} have no label in column {col!r} "
            f"(row ids {_show_ids(missing)}); every example needs a class: drop or fill them"
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
            f"(ids 0..{n_classes - 1}) but row ids {_show_ids(bad)} hold "
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


def _is_blank(value: Any) -> bool:
    """None, NaN, or a string with nothing but whitespace."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value  # NaN
    return isinstance(value, str) and not value.strip()


def _show_ids(ids: Sequence[int]) -> str:
    """The first few row ids, and how many more there are."""
    shown = ", ".join(str(int(i)) for i in ids[:_MAX_IDS_SHOWN])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > _MAX_IDS_SHOWN else "")


# --- which rows ----------------------------------------------------------------------------


def _plan_rows(
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


# --- inputs ------------------------------------------------------------------------------


def _read_texts(
    table: datasets.Dataset, cols: tuple[str, ...], rows: np.ndarray, where: str
) -> list[str] | list[tuple[str, str]]:
    """Texts of the given rows; two columns give (str, str) pairs."""
    columns = [_text_column(table, col, rows, where) for col in cols]
    return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))


def _text_column(table: datasets.Dataset, col: str, rows: np.ndarray, where: str) -> list[str]:
    """One column's values as strings; missing or empty text is an error."""
    values = _column(table, col, rows)
    blank = [int(row) for row, value in zip(rows, values, strict=True) if _is_blank(value)]
    if blank:
        raise InputError(
            f"{len(blank)} example(s) in {where} have empty or missing text in column {col!r} "
            f"(row ids {_show_ids(blank)}); every example needs text: drop or fill them"
        )
    return [value if isinstance(value, str) else str(value) for value in values]


def _read_images(
    col: str, parts: list[tuple[datasets.Dataset, np.ndarray, str]]
) -> list[np.ndarray]:
    """Decode the given rows of each part; one mode and one size across all parts.

    Returns
    -------
    list of ndarray of shape (n_rows, n_channels, height, width), float32 in [0, 1]
    """
    from PIL import Image

    decoded = [
        [
            _open_image(cell, int(row), where)
            for row, cell in zip(rows, _column(t, col, rows), strict=True)
        ]
        for t, rows, where in parts
    ]
    everything = [image for images in decoded for image in images]
    # Gray stays one channel only if every image is gray: mixed sets need RGB for all.
    mode = "L" if all(image.mode in _GRAYSCALE_MODES for image in everything) else "RGB"
    sizes = Counter(image.size for image in everything)
    size = sizes.most_common(1)[0][0]
    if len(sizes) > 1:
        warnings.warn(
            f"images come in {len(sizes)} sizes; resizing all to {size[0]}x{size[1]} "
            "(the most common)",
            stacklevel=4,  # the caller of `load`
        )
    return [_to_array(images, mode, size, Image.Resampling.BILINEAR) for images in decoded]


def _open_image(cell: dict | None, row: int, where: str) -> PILImage.Image:
    """Decode one stored image ({'bytes', 'path'}); failures name the row and file."""
    from PIL import Image

    data, path = (cell or {}).get("bytes"), (cell or {}).get("path")
    at = f"row id {row} of {where}" + (f" ({path})" if path else "")
    if not data and not path:
        raise InputError(f"no image at {at}; every example needs an image: drop or fill it")
    try:
        with Image.open(io.BytesIO(data) if data else path) as image:
            image.load()
            return image
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(
            f"unreadable image at {at}: {error}; fix or remove that file or row"
        ) from error


def _to_array(
    images: list[PILImage.Image], mode: str, size: tuple[int, int], resample: int
) -> np.ndarray:
    """Stack images as (N, C, H, W) float32 in [0, 1]."""
    width, height = size
    channels = 1 if mode == "L" else 3
    pixels = np.empty((len(images), height, width, channels), dtype=np.uint8)  # (N, H, W, C)
    for i, image in enumerate(images):
        image = image.convert(mode)
        if image.size != size:
            image = image.resize(size, resample)
        pixels[i] = np.asarray(image).reshape(height, width, channels)
    array = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32)  # (N, C, H, W)
    array /= 255
    return array


# --- fingerprint ---------------------------------------------------------------------------


def _fingerprint(
    content_digests: list[bytes], input_cols: tuple[str, ...], label_col: str, cfg: DataConfig
) -> str:
    """16 hex chars over the content of the data and every setting that picks examples."""
    settings = {
        "input_cols": list(input_cols),
        "label_col": label_col,
        "limit": cfg.limit,
        "test_fraction": cfg.test_fraction,
        "split_seed": cfg.split_seed,
        "data_version": DATA_VERSION,
    }
    digest = hashlib.sha256()
    for part in content_digests:
        digest.update(part)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _file_digest(path: Path) -> bytes:
    """sha256 of a file's bytes, read in chunks (sources can be gigabytes)."""
    digest = hashlib.sha256()
    _hash_bytes(digest, path)
    return digest.digest()


def _folder_digest(root: Path) -> bytes:
    """sha256 of every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        # The size keeps file boundaries unambiguous in the concatenated stream.
        header = f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0"
        digest.update(header.encode())
        _hash_bytes(digest, path)
    return digest.digest()


def _hash_bytes(digest: Any, path: Path) -> None:
    """Feed a file to a hash in 1 MiB chunks."""
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)


# --- original rows (for export) ------------------------------------------------------------


def source_rows(
    cfg: DataConfig,
    ids: np.ndarray,
    *,
    hf_cache_dir: str | None = None,
    fingerprint: str | None = None,
) -> datasets.Dataset:
    """The original training-split rows with the given ids, every source column as it is.

    Nothing is decoded: images keep the source's representation (an HF ``Image`` feature or
    a ``{'bytes', 'path'}`` struct; an image folder's images as paths), texts stay text,
    labels keep their column type (ClassLabel ids, integers, strings, ...).

    Parameters
    ----------
    cfg : DataConfig
        The config the run was scored with (``config["config"]["data"]``).
    ids : array-like of shape (n_rows,), int
        Row indices in the source's training split (`Split.ids` values); any order,
        the result follows it.
    hf_cache_dir : str, optional
        Passed to ``datasets.load_dataset``.
    fingerprint : str, optional
        The run's `Dataset.fingerprint`. When given, the source is checked to hold the same
        content (and the same column choice and split settings) as when the run was scored,
        so ids cannot silently point at other rows.

    Returns
    -------
    datasets.Dataset of n_rows rows, in memory
        For ``"digits"``: columns ``image`` (``Image`` feature, 8x8 grayscale PNG, sklearn's
        0..16 pixel values scaled to 0..255) and ``label`` (``ClassLabel`` named "0".."9").

    Raises
    ------
    InputError
        Source missing or unreadable, ids out of range, or a changed source.
    """
    _check_config(cfg)
    rows = np.asarray(ids)
    if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
        raise InputError(f"ids must be a 1-D array of integer row ids, got shape {rows.shape}")
    rows = rows.astype(np.int64)
    if cfg.source == "digits":
        return _digits_rows(cfg, rows, fingerprint)
    source = _open_source(cfg.source, hf_cache_dir, role="source")
    train = source.splits["train"]
    if fingerprint is not None:
        input_cols, label_col = _resolve_columns(train, cfg.input_cols, cfg.label_col)
        test_digest = b""
        if cfg.test is not None:
            test = Path(cfg.test).expanduser()
            if not test.exists():
                raise InputError(f"--test file {cfg.test!r} of this run no longer exists")
            test_digest = _folder_digest(test) if test.is_dir() else _file_digest(test)
        found = _fingerprint([source.digest, test_digest], input_cols, label_col, cfg)
        _check_fingerprint(found, fingerprint, source.description)
    _check_row_ids(rows, train.num_rows, source.description)
    return _take(train, rows)


def _digits_rows(cfg: DataConfig, rows: np.ndarray, fingerprint: str | None) -> datasets.Dataset:
    """The digits rows as a table: PNG images (pixels 0..16 scaled to 0..255) and labels."""
    import datasets
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    if fingerprint is not None:
        content = hashlib.sha256(b"digits\0")  # as in _load_digits
        content.update(np.ascontiguousarray(bunch.images).tobytes())
        content.update(np.ascontiguousarray(bunch.target).tobytes())
        found = _fingerprint([content.digest()], ("image",), "label", cfg)
        _check_fingerprint(found, fingerprint, "digits")
    _check_row_ids(rows, len(bunch.target), "digits")
    pixels = np.rint(bunch.images[rows] * (255 / 16)).astype(np.uint8)  # (n, 8, 8)
    images = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")  # uint8 (8, 8) -> mode "L"
        images.append({"bytes": buffer.getvalue(), "path": None})
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(k) for k in range(10)])}
    )
    labels = bunch.target[rows].astype(np.int64).tolist()
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def _check_fingerprint(found: str, expected: str, description: str) -> None:
    if found != expected:
        raise InputError(
            f"the source {description} is not the one this run was scored on (its content or "
            "the column/split settings changed since); row ids would point at other examples. "
            "Restore the original file, or score the current one and export from that run."
        )


def _check_row_ids(rows: np.ndarray, n_rows: int, description: str) -> None:
    bad = rows[(rows < 0) | (rows >= n_rows)]
    if bad.size:
        raise InputError(
            f"row ids {_show_ids(bad.tolist())} are outside {description}'s training split "
            f"(rows 0..{n_rows - 1})"
        )


def _take(table: datasets.Dataset, rows: np.ndarray) -> datasets.Dataset:
    """An in-memory copy of the given rows with the same features (Arrow order = row order)."""
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    taken = table.data.table.take(pa.array(rows, type=pa.int64()))
    info = datasets.DatasetInfo(features=table.features.copy())
    return datasets.Dataset(InMemoryTable(taken), info=info)


def image_columns(features: datasets.Features) -> list[str]:
    """Names of the columns that hold images (an ``Image`` feature or a bytes/path struct)."""
    return [col for col, feature in features.items() if _column_kind(feature) == "image"]


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
    kind, name = _column_kind(feature), label_names[label]
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
