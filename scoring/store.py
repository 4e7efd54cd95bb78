"""Content-addressed store of scoring runs.

Layout: `<cache-dir>/<dataset-fingerprint>/<run-key>/`, one folder per run; `RunDir` below is
the one owner of a run folder's file names and readers (its docstring lists every file).
Beside the runs, `<dataset-fingerprint>/embeddings/` caches text embeddings shared by the
runs of one dataset, `_hf/` holds Hugging Face's own cache and `_jobs/` the background jobs'
records and logs (`scoring.jobs`). Every write goes to a temp file in the same folder and is
moved into place with `os.replace`, so a reader never sees half a file; `status.json` says
`done` only after everything else is written. Arrays are `.npz` read with
`allow_pickle=False`: no pickled objects ever enter the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.config import SCORING_VERSION
from scoring.errors import InputError

STATES = ("running", "done", "failed", "cancelled")
# The two files every computed folder (a run, a sweep) holds; the rest are RunDir's.
_STATUS, _LOCK = "status.json", "lock"


def default_cache_dir() -> Path:
    """`$WINNOW_CACHE_DIR`, else `cache/` in the working directory."""
    return Path(os.environ.get("WINNOW_CACHE_DIR", "cache"))


def run_dir(cache_dir: Path | str, fingerprint: str, key: str) -> Path:
    return Path(cache_dir) / fingerprint / key


def hf_cache_dir(cache_dir: Path | str) -> Path:
    """Where Hugging Face `datasets` keeps its own cache of the sources it reads."""
    return Path(cache_dir) / "_hf"


def embeddings_file(cache_dir: Path | str, fingerprint: str, key: str) -> Path:
    """A dataset's cached text embeddings (`embed.embedding_key` names the encoder setting).

    They sit beside the dataset's runs, not in one, so every run of the same texts and
    encoder (another recipe, seed or score set) reuses them.
    """
    return Path(cache_dir) / fingerprint / "embeddings" / f"{key}.npz"


# -- atomic writes ------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Save named arrays as one uncompressed `.npz`, atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


# -- status ----------------------------------------------------------------------------


def write_status(
    path: Path, state: str, *, progress: float = 0.0, message: str = "", **extra: Any
) -> None:
    """Write `status.json` in run folder `path` (state, progress in [0, 1], message, pid)."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    status = {
        "state": state,
        "progress": round(float(progress), 4),
        "message": message,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "updated": time.time(),
        **extra,
    }
    write_json(Path(path) / _STATUS, status)


def read_status(path: Path) -> dict[str, Any] | None:
    """The run's status, or None when it has none yet."""
    try:
        return read_json(Path(path) / _STATUS)
    except FileNotFoundError:
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- one job per key -------------------------------------------------------------------


@dataclass
class RunLock:
    """An exclusive claim on a run folder, so the same key is never computed twice at once.

    The lock file holds the owner's pid and host; a lock whose owner on this host is dead
    (killed job) is stale and taken over, which is how a crashed run resumes.
    """

    path: Path
    held: bool = False

    @property
    def file(self) -> Path:
        return self.path / _LOCK

    def owner(self) -> dict[str, Any] | None:
        try:
            return read_json(self.file)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def acquire(self) -> bool:
        """Take the lock; False when a live process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        for _ in range(3):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except OSError as err:
                if err.errno != errno.EEXIST:
                    raise
                owner = self.owner()
                if owner is None:
                    time.sleep(0.05)  # being written right now
                    owner = self.owner()
                if owner and (owner.get("host") != socket.gethostname() or pid_alive(owner["pid"])):
                    return False
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.file)  # stale: its owner died
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(me)
            self.held = True
            return True
        return False

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file)
            self.held = False


# -- the run folder ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunSplit:
    """A run's examples and labels, as `split.npz` records them.

    Attributes
    ----------
    train_ids : ndarray of shape (n_examples,), int64
        Stable ids of the training examples, in the order of every per-example file.
    test_ids : ndarray of shape (n_test,), int64
    labels : ndarray of shape (n_examples,), int64
        The labels the runs trained on (after injected noise, when some was asked for).
    true_labels : ndarray of shape (n_examples,), int64
        The source's labels.
    test_labels : ndarray of shape (n_test,), int64
    """

    train_ids: np.ndarray
    test_ids: np.ndarray
    labels: np.ndarray
    true_labels: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True)
class ModelInputs:
    """The tensors a run's models consumed, as arrays, exactly (bit for bit).

    Attributes
    ----------
    kind : "images" | "tokens" | "embeddings"
    train : ndarray of shape (n_examples, ...)
        images: (N, C, H, W) float32 in [0, 1]; tokens: (N, 3, L) int64 (ids, attention
        mask, token types); embeddings: (N, D) float32.
    test : ndarray of shape (n_test, ...), like `train`
    """

    kind: str
    train: np.ndarray
    test: np.ndarray


INPUT_KINDS = ("images", "tokens", "embeddings")
# Pixel scales of the sources: 8-bit image files (/255) and scikit-learn's digits (0..16).
_PIXEL_DIVISORS = (255, 16)
_CHUNK = 4096  # rows per block when checking an encoding, so memory stays flat in N


@dataclass(frozen=True)
class SweepDir:
    """One sweep's folder `<run>/sweeps/<sweep-key>/` (see `RunDir`)."""

    path: Path

    @property
    def record_file(self) -> Path:
        """`sweep.json`: the sweep's description (run, rule, fractions, seeds, schedule)."""
        return self.path / "sweep.json"

    @property
    def trials_file(self) -> Path:
        """`trials.parquet`: one row per finished trial, rewritten after each one."""
        return self.path / "trials.parquet"


@dataclass(frozen=True)
class RunDir:
    """A run folder `<cache>/<dataset-fingerprint>/<run-key>/`: its paths and typed readers.

    The one place that names a run's files; the writer (`scoring.training.pipeline`) and
    every reader go through it. N training examples, M held-out (test) examples, K classes,
    R runs, T epochs.

    ============================  ======================================  ==========================
    file                          holds                                   written by, when
    ============================  ======================================  ==========================
    ``config.json``               scoring version, run key, the           pipeline, first
                                  ScoreConfig, the resolved recipe, the
                                  dataset (description, label names,
                                  sizes), device, git revision
    ``status.json``               state (running / done / failed /        pipeline, throughout;
                                  cancelled), progress, message, pid,     `done` last of all
                                  host, time
    ``lock``                      pid and host of the job computing it    `RunLock`, while computing
    ``split.npz``                 train_ids (N,), test_ids (M,), labels   pipeline, first
                                  (N,) trained on, true_labels (N,),
                                  test_labels (M,) (`RunSplit`)
    ``runs/run_NNN.npz``          run NNN's recording: loss, logits,      pipeline, as each run ends
                                  probs, correct (T, N), features,        (its presence = run done)
                                  test_probs, gradient arrays, timings
                                  (some float16: `compact`)
    ``runs/run_NNN.safetensors``  weight snapshots the gradient scores    pipeline, just before the
                                  used                                    run's .npz
    ``cv/fold_N.npz``             index and out-of-fold probs of fold N   pipeline, per fold; only
                                                                          for scores that need
                                                                          oof_probs
    ``inputs.npz``                what the models consumed                pipeline, after scoring
                                  (`ModelInputs`): uint8 pixels +
                                  divisor, int32 tokens, or the key of
                                  the dataset's embeddings file
    ``scores.parquet``            id, label, [true_label, noisy], one     pipeline, after scoring
                                  column per score; N rows
    ``scores_per_run.parquet``    id, ``<score>__run<r>`` per per-run     pipeline, after scoring
                                  score
    ``predictions.parquet``       id, pred, pred_prob, given_prob of the  pipeline, after scoring
                                  final models (mean over runs)
    ``examples/images.npy``       (N, H, W, C) uint8 images to display    pipeline, after scoring
    ``examples/texts.parquet``    id, text[, text_pair] to display        pipeline, after scoring
    ``summary.json``              test accuracy per run, timings, per     pipeline, last before
                                  score: direction, stability, noise      `done`
                                  detection
    ``decisions.jsonl``           keep / relabel / drop lines, append     `read.decisions`, on
                                  only                                    review
    ``map.parquet``               id, x, y: UMAP of run 0's features      `read.maps`, on request
    ``sweeps/trials/<key>.json``  one retraining trial's record           `training.retrain`, per
                                                                          trial
    ``sweeps/<key>/``             ``sweep.json``, ``trials.parquet``,     `training.retrain`, per
                                  ``status.json``, ``lock`` (`SweepDir`)  sweep
    ============================  ======================================  ==========================

    Outside the run folder but read through it: the dataset's cached text embeddings
    (`embeddings_file`, shared by the dataset's runs) and Hugging Face's cache
    (`hf_cache_dir`). Job logs live in `<cache>/_jobs/`, not here.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # -- where the run sits ------------------------------------------------------------

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def fingerprint(self) -> str:
        return self.path.parent.name

    @property
    def cache_dir(self) -> Path:
        return self.path.parent.parent

    @property
    def hf_cache_dir(self) -> Path:
        return hf_cache_dir(self.cache_dir)

    def embeddings_file(self, key: str) -> Path:
        """The dataset's cached embeddings for encoder setting `key` (not in the run)."""
        return embeddings_file(self.cache_dir, self.fingerprint, key)

    # -- paths -------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def status_file(self) -> Path:
        return self.path / _STATUS

    @property
    def lock_file(self) -> Path:
        return self.path / _LOCK

    @property
    def split_file(self) -> Path:
        return self.path / "split.npz"

    @property
    def inputs_file(self) -> Path:
        return self.path / "inputs.npz"

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    def run_file(self, r: int) -> Path:
        return self.runs_dir / f"run_{r:03d}.npz"

    def states_file(self, r: int) -> Path:
        return self.runs_dir / f"run_{r:03d}.safetensors"

    @property
    def cv_dir(self) -> Path:
        return self.path / "cv"

    def fold_file(self, f: int) -> Path:
        return self.cv_dir / f"fold_{f}.npz"

    @property
    def scores_file(self) -> Path:
        return self.path / "scores.parquet"

    @property
    def scores_per_run_file(self) -> Path:
        return self.path / "scores_per_run.parquet"

    @property
    def predictions_file(self) -> Path:
        return self.path / "predictions.parquet"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def examples_dir(self) -> Path:
        return self.path / "examples"

    @property
    def images_file(self) -> Path:
        return self.examples_dir / "images.npy"

    @property
    def texts_file(self) -> Path:
        return self.examples_dir / "texts.parquet"

    @property
    def decisions_file(self) -> Path:
        return self.path / "decisions.jsonl"

    @property
    def map_file(self) -> Path:
        return self.path / "map.parquet"

    @property
    def sweeps_dir(self) -> Path:
        return self.path / "sweeps"

    @property
    def trials_dir(self) -> Path:
        return self.sweeps_dir / "trials"

    def trial_file(self, key: str) -> Path:
        return self.trials_dir / f"{key}.json"

    def trial_files(self) -> list[Path]:
        """Every finished trial's record file, sorted by name."""
        return sorted(self.trials_dir.glob("*.json")) if self.trials_dir.is_dir() else []

    def sweep(self, key: str) -> SweepDir:
        return SweepDir(self.sweeps_dir / key)

    def lock(self) -> RunLock:
        return RunLock(self.path)

    # -- readers -----------------------------------------------------------------------

    def read_config(self) -> dict[str, Any]:
        return read_json(self.config_file)

    def read_status(self) -> dict[str, Any] | None:
        """The run's status, or None when it has none yet."""
        return read_status(self.path)

    def read_summary(self) -> dict[str, Any]:
        return read_json(self.summary_file)

    def read_split(self) -> RunSplit:
        a = load_arrays(self.split_file)
        return RunSplit(
            a["train_ids"], a["test_ids"], a["labels"], a["true_labels"], a["test_labels"]
        )

    def read_run(self, r: int) -> dict[str, np.ndarray]:
        """Run r's recorded arrays by name (as stored: some float16, see `compact`)."""
        return load_arrays(self.run_file(r))

    def read_fold(self, f: int) -> dict[str, np.ndarray]:
        """Cross-fit fold f: `index` (n,) of the rows it held out and their `probs` (n, K)."""
        return load_arrays(self.fold_file(f))

    def read_scores(self, columns: list[str] | None = None) -> pd.DataFrame:
        """`scores.parquet` (only `columns` when given)."""
        return pd.read_parquet(self.scores_file, columns=columns)

    def read_scores_per_run(self) -> pd.DataFrame:
        return pd.read_parquet(self.scores_per_run_file)

    def read_predictions(self) -> pd.DataFrame | None:
        """Final-model predictions; None for runs from before they were written."""
        return pd.read_parquet(self.predictions_file) if self.predictions_file.exists() else None

    def open_images(self) -> np.ndarray | None:
        """The display images, memory-mapped, (N, H, W, C) uint8; None when absent."""
        return np.load(self.images_file, mmap_mode="r") if self.images_file.exists() else None

    def read_texts(self) -> pd.DataFrame | None:
        """The display texts (id, text[, text_pair]); None when absent (image runs)."""
        return pd.read_parquet(self.texts_file) if self.texts_file.exists() else None

    def read_inputs(self) -> ModelInputs | None:
        """What the models consumed, bit for bit; None when the run does not hold it.

        None for a run scored before inputs were kept, and for a text probe whose dataset
        embeddings file has since been removed: the caller then prepares them again.
        """
        if not self.inputs_file.exists():
            return None
        a = load_arrays(self.inputs_file)
        kind = str(a["kind"])
        if kind == "embeddings":
            file = self.embeddings_file(str(a["embedding_key"]))
            if not file.exists():
                return None
            e = load_arrays(file)
            return ModelInputs(kind, e["train"], e["test"])
        if kind == "tokens":  # stored as int32 (ids < 2**31); the models take int64
            return ModelInputs(kind, a["train"].astype(np.int64), a["test"].astype(np.int64))
        if "divisor" in a:
            divisor = int(a["divisor"])
            return ModelInputs(
                kind, _from_pixels(a["train"], divisor), _from_pixels(a["test"], divisor)
            )
        return ModelInputs(kind, a["train"], a["test"])

    # -- writers whose format is this class's business ---------------------------------

    def write_split(self, split: RunSplit) -> None:
        save_arrays(self.split_file, **dataclasses.asdict(split))

    def write_inputs(self, inputs: ModelInputs, *, embedding_key: str | None = None) -> None:
        """Keep what the models consumed, compactly and exactly.

        Images as uint8 pixels plus the divisor that gives back the float32 inputs bit for
        bit (float32 as is when no divisor does); tokens as int32; embeddings by the key of
        the dataset's embeddings file (`embedding_key`), which already holds them.
        """
        if inputs.kind not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {inputs.kind!r}")
        if inputs.kind == "embeddings":
            if embedding_key is None:
                raise ValueError("embedding inputs are kept by their embedding_key")
            save_arrays(
                self.inputs_file, kind=np.str_(inputs.kind), embedding_key=np.str_(embedding_key)
            )
            return
        arrays: dict[str, np.ndarray] = {"train": inputs.train, "test": inputs.test}
        if inputs.kind == "tokens":
            ok = all(a.size == 0 or int(np.abs(a).max()) < 2**31 for a in arrays.values())
            if ok:
                arrays = {k: a.astype(np.int32) for k, a in arrays.items()}
        else:
            divisor = _pixel_divisor(inputs.train, inputs.test)
            if divisor is not None:
                arrays = {k: _to_pixels(a, divisor) for k, a in arrays.items()}
                arrays["divisor"] = np.int64(divisor)
        save_arrays(self.inputs_file, kind=np.str_(inputs.kind), **arrays)

    def write_images(self, pixels: np.ndarray) -> None:
        """Display images, (N, H, W, C) uint8, as a plain `.npy` pages can memory-map."""
        buf = io.BytesIO()
        np.save(buf, pixels)
        atomic_write_bytes(self.images_file, buf.getvalue())


def _to_pixels(inputs: np.ndarray, divisor: int) -> np.ndarray:
    """uint8 pixels of float inputs, block by block (no float copy of the whole array)."""
    pixels = np.empty(inputs.shape, dtype=np.uint8)
    for start in range(0, inputs.shape[0], _CHUNK):
        block = inputs[start : start + _CHUNK]
        pixels[start : start + _CHUNK] = np.rint(block * np.float32(divisor))
    return pixels


def _from_pixels(pixels: np.ndarray, divisor: int) -> np.ndarray:
    """float32 pixels / divisor: the sources' own arithmetic (`data.sources`).

    Image files divide float32 pixels by 255 in float32; digits divides in float64 and casts
    to float32, which rounds to the same value (16 is a power of two).
    """
    out = pixels.astype(np.float32)
    out /= np.float32(divisor)
    return out


def _pixel_divisor(*arrays: np.ndarray) -> int | None:
    """The divisor whose uint8 pixels give back every array bit for bit, or None."""
    for divisor in _PIXEL_DIVISORS:
        if all(_round_trips(a, divisor) for a in arrays):
            return divisor
    return None


def _round_trips(inputs: np.ndarray, divisor: int) -> bool:
    if inputs.dtype != np.float32:
        return False
    for start in range(0, inputs.shape[0], _CHUNK):
        block = inputs[start : start + _CHUNK]
        scaled = np.rint(block * np.float32(divisor))
        if scaled.size and (scaled.min() < 0 or scaled.max() > 255):
            return False
        back = _from_pixels(scaled.astype(np.uint8), divisor)
        if not np.array_equal(back.view(np.uint32), block.view(np.uint32)):
            return False
    return True


# -- reading runs ----------------------------------------------------------------------


@dataclass
class RunInfo:
    """One cached run as listed by `python -m scoring list` (and the app's home page)."""

    path: Path
    dataset: str
    state: str
    updated: float
    n_train: int | None
    recipe: str | None
    test_accuracy: float | None
    version_ok: bool


def check_version(path: Path) -> None:
    """Refuse a run written by another scoring version, with a way forward."""
    config = RunDir(path).read_config()
    found = config.get("scoring_version")
    if found != SCORING_VERSION:
        raise InputError(
            f"{path} was written by scoring version {found}, this is version {SCORING_VERSION}; "
            "run the same `python -m scoring score` command again to recompute it"
        )


def iter_run_dirs(cache_dir: Path | str) -> Iterator[Path]:
    root = Path(cache_dir)
    if not root.is_dir():
        return
    for config in root.glob(f"*/*/{RunDir(root).config_file.name}"):
        if not config.parts[-3].startswith("_"):  # _hf/ holds Hugging Face's own cache
            yield config.parent


def list_runs(cache_dir: Path | str) -> list[RunInfo]:
    """Every run under `cache_dir`, newest first."""
    runs = []
    for path in iter_run_dirs(cache_dir):
        try:
            config = RunDir(path).read_config()
        except (OSError, json.JSONDecodeError):
            continue
        status = read_status(path) or {"state": "running", "updated": 0.0}
        state = status["state"]
        if state == "running" and not pid_alive(status.get("pid", -1)):
            state = "interrupted"  # the job died; running the same command resumes it
        summary = {}
        if state == "done" and RunDir(path).summary_file.exists():
            summary = RunDir(path).read_summary()
        acc = summary.get("test_accuracy_mean")
        runs.append(
            RunInfo(
                path=path,
                dataset=config.get("dataset", {}).get("description", "?"),
                state=state,
                updated=float(status.get("updated", 0.0)),
                n_train=config.get("dataset", {}).get("n_train"),
                recipe=config.get("recipe", {}).get("name"),
                test_accuracy=acc,
                version_ok=config.get("scoring_version") == SCORING_VERSION,
            )
        )
    return sorted(runs, key=lambda r: r.updated, reverse=True)


def read_scores(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """`scores.parquet` of a finished run (only `columns` when given)."""
    return RunDir(path).read_scores(columns)
