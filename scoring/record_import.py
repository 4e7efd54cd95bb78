"""`winnow import`: a run from files the user already has, read without torch.

The files, each keyed by an id column (the user's example ids, as `Recorder` takes them):

- training logits, one file per run (`--logits`, repeated for several runs), in one of
  - ``.npz``: ``id`` (N,), ``logits`` (T, N, K) in epoch order, optional ``label`` (N,);
  - ``.parquet`` (long): ``id``, ``epoch`` (1..T, or 0..T-1), the logits as one list column
    ``logits`` or as columns ``logit_0`` … ``logit_{K-1}``, optional ``label``, optional
    ``run`` (then one file may hold every run);
- eval-pass logits (`--eval-logits`, optional; EL2N at fixed weights, final predictions):
  the same layouts, each epoch's rows taken with the weights after that epoch;
- held-out logits (`--test-logits`): ``id``, ``label`` and ``logits`` of the final model,
  (M, K) (``.npz``: or (R, M, K), one per run; ``.parquet``: optional ``run``);
- penultimate features (`--features`): ``id`` and ``features`` (N, D), or columns
  ``feature_0`` …; optional ``run`` (default: run 0);
- out-of-fold probabilities (`--oof`): ``id`` and ``probs`` (N, K), or columns ``prob_0`` ….

`load_files` reads and checks them into `Imported`; `Imported.feed` plays them into a
`Recorder` (epoch by epoch, as a training loop would), which writes the run folder.
Labels come from the files' ``label`` or, with `--dataset`, from the source.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import InputError

SUFFIXES = (".npz", ".parquet")


@dataclass
class Block:
    """Rows of one file for one run (and epoch): ids (n,), values (n, width), labels (n,)."""

    run: int
    epoch: int | None
    ids: np.ndarray
    values: np.ndarray
    labels: np.ndarray | None = None


@dataclass
class Imported:
    """Everything read from the files, checked against each other.

    Attributes
    ----------
    ids : ndarray of shape (n_examples,), int64
    labels : ndarray of shape (n_examples,) or None
        From the files' `label`; None when they have none (a dataset gives them).
    n_classes : int
    train : dict (run, epoch) -> Block
    evals : dict (run, epoch) -> Block
    tests : dict run -> Block (values = logits, labels = held-out labels)
    features : dict run -> Block
    oof : Block or None
    features_label_free : bool
        The user stated that the features never saw a label.
    """

    ids: np.ndarray
    labels: np.ndarray | None
    n_classes: int
    n_runs: int
    n_epochs: int
    train: dict[tuple[int, int], Block] = field(default_factory=dict)
    evals: dict[tuple[int, int], Block] = field(default_factory=dict)
    tests: dict[int, Block] = field(default_factory=dict)
    features: dict[int, Block] = field(default_factory=dict)
    oof: Block | None = None
    features_label_free: bool = False  # the user says: from a model that never saw labels

    def feed(self, recorder: Any) -> Path:
        """Play the files into `recorder` (a `scoring.record.Recorder`) and finish.

        Returns the run folder.
        """
        for r in range(self.n_runs):
            for t in range(1, self.n_epochs + 1):
                block = self.train[(r, t)]
                recorder.log(block.ids, block.values)
                recorder.end_epoch()
                if (r, t) in self.evals:
                    recorder.log_eval(self.evals[(r, t)].ids, self.evals[(r, t)].values)
            test, feats = self.tests.get(r), self.features.get(r)
            recorder.end_run(
                test_logits=None if test is None else test.values,
                test_labels=None if test is None else test.labels,
                test_ids=None if test is None else test.ids,
                features=None if feats is None else feats.values,
                feature_ids=None if feats is None else feats.ids,
                features_label_free=self.features_label_free and feats is not None,
            )
        if self.oof is not None:
            recorder.log_oof(self.oof.ids, self.oof.values)
        return recorder.finish()


def load_files(
    logits: list[str],
    *,
    eval_logits: str | None = None,
    test_logits: str | None = None,
    features: str | None = None,
    oof: str | None = None,
    features_label_free: bool = False,
) -> Imported:
    """Read and check the files of `winnow import` (see the module docstring).

    Parameters
    ----------
    logits : list of str
        Training-logit files, one per run (or one with a `run` column).
    eval_logits, test_logits, features, oof : str, optional
        The other files, each optional.
    features_label_free : bool
        The features come from a model that never saw the labels (`Recorder.end_run`).

    Returns
    -------
    Imported

    Raises
    ------
    InputError
        A missing or unreadable file, a missing column, shapes that disagree, an id set
        that differs between files, or no training logits and no out-of-fold probabilities.
    """
    if not logits and oof is None:
        raise InputError(
            "give the training logits (--logits FILE, one per run) and/or out-of-fold "
            "probabilities (--oof FILE)"
        )
    train, shift = _read_train(logits)
    oof_block = None
    if oof is not None:
        (oof_block,) = _single(_read(oof, "prob", per_epoch=False), oof)
    ids, labels, k = _ids_labels_classes(train, oof_block)
    runs, n_epochs = _runs_and_epochs(train)
    imported = Imported(ids, labels, k, len(runs), n_epochs, train=train, oof=oof_block)
    imported.features_label_free = features_label_free
    if eval_logits is not None:
        imported.evals.update(_read_evals(eval_logits, shift, train, ids))
    if test_logits is not None:
        imported.tests.update(_read_per_run(test_logits, "logit", runs, labelled=True))
    if features is not None:
        imported.features.update(_read_per_run(features, "feature", runs))
    return imported


def _ids_labels_classes(
    train: dict[tuple[int, int], Block], oof: Block | None
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """The ids every file shares (sorted), the labels they give, the number of classes."""
    ref = next(iter(train.values()), oof)
    assert ref is not None  # `load_files` refused a call with neither
    ids = np.sort(ref.ids)
    if ids.shape[0] < 2:  # every score ranks examples against each other
        raise InputError(
            f"the files hold {ids.shape[0]} example; an import needs at least 2 (every score "
            "ranks examples against each other)"
        )
    k = ref.values.shape[1]
    shared = [(f"--logits run {r} epoch {t}", b) for (r, t), b in train.items()]
    shared += [("--oof", oof)] if oof else []
    for where, block in shared:  # the ids first: labels are compared id by id
        _same_ids(block, ids, where)
        if block.values.shape[1] != k:
            raise InputError(f"{where}: {block.values.shape[1]} classes, expected {k}")
    return ids, _labels([b for _, b in shared], ids), k


def _read_train(logits: list[str]) -> tuple[dict[tuple[int, int], Block], int]:
    """The training blocks by (run, epoch from 1), and 1 if any file counted epochs from 0."""
    train: dict[tuple[int, int], Block] = {}
    shift = 0  # 1 when a parquet file numbers its epochs from 0, as a Python loop counts
    for i, path in enumerate(logits):
        blocks = _read(path, "logit", per_epoch=True)
        runs = {b.run for b in blocks}
        if len(logits) > 1 and runs != {0}:
            raise InputError(f"{path}: a `run` column goes with a single --logits file")
        from_zero = int(min(b.epoch for b in blocks) == 0) if blocks else 0
        shift = max(shift, from_zero)
        for b in blocks:
            run, epoch = (b.run if len(logits) == 1 else i), b.epoch + from_zero
            if (run, epoch) in train:
                raise InputError(f"{path}: run {run} epoch {b.epoch} appears twice")
            train[(run, epoch)] = Block(run, epoch, b.ids, b.values, b.labels)
    return train, shift


def _runs_and_epochs(train: dict[tuple[int, int], Block]) -> tuple[list[int], int]:
    """The runs 0..R-1 and their common epoch count T; refuses gaps and uneven runs."""
    runs = sorted({r for r, _ in train})
    if runs and runs != list(range(len(runs))):
        raise InputError(f"--logits: runs must be numbered 0..R-1, got {runs}")
    n_epochs = 0
    for r in runs:
        epochs = sorted(t for rr, t in train if rr == r)
        if epochs != list(range(1, len(epochs) + 1)):
            raise InputError(
                f"--logits: run {r}'s epochs must be 1..T (or 0..T-1), with none missing; "
                f"got {epochs[:10]} (counted from 1)"
            )
        if n_epochs and len(epochs) != n_epochs:
            raise InputError(f"--logits: every run needs the same epochs ({n_epochs}), run {r}")
        n_epochs = len(epochs)
    return runs, n_epochs


def _read_evals(
    path: str, shift: int, train: dict[tuple[int, int], Block], ids: np.ndarray
) -> dict[tuple[int, int], Block]:
    """The eval-pass blocks by (run, epoch), each matching a training epoch and its ids."""
    evals = {}
    for b in _read(path, "logit", per_epoch=True):
        # Numbered as the training files are (from 0 if any of them was).
        b = Block(b.run, b.epoch + shift, b.ids, b.values, b.labels)
        if (b.run, b.epoch) not in train:
            raise InputError(f"{path}: run {b.run} epoch {b.epoch} has no training logits")
        _same_ids(b, ids, f"--eval-logits run {b.run} epoch {b.epoch}")
        evals[(b.run, b.epoch)] = b
    return evals


def _read_per_run(
    path: str, value: str, runs: list[int], *, labelled: bool = False
) -> dict[int, Block]:
    """A once-per-run file's blocks (held-out logits, features) by run; `labelled`: need labels."""
    found = {}
    for b in _read(path, value, per_epoch=False):
        if labelled and b.labels is None:
            raise InputError(f"{path}: expected a `label` column for the held-out rows")
        _per_run(b, runs, path)
        found[b.run] = b
    return found


def _per_run(block: Block, runs: list[int], path: str) -> None:
    if block.run not in runs:
        raise InputError(f"{path}: run {block.run} has no training logits (runs {runs})")


def _single(blocks: list[Block], path: str) -> list[Block]:
    if len(blocks) != 1:
        raise InputError(f"{path}: expected one set of rows, got {len(blocks)} runs")
    return blocks


def _same_ids(block: Block, ids: np.ndarray, where: str) -> None:
    if block.ids.shape != ids.shape or not np.array_equal(np.sort(block.ids), ids):
        missing, extra = np.setdiff1d(ids, block.ids), np.setdiff1d(block.ids, ids)
        which = (
            f"id {missing[0]} is missing ({missing.size:,} missing)"
            if missing.size
            else f"id {extra[0]} is not among them ({extra.size:,} such)"
        )
        raise InputError(
            f"{where}: its ids differ from the training logits' ({block.ids.shape[0]:,} rows, "
            f"expected the same {ids.shape[0]:,} ids): {which}"
        )


def _labels(blocks: list[Block], ids: np.ndarray) -> np.ndarray | None:
    """The labels the files give, in `ids` order; None when none does."""
    found = None
    for b in blocks:
        if b.labels is None:
            continue
        at = np.argsort(b.ids)
        labels = b.labels[at]
        if found is not None and not np.array_equal(found, labels):
            raise InputError("the files give different labels for the same ids")
        found = labels
    return found


# -- readers ----------------------------------------------------------------------------------


def _read(path: str, value: str, *, per_epoch: bool) -> list[Block]:
    """Blocks of one file: (run[, epoch]) -> ids, values, labels."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"{path} does not exist; expected a {' or '.join(SUFFIXES)} file")
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unknown file type {suffix!r}; expected .npz or .parquet")
    try:
        blocks = (
            _read_npz(file, value, per_epoch)
            if suffix == ".npz"
            else _read_parquet(file, value, per_epoch)
        )
    except InputError:
        raise
    except (zipfile.BadZipFile, EOFError) as err:  # an .npz is a zip archive
        raise InputError(
            f"{path} is not a whole .npz archive ({type(err).__name__}: {err}): cut short, or "
            "not written by numpy.savez; write it again"
        ) from None
    except ValueError as err:
        if suffix == ".npz" and "pickled" in str(err):  # numpy's guess for any non-zip bytes
            raise InputError(
                f"{path} is not an .npz archive (neither a zip nor a .npy file); write it with "
                "numpy.savez(file, id=..., logits=..., label=...)"
            ) from None
        raise InputError(f"{path} cannot be read ({type(err).__name__}: {err})") from None
    except (OSError, KeyError) as err:
        raise InputError(f"{path} cannot be read ({type(err).__name__}: {err})") from None
    if not blocks or not any(len(b.ids) for b in blocks):
        what = "epochs" if per_epoch else "rows"
        raise InputError(f"{path} holds no {what}: nothing to import")
    for b in blocks:
        _check_block(b, path)
    return blocks


_NPZ_KEYS = {"logit": "logits", "prob": "probs", "feature": "features"}


def _read_npz(file: Path, value: str, per_epoch: bool) -> list[Block]:
    with np.load(file, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = _NPZ_KEYS[value]
    for need in ("id", key):
        if need not in arrays:
            raise InputError(f"{file}: expected an array {need!r} (found {sorted(arrays)})")
    ids, values = arrays["id"], arrays[key]
    labels = arrays.get("label", arrays.get("labels"))
    if per_epoch:
        if values.ndim != 3:
            raise InputError(
                f"{file}: expected {key} of shape (n_epochs, n_examples, n_classes), "
                f"got {values.shape}"
            )
        return [Block(0, t + 1, ids, values[t], labels) for t in range(values.shape[0])]
    if values.ndim == 3:  # one per run
        return [Block(r, None, ids, values[r], labels) for r in range(values.shape[0])]
    return [Block(0, None, ids, values, labels)]


def _read_parquet(file: Path, value: str, per_epoch: bool) -> list[Block]:
    import pandas as pd

    frame = pd.read_parquet(file)
    if "id" not in frame.columns:
        raise InputError(f"{file}: expected an `id` column (found {list(frame.columns)[:12]})")
    if per_epoch and "epoch" not in frame.columns:
        raise InputError(f"{file}: expected an `epoch` column (1..T or 0..T-1) beside `id`")
    values = _value_columns(frame, value, file)
    runs = _whole(frame, "run", file) if "run" in frame.columns else np.zeros(len(frame), int)
    epochs = _whole(frame, "epoch", file) if per_epoch else np.zeros(len(frame), int)
    labels = frame["label"].to_numpy() if "label" in frame.columns else None
    ids = frame["id"].to_numpy()
    blocks = []
    for r in np.unique(runs):
        for t in np.unique(epochs[runs == r]):
            rows = np.flatnonzero((runs == r) & (epochs == t))
            blocks.append(
                Block(
                    int(r),
                    int(t) if per_epoch else None,
                    ids[rows],
                    values[rows],
                    None if labels is None else labels[rows],
                )
            )
    return blocks


def _whole(frame: Any, column: str, file: Path) -> np.ndarray:
    """A run or epoch column as integers; a fraction (1.5) or a missing value is refused,
    never truncated."""
    values = frame[column].to_numpy()
    if values.dtype.kind in "iu":
        return values
    numbers = np.asarray(frame[column], dtype=np.float64) if values.dtype.kind in "fb" else None
    if numbers is None or not np.isfinite(numbers).all() or (numbers % 1 != 0).any():
        odd = next(
            (v for v in values if numbers is None or not np.isfinite(v) or float(v) % 1), None
        )
        raise InputError(f"{file}: `{column}` must hold whole numbers (0, 1, 2, ...), got {odd!r}")
    return numbers.astype(np.int64)


def _value_columns(frame: Any, value: str, file: Path) -> np.ndarray:
    """(rows, width) float values: a list column `logits` or columns `logit_0`, `logit_1`…"""
    key = _NPZ_KEYS[value]
    if key in frame.columns:
        empty = [i for i, v in enumerate(frame[key]) if v is None or np.size(v) == 0]
        if empty:
            raise InputError(
                f"{file}: row {empty[0]} (id {frame['id'].iloc[empty[0]]}) has no `{key}` "
                f"(null or empty; {len(empty)} such row(s)); every row needs its values"
            )
        try:
            return np.stack([np.asarray(v, dtype=np.float64) for v in frame[key]])
        except (ValueError, TypeError):
            sizes = sorted({int(np.size(v)) for v in frame[key]})
            raise InputError(
                f"{file}: the `{key}` lists must all have the same length (one per class); "
                f"found lengths {sizes[:6]}"
            ) from None
    pattern = re.compile(rf"^{value}_(\d+)$")
    cols = sorted((int(m.group(1)), c) for c in frame.columns if (m := pattern.match(str(c))))
    if not cols:
        raise InputError(
            f"{file}: expected a list column `{key}` or columns `{value}_0`, `{value}_1`, ... "
            f"(found {list(frame.columns)[:12]})"
        )
    if [i for i, _ in cols] != list(range(len(cols))):
        raise InputError(f"{file}: columns {value}_0 .. {value}_{len(cols) - 1} must all exist")
    return frame[[c for _, c in cols]].to_numpy(np.float64)


def _check_block(b: Block, path: str) -> None:
    ids = np.asarray(b.ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise InputError(f"{path}: `id` must hold integers, got dtype {ids.dtype}")
    if np.unique(ids).shape[0] != ids.shape[0]:
        raise InputError(f"{path}: an id repeats within one run and epoch")
    values = np.asarray(b.values)
    if values.ndim != 2 or values.shape[0] != ids.shape[0]:
        raise InputError(f"{path}: expected one row of values per id, got {values.shape}")
    if values.dtype.kind not in "iuf" or not np.isfinite(values).all():
        raise InputError(f"{path}: the values must be finite numbers")
    b.ids = ids.astype(np.int64)
    b.values = values.astype(np.float32)
    if b.labels is not None:
        labels = np.asarray(b.labels)
        if labels.dtype.kind not in "iu":
            raise InputError(
                f"{path}: `label` must hold class indices (integers), got dtype {labels.dtype}"
            )
        b.labels = labels.astype(np.int64)
