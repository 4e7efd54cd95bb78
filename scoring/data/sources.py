"""Sources -> one uniform dataset view: ids, inputs, labels, label names, modality.

`load(cfg)` reads any supported source and returns a `Dataset` of two `Split`s (training
and held-out). Sources:

- ``"digits"``: scikit-learn's bundled 8x8 digits (offline default).
- `TABLE_SOURCES`, read through Hugging Face ``datasets``, one class each: a local
  ``.parquet`` / ``.csv`` / ``.tsv`` / ``.jsonl`` / ``.json`` file (`LocalFile`; CSV/TSV
  files without a header row get ``column_0``, ...), a local folder of images with one
  sub-folder per class (`ImageFolder`), ``"hf:NAME"`` or ``"hf:NAME:CONFIG"`` (`HubDataset`).

The order of work keeps large sources cheap: open the source as Arrow tables (nothing
decoded) -> resolve the input and label columns -> encode the labels of whole splits (one
column) -> choose the held-out rows and the ``limit`` subset as row indices -> decode the
inputs of those rows only. Every example keeps its row index in its source split as `id`.

Column choice and label encoding live in `columns`, row choice in `rows`, decoding in
`decode`. Bad input raises `InputError` with a message that says what was expected and how to
fix it; the private helpers below assume the config passed `_check_config`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.config import DataConfig
from scoring.data import annotators
from scoring.data.columns import (
    LabelCodec,
    as_tuple,
    column_kinds,
    column_values,
    describe,
    input_modality,
    require_columns,
    resolve_columns,
)
from scoring.data.decode import PIXEL_DIVISOR, read_image_sizes, read_images, read_texts
from scoring.data.rows import check_row_ids, plan_rows, take
from scoring.errors import InputError

if TYPE_CHECKING:
    import datasets

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
_CHUNK_BYTES = 1 << 20
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# Python object reprs in library messages (a resolver's functools.partial(...), a buffer's
# <_io.BytesIO object at 0x...>) say nothing to a person: cut from the message.
_OBJECT_REPR = re.compile(
    r"\s*(with resolver )?functools\.partial\(.*|<[\w.]+ object at 0x[0-9a-fA-F]+>"
)
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
    inputs : ndarray of shape (n_examples, n_channels, height, width), uint8, or list
        Images with 1 or 3 channels, as decoded (the models take value /
        `Dataset.pixel_divisor`, converted per batch); or texts, one ``str`` per example,
        or one ``(str, str)`` tuple per example for sentence pairs.
    labels : ndarray of shape (n_examples,), int64
        Class ids in [0, n_classes).
    votes : ndarray of shape (n_examples, n_annotators), int64, or None
        Several annotators (`Dataset.annotators`): each one's class id, -1 for no vote.
    sizes : ndarray of shape (n_examples, 2), int64, or None
        Images: each one's (width, height) as stored, before decoding resized them all to
        one size (the image properties `odd_size`, `odd_aspect_ratio` read them). None for
        text, and where not known (then the decoded size is the stored one).
    """

    ids: np.ndarray
    inputs: np.ndarray | list
    labels: np.ndarray
    votes: np.ndarray | None = None
    sizes: np.ndarray | None = None


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
    label_col : str or None
        The resolved label column; None when the label is the annotators' majority vote.
    fingerprint : str
        16 hex chars: hash of the source (and --test file) content, the column choice, the
        limit and the split settings.
    test_origin : {"file", "source", "carved"}
        Where the held-out split came from: the --test file, the source's own
        test/validation split, or a seeded stratified split carved from the training data.
    description : str
        One line for people, e.g. ``"digits"``, ``"cifar10/train.parquet"``,
        ``"hf:glue:sst2"``.
    pixel_divisor : int or None
        uint8 images: the models' float32 input is value / pixel_divisor (255 for image
        files, 16 for digits' 0..16). None for text, and for images held as float32.
    annotators : tuple of str or None
        Several annotators per example: their names (the --annotator-cols, or the
        --annotations file's), in the order of `Split.votes`' columns; None otherwise.
    """

    train: Split
    test: Split
    label_names: list[str]
    modality: str
    input_cols: tuple[str, ...]
    label_col: str | None
    fingerprint: str
    test_origin: str
    description: str
    pixel_divisor: int | None = None
    annotators: tuple[str, ...] | None = None


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


def check_source(cfg: DataConfig) -> None:
    """Refuse a source, --test or --annotations file, or a named column that `load` would
    refuse, from headers alone: in well under a second, before any job or torch starts.

    Reads a parquet file's schema, a CSV/TSV/JSONL file's first rows and an image folder's
    listing; never the data itself, never the Hub (a Hub name is the job's to reach). It
    checks a subset of what `load` checks, with the same messages: what fails here `load`
    refuses too, what passes may still be refused there (column auto-detection, label
    values, unreadable rows). `winnow score` and the app's form both call it first.

    Parameters
    ----------
    cfg : DataConfig
        The source, the optional --test and --annotations files and the named columns.

    Raises
    ------
    InputError
        Naming the file or column, what was expected and how to fix it.
    """
    _check_config(cfg)
    if cfg.source == "digits":
        _check_digits(cfg)
        return
    voted = cfg.annotator_cols is not None or cfg.annotations is not None
    inputs = list(as_tuple(cfg.input_cols)) if cfg.input_cols else []
    labels = [cfg.label_col] if cfg.label_col else []
    kinds = _source_columns(cfg.source, role="source")
    if kinds is not None:  # resolve_columns' first check
        require_columns(kinds, [*inputs, *labels, *(cfg.annotator_cols or ())], "the training data")
        if not inputs:  # detection needs the rows, but a table with no candidate at all fails
            _require_an_input_candidate(kinds, {*labels, *(cfg.annotator_cols or ())})
    if cfg.annotations is not None:
        _annotations_path(cfg)
    if cfg.test is None:
        return
    if not voted and cfg.test.startswith("hf:"):
        raise InputError("--test takes a local file or image folder, not a Hub dataset")
    test_kinds = _source_columns(cfg.test, role="--test file")
    # The held-out file needs the named inputs and the label column, or (labelled by the
    # annotators' majority) their columns: as `_held_out` and `_voted_held_out` require.
    majority = voted and not labels
    needed = [*inputs, *(cfg.annotator_cols or () if majority else labels)]
    if test_kinds is not None:
        require_columns(test_kinds, needed, "the --test file", same_as_training=True)


def _require_an_input_candidate(kinds: dict[str, str], taken: set[str]) -> None:
    """Refuse a table where auto-detection cannot find an input: no image column and no text
    column besides the label and annotator columns (`resolve_columns` would refuse it after
    reading the rows)."""
    if any(kind in ("image", "str") and col not in taken for col, kind in kinds.items()):
        return
    raise InputError(
        "no input column found: expected an image column (Hugging Face Image, or a struct of "
        "bytes and path) or a text column besides the label; columns: "
        f"{describe(kinds)}. Pass --input-col NAME (two names for sentence pairs)."
    )


def _source_columns(spec: str, role: str) -> dict[str, str] | None:
    """Column name -> kind of the source a spec names, from its header; None when only
    opening it tells (the Hub, a folder, a file whose first rows do not parse alone)."""
    source, path = _claimant(spec, role)
    return source.columns(spec, path)


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
    if cfg.input_cols is not None and not 1 <= len(as_tuple(cfg.input_cols)) <= 2:
        raise InputError(
            f"input columns {list(cfg.input_cols)}: give one column, or two for sentence pairs"
        )


# --- digits ------------------------------------------------------------------------------


def _check_digits(cfg: DataConfig) -> None:
    """The options digits cannot take: a --test file, annotators, other columns."""
    if cfg.test is not None:
        raise InputError(
            "--test needs a file or folder source; 'digits' carves its own held-out split "
            "(set test_fraction to change its size)"
        )
    if cfg.annotator_cols is not None or cfg.annotations is not None:
        raise InputError(
            "digits has one label per example and no annotators; --annotator-cols and "
            "--annotations need a file or folder source"
        )
    wrong_inputs = cfg.input_cols is not None and as_tuple(cfg.input_cols) != ("image",)
    if wrong_inputs or cfg.label_col not in (None, "label"):
        raise InputError(
            "digits has exactly two columns, 'image' (the input) and 'label'; "
            "drop the column options or name those columns"
        )


def _load_digits(cfg: DataConfig) -> Dataset:
    """scikit-learn's 8x8 digits; it has no test split, so one is always carved."""
    from sklearn.datasets import load_digits

    _check_digits(cfg)
    bunch = load_digits()
    images = bunch.images[:, None].astype(np.uint8)  # (N, 1, 8, 8), pixels 0..16 (/ 16)
    labels = bunch.target.astype(np.int64)  # (N,)
    label_names = [str(k) for k in range(10)]
    train_rows, test_rows = plan_rows(labels, None, label_names, cfg)

    content = hashlib.sha256(b"digits\0")
    content.update(np.ascontiguousarray(bunch.images).tobytes())
    content.update(np.ascontiguousarray(bunch.target).tobytes())
    input_cols, label_col = ("image",), "label"
    sizes = np.full((len(labels), 2), 8, dtype=np.int64)  # (N, 2): every digit is 8x8
    return Dataset(
        train=Split(train_rows, images[train_rows], labels[train_rows], sizes=sizes[train_rows]),
        test=Split(test_rows, images[test_rows], labels[test_rows], sizes=sizes[test_rows]),
        label_names=label_names,
        modality="image",
        input_cols=input_cols,
        label_col=label_col,
        fingerprint=_fingerprint([content.digest()], input_cols, label_col, cfg),
        test_origin="carved",
        description="digits",
        pixel_divisor=16,
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
    got = _labelled(cfg, source, cache_dir)
    input_cols, label_col, names = got.input_cols, got.label_col, got.names
    train_labels, held_out = got.train_labels, got.held_out  # (N,)
    train_rows, test_rows = plan_rows(train_labels, held_out.labels, names, cfg)

    test_table = train if held_out.table is None else held_out.table
    test_labels = train_labels if held_out.labels is None else held_out.labels
    parts = [(train, train_rows, "the training data"), (test_table, test_rows, held_out.where)]
    modality = input_modality(train, input_cols)
    test_modality = input_modality(test_table, input_cols)
    if test_modality != modality:
        raise InputError(
            f"{held_out.where} holds {test_modality} in {list(input_cols)} "
            f"but the training data holds {modality}; both need the same kind of input"
        )
    train_sizes = test_sizes = None
    if modality == "image":
        train_inputs, test_inputs = read_images(input_cols[0], parts)
        train_sizes, test_sizes = read_image_sizes(input_cols[0], parts)  # before any resize
    else:
        train_inputs, test_inputs = (read_texts(t, input_cols, r, w) for t, r, w in parts)

    digests = [source.digest, held_out.digest, got.votes_digest]
    return Dataset(
        train=Split(
            train_rows, train_inputs, train_labels[train_rows], got.votes(train_rows), train_sizes
        ),
        test=Split(
            test_rows, test_inputs, test_labels[test_rows], got.votes(test_rows, True), test_sizes
        ),
        label_names=names,
        modality=modality,
        input_cols=input_cols,
        label_col=label_col,
        fingerprint=_fingerprint(digests, input_cols, label_col, cfg),
        test_origin=held_out.origin,
        description=source.description,
        # uint8 as decoded; float32 only from `read_images(as_float=True)` (the benchmark's
        # "before"), which the models take as it is.
        pixel_divisor=PIXEL_DIVISOR if getattr(train_inputs, "dtype", None) == np.uint8 else None,
        annotators=got.annotators,
    )


@dataclass
class _Labelled:
    """The columns and labels of a source: one label column, or several annotators' votes."""

    input_cols: tuple[str, ...]
    label_col: str | None
    names: list[str]
    train_labels: np.ndarray  # (n_rows,) of the training table
    held_out: _HeldOut
    annotators: tuple[str, ...] | None = None
    train_votes: np.ndarray | None = None  # (n_rows, A) of the training table
    test_votes: np.ndarray | None = None  # (n_test_rows, A) of held_out.table
    votes_digest: bytes = b""  # the --annotations file's content

    def votes(self, rows: np.ndarray, heldout: bool = False) -> np.ndarray | None:
        """The chosen rows' votes, (n, A); held-out rows carved from training keep theirs."""
        if self.train_votes is None:
            return None
        if not heldout or self.held_out.table is None:
            return self.train_votes[rows]
        if self.test_votes is None:  # a held-out file without votes: nobody labelled its rows
            n_annotators = self.train_votes.shape[1]
            return np.full((len(rows), n_annotators), annotators.NO_VOTE, dtype=np.int64)
        return self.test_votes[rows]


def _labelled(cfg: DataConfig, source: _Source, cache_dir: str | None) -> _Labelled:
    """The input and label columns, the label names, the labels and the held-out split."""
    if cfg.annotator_cols is not None or cfg.annotations is not None:
        return _voted(cfg, source, cache_dir)
    train = source.splits["train"]
    input_cols, label_col = resolve_columns(train, cfg.input_cols, cfg.label_col)
    codec = LabelCodec.fit(train, label_col)
    train_labels = codec.encode(train, label_col, "the training data")  # (N,)
    held_out = _held_out(cfg, source, (*input_cols, label_col), codec, cache_dir)
    return _Labelled(input_cols, label_col, codec.names, train_labels, held_out)


def _voted(cfg: DataConfig, source: _Source, cache_dir: str | None) -> _Labelled:
    """Several annotators: their votes, and the label column or else their majority vote."""
    train = source.splits["train"]
    cols = cfg.annotator_cols or ()
    input_cols, label_col = resolve_columns(
        train, cfg.input_cols, cfg.label_col, annotator_cols=cols, voted=True
    )
    label_codec = LabelCodec.fit(train, label_col) if label_col else None
    digest = b""
    if cols:
        raw = annotators.column_votes(train, cols, "the training data")
    else:
        raw, digest = _annotations_file(cfg, train.num_rows, cache_dir)
    codec = annotators.VoteCodec.fit(raw, label_codec)
    votes = codec.encode(raw, "the training data")  # (n_rows, A)
    annotators.require_votes(votes, raw.annotators, "the training data")
    if label_codec is not None:
        labels = label_codec.encode(train, label_col, "the training data")
        held_out = _held_out(cfg, source, (*input_cols, label_col), label_codec, cache_dir)
    else:
        labels = annotators.majority_vote(votes, len(codec.names))
        held_out = _voted_held_out(cfg, source, input_cols, codec, cache_dir)
    test_votes, held = None, held_out.table
    if held is not None and cols and set(cols) <= set(held.column_names):
        where = held_out.where
        test_votes = codec.encode(annotators.column_votes(held, cols, where), where)
    return _Labelled(
        input_cols,
        label_col,
        codec.names,
        labels,
        held_out,
        annotators=raw.annotators,
        train_votes=votes,
        test_votes=test_votes,
        votes_digest=digest,
    )


def _annotations_file(
    cfg: DataConfig, n_rows: int, cache_dir: str | None
) -> tuple[annotators.RawVotes, bytes]:
    """The votes of the --annotations file, and its content digest (for the fingerprint)."""
    path = _annotations_path(cfg)
    raw = annotators.file_votes(_open_file(path, cache_dir), n_rows, f"--annotations {path.name}")
    return raw, _file_digest(path, cache_dir)


def _annotations_path(cfg: DataConfig) -> Path:
    """The --annotations file, which must exist."""
    path = Path(str(cfg.annotations)).expanduser()
    if not path.is_file():
        raise InputError(
            f"--annotations file {cfg.annotations!r} does not exist; expected a .csv, .tsv, "
            ".parquet or .jsonl file with columns id, annotator, label"
        )
    return path


def _voted_held_out(
    cfg: DataConfig,
    source: _Source,
    input_cols: tuple[str, ...],
    codec: annotators.VoteCodec,
    cache_dir: str | None,
) -> _HeldOut:
    """The held-out split of a run labelled by majority vote: its rows need votes too.

    A --test file (or the source's own test/validation split) needs the same annotator
    columns; the --annotations file's ids name training rows only, so its held-out share is
    carved from them.
    """
    cols = cfg.annotator_cols
    if cfg.test is not None and cols is None:
        raise InputError(
            "--annotations names rows of the training split only, so a --test file's rows "
            "have no votes: drop --test (a held-out share is carved, votes and all) or pass "
            "--label-col with the label column of both files"
        )
    if cfg.test is not None:
        test_source = _open_source(cfg.test, cache_dir, role="--test file")
        table, where = test_source.splits["train"], "the --test file"
        require_columns(column_kinds(table), (*input_cols, *cols), where, same_as_training=True)
        labels = _majority(table, cols, codec, where)
        return _HeldOut(table, labels, "file", where, test_source.digest)
    for name in ("test", "validation"):
        table = source.splits.get(name)
        if cols is None or table is None or not set(cols) <= set(table.column_names):
            continue
        where = f"the source's {name!r} split"
        require_columns(column_kinds(table), input_cols, where, same_as_training=True)
        return _HeldOut(table, _majority(table, cols, codec, where), "source", where)
    return _HeldOut(None, None, "carved", "the training data")


def _majority(
    table: datasets.Dataset, cols: tuple[str, ...], codec: annotators.VoteCodec, where: str
) -> np.ndarray:
    """The majority vote of a held-out table's annotator columns, (n_rows,)."""
    votes = codec.encode(annotators.column_votes(table, cols, where), where)
    annotators.require_votes(votes, cols, where)
    return annotators.majority_vote(votes, len(codec.names))


class TableSource:
    """A kind of source read through Hugging Face `datasets`: one entry of `TABLE_SOURCES`.

    A new kind of source is one subclass: `claims` says whether a spec names it (checked in
    registry order, first match wins), `open` returns its splits as undecoded tables with a
    digest of its content (which enters the dataset fingerprint).
    """

    def claims(self, spec: str, path: Path) -> bool:
        raise NotImplementedError

    def open(self, spec: str, path: Path, cache_dir: str | None) -> _Source:
        raise NotImplementedError

    def columns(self, spec: str, path: Path) -> dict[str, str] | None:
        """Column name -> kind, from a header or listing only (`check_source`), refusing
        what `open` would refuse first; None (the default) when only opening tells."""
        return None


class HubDataset(TableSource):
    """``hf:NAME`` or ``hf:NAME:CONFIG``: a Hub dataset; its content digest is datasets' own."""

    def claims(self, spec: str, path: Path) -> bool:
        return spec.startswith("hf:")

    def open(self, spec: str, path: Path, cache_dir: str | None) -> _Source:
        spec = spec.removeprefix("hf:")
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
        ids = {
            "name": name,
            "config": config,
            "splits": {k: v._fingerprint for k, v in splits.items()},
        }
        digest = hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).digest()
        return _Source(dict(splits), f"hf:{spec}", digest)


class ImageFolder(TableSource):
    """A local folder: one sub-folder of images per class (or train/ and test/ of those)."""

    def claims(self, spec: str, path: Path) -> bool:
        return path.is_dir()

    def open(self, spec: str, path: Path, cache_dir: str | None) -> _Source:
        _require_images(path)
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
        return _Source(dict(splits), f"{path.name}/", _folder_digest(path, cache_dir))

    def columns(self, spec: str, path: Path) -> dict[str, str] | None:
        _require_images(path)
        return None  # the reader names them (image, label) by the folder's layout


def _require_images(folder: Path) -> None:
    """Refuse a folder without a single image file, before the reader's cryptic error."""
    from PIL import Image

    Image.init()  # registers every format PIL knows, so the extension list is complete
    suffixes = {s.lower() for s in Image.registered_extensions()}
    every = [p for p in folder.rglob("*") if not p.name.startswith(".")]
    broken = [p for p in every if p.is_symlink() and not p.exists()]
    if broken:  # the reader would skip them without a word: the user's data, missing
        raise InputError(
            f"image folder {folder} holds {len(broken)} broken symbolic link(s) (first: "
            f"{broken[0]} -> {os.readlink(broken[0])}); fix or remove them"
        )
    files = [p for p in every if p.is_file()]
    images = [p for p in files if p.suffix.lower() in suffixes]
    if not images:
        found = f"it holds {len(files)} other file(s)" if files else "it holds no files"
        raise InputError(
            f"image folder {folder} holds no images ({found}); expected one sub-folder of "
            f"images per class, e.g. {folder / 'cat' / '1.png'}"
        )
    depths = {len(p.relative_to(folder).parts) for p in images}
    if len(depths) > 1:  # class folders beside deeper ones: no single level holds the classes
        deep = next(p for p in images if len(p.relative_to(folder).parts) == max(depths))
        raise InputError(
            f"image folder {folder} holds images at different depths (e.g. {deep}, "
            f"{max(depths) - 1} folders down, while others are {min(depths) - 1}); expected "
            f"one sub-folder of images per class, e.g. {folder / 'cat' / '1.png'}: move "
            "nested images up into their class folder"
        )


class LocalFile(TableSource):
    """One local parquet / CSV / TSV / JSONL / JSON file (HF names its one split 'train')."""

    def claims(self, spec: str, path: Path) -> bool:
        return path.is_file()

    def open(self, spec: str, path: Path, cache_dir: str | None) -> _Source:
        name = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
        return _Source({"train": _open_file(path, cache_dir)}, name, _file_digest(path, cache_dir))

    def columns(self, spec: str, path: Path) -> dict[str, str] | None:
        return _file_columns(path)


# Checked in order; the first that claims a spec opens it.
TABLE_SOURCES: tuple[TableSource, ...] = (HubDataset(), ImageFolder(), LocalFile())


def _open_source(spec: str, cache_dir: str | None, role: str) -> _Source:
    """Open the source a spec names: the first of `TABLE_SOURCES` that claims it."""
    source, path = _claimant(spec, role)
    return source.open(spec, path, cache_dir)


def _claimant(spec: str, role: str) -> tuple[TableSource, Path]:
    """The first of `TABLE_SOURCES` that claims a spec, and its path; else InputError."""
    path = Path(spec).expanduser()
    for source in TABLE_SOURCES:
        if source.claims(spec, path):
            return source, path
    raise InputError(f"{role} {spec!r} does not exist; {_SOURCE_HELP}")


def _open_file(path: Path, cache_dir: str | None) -> datasets.Dataset:
    """One local data file as a table (HF names a single-file load's split 'train')."""
    builder, options = _file_reader(path)
    table = _hf_load(str(path), cache_dir, builder, data_files=str(path), **options)["train"]
    if table.num_rows == 0:
        raise InputError(f"{path} has no rows; expected one example per row")
    return table


def _file_reader(path: Path) -> tuple[str, dict[str, Any]]:
    """The `datasets` builder and reader options for a data file; refuses an unknown type,
    an empty file and (CSV/TSV) a header that does not fit the rows."""
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
    return builder, options


# A header check reads this much of a CSV/TSV/JSONL file for its columns' types.
_HEAD_BYTES = 1 << 16


def _file_columns(path: Path) -> dict[str, str] | None:
    """Column name -> kind of a data file, from its parquet schema or its first rows.

    None when the first rows do not parse on their own (a JSON document rather than JSON
    lines, a row longer than the sample): the full reader decides then.
    """
    builder, options = _file_reader(path)
    if builder == "parquet":
        return _parquet_columns(path)
    try:
        if builder == "csv":
            schema = _csv_schema(path, options)
        else:
            import pyarrow.json as pj

            with pj.open_json(path, read_options=pj.ReadOptions(block_size=_HEAD_BYTES)) as r:
                schema = r.schema
    except Exception:  # the sample alone does not parse: the full reader decides
        return None
    return {field.name: _arrow_kind(field.type) for field in schema}


def _parquet_columns(path: Path) -> dict[str, str]:
    """A parquet file's columns and kinds from its footer (Hugging Face's features when it
    carries them: ClassLabel and Image columns); no row is read."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except Exception as error:  # not a parquet file: the full reader would fail the same way
        raise InputError(f"could not read {path}: {_root_cause(error)}") from error
    if meta.num_rows == 0:
        raise InputError(f"{path} has no rows; expected one example per row")
    kinds = {field.name: _arrow_kind(field.type) for field in schema}
    try:  # datasets' own feature types, as `datasets` writes them beside the schema
        info = json.loads((schema.metadata or {}).get(b"huggingface", b"{}"))
        features = info.get("info", {}).get("features", {})
    except ValueError:
        features = {}
    for name, feature in features.items() if isinstance(features, dict) else ():
        kind = {"ClassLabel": "classlabel", "Image": "image"}.get(
            feature.get("_type") if isinstance(feature, dict) else None
        )
        if kind and name in kinds:
            kinds[name] = kind
    return kinds


def _csv_schema(path: Path, options: dict[str, Any]) -> Any:
    """The arrow schema of a CSV/TSV file's first rows, read with the file's options."""
    import pyarrow.csv as pc

    quoting = options.get("quoting", csv.QUOTE_MINIMAL) != csv.QUOTE_NONE
    read = pc.ReadOptions(block_size=_HEAD_BYTES, column_names=options.get("column_names"))
    parse = pc.ParseOptions(
        delimiter=options.get("delimiter", ","), quote_char='"' if quoting else False
    )
    with pc.open_csv(path, read_options=read, parse_options=parse) as reader:
        return reader.schema


def _arrow_kind(arrow_type: Any) -> str:
    """`columns.column_kind`'s name for an arrow type (as `datasets` would map it)."""
    import pyarrow as pa

    t = pa.types
    if t.is_struct(arrow_type) and arrow_type.get_field_index("bytes") >= 0:
        return "image"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "str"
    if t.is_boolean(arrow_type):
        return "bool"
    if t.is_integer(arrow_type):
        return "int"
    if t.is_floating(arrow_type):
        return "float"
    return "other"


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
            lines = (row for row in rows if row)  # the reader skips blank lines too
            first, second = next(lines, None), next(lines, None)
            second_line = rows.line_num
    except csv.Error:  # e.g. a huge first field: let the real reader decide
        return {}
    if not first:
        raise InputError(f"{path} has no rows; expected one example per row")
    headless = any(_looks_like_data(cell) for cell in first)
    if second is not None and len(second) > len(first):
        # The reader would take the extra leading field for an index and shift every column
        # by one (and then blame the labels). Later long rows are its own error; short rows
        # are filled with blanks, as everywhere in the file.
        first_is = "the first row" if headless else "the header"
        tsv = options.get("delimiter") == "\t"
        raise InputError(
            f"{path}: line {second_line} has {len(second)} fields where {first_is} has "
            f"{len(first)}; every row needs one value per column "
            f"({'a TSV value cannot hold a tab' if tsv else 'quote values that hold a comma'})"
        )
    if headless:
        return {"column_names": [f"column_{i}" for i in range(len(first))]}
    if second is None:
        raise InputError(f"{path} has a header row but no examples; expected one example per row")
    return {}


def _looks_like_data(cell: str) -> bool:
    """A number or a sentence is a value, not a column name."""
    cell = cell.strip()
    return bool(_NUMBER.fullmatch(cell)) or len(cell.split()) > 6


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
    text = _OBJECT_REPR.sub("", str(error).strip().split("\n")[0]).strip()
    return f"{type(error).__name__}: {text}"


def _held_out(
    cfg: DataConfig,
    source: _Source,
    columns: tuple[str, ...],
    codec: LabelCodec,
    cache_dir: str | None,
) -> _HeldOut:
    """The --test file, else the source's labeled test or validation split, else carving."""
    label_col = columns[-1]
    if cfg.test is not None:
        if cfg.test.startswith("hf:"):
            raise InputError("--test takes a local file or image folder, not a Hub dataset")
        test_source = _open_source(cfg.test, cache_dir, role="--test file")
        table = test_source.splits["train"]
        require_columns(column_kinds(table), columns, "the --test file", same_as_training=True)
        labels = codec.encode(table, label_col, "the --test file")
        return _HeldOut(table, labels, "file", "the --test file", test_source.digest)
    for name in ("test", "validation"):
        table = source.splits.get(name)
        if table is None or label_col not in table.column_names:
            continue
        # Hub test splits often hide their labels as -1: such a split cannot score a model.
        if all(v is None or v == -1 for v in column_values(table, label_col)):
            continue
        where = f"the source's {name!r} split"
        require_columns(column_kinds(table), columns, where, same_as_training=True)
        return _HeldOut(table, codec.encode(table, label_col, where), "source", where)
    return _HeldOut(None, None, "carved", "the training data")


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
    # Several annotators pick the labels (the --annotations file's content is a digest);
    # absent otherwise, so fingerprints from before them stay.
    if cfg.annotator_cols is not None:
        settings["annotator_cols"] = list(cfg.annotator_cols)
    if cfg.annotations is not None:
        settings["annotations"] = True
    digest = hashlib.sha256()
    for part in content_digests:
        digest.update(part)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _file_digest(path: Path, cache_dir: str | None = None) -> bytes:
    """sha256 of a file's bytes, read in chunks (sources can be gigabytes); cached by
    (path, size, mtime) under `cache_dir` when given."""
    st = path.stat()
    return _cached(path, [st.st_size, st.st_mtime_ns], cache_dir, _sha256_file)


def _sha256_file(path: Path) -> bytes:
    digest = hashlib.sha256()
    _hash_bytes(digest, path)
    return digest.digest()


def _folder_digest(root: Path, cache_dir: str | None = None) -> bytes:
    """sha256 of every file's relative path and bytes, in sorted order; cached by every
    file's (relative path, size, mtime) under `cache_dir` when given."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    stats = [(f.relative_to(root).as_posix(), f.stat()) for f in files]
    listing = json.dumps([[rel, st.st_size, st.st_mtime_ns] for rel, st in stats])
    stamp = hashlib.sha256(listing.encode()).hexdigest()
    return _cached(root, stamp, cache_dir, lambda _: _sha256_folder(root, files))


def _sha256_folder(root: Path, files: list[Path]) -> bytes:
    digest = hashlib.sha256()
    for path in files:
        # The size keeps file boundaries unambiguous in the concatenated stream.
        header = f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0"
        digest.update(header.encode())
        _hash_bytes(digest, path)
    return digest.digest()


def _cached(path: Path, stamp: Any, cache_dir: str | None, compute: Any) -> bytes:
    """`compute(path)`, or the digest stored for this path when its stamp is unchanged.

    The stamp is (size, mtime in ns) of the file or of every file in a folder, as make and
    git judge "unchanged"; a rewrite keeping both is not detected. A missing, unreadable
    or concurrently rewritten cache only costs a re-hash.
    """
    if cache_dir is None:
        return compute(path)
    from scoring import store  # here: store is not needed by a digits-only load

    cache_file = store.digest_cache_file(cache_dir)
    key = str(path.resolve())
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    hit = cache.get(key) if isinstance(cache, dict) else None
    if isinstance(hit, dict) and hit.get("stamp") == stamp:
        return bytes.fromhex(hit["sha256"])
    digest = compute(path)
    cache = cache if isinstance(cache, dict) else {}
    cache[key] = {"stamp": stamp, "sha256": digest.hex()}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        # Written whole then renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f)
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only cache: the digest is still right, only not remembered
    return digest


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
        _check_same_source(cfg, source, hf_cache_dir, fingerprint)
    check_row_ids(rows, train.num_rows, source.description)
    return take(train, rows)


def _check_same_source(
    cfg: DataConfig, source: _Source, hf_cache_dir: str | None, fingerprint: str
) -> None:
    """The source still holds what the run was scored on (content, columns, split settings,
    the --test file and the --annotations file), else InputError."""
    train = source.splits["train"]
    input_cols, label_col = resolve_columns(
        train,
        cfg.input_cols,
        cfg.label_col,
        annotator_cols=cfg.annotator_cols or (),
        voted=cfg.annotator_cols is not None or cfg.annotations is not None,
    )
    test_digest = votes_digest = b""
    if cfg.annotations is not None:
        votes_digest = _annotations_file(cfg, train.num_rows, hf_cache_dir)[1]
    if cfg.test is not None:
        test = Path(cfg.test).expanduser()
        if not test.exists():
            raise InputError(f"--test file {cfg.test!r} of this run no longer exists")
        digest = _folder_digest if test.is_dir() else _file_digest
        test_digest = digest(test, hf_cache_dir)
    found = _fingerprint([source.digest, test_digest, votes_digest], input_cols, label_col, cfg)
    _check_fingerprint(found, fingerprint, source.description)


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
    check_row_ids(rows, len(bunch.target), "digits")
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
