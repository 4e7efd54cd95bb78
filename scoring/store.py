"""Content-addressed store of scoring runs.

Layout: `<cache-dir>/<dataset-fingerprint>/<run-key>/`, one folder per run; `RunDir` below is
the one owner of a run folder's file names and readers (its docstring lists every file).
Beside the runs, `<dataset-fingerprint>/embeddings/` caches text embeddings shared by the
runs of one dataset, `_hf/` holds Hugging Face's own cache and `_jobs/` the background jobs'
records and logs (`scoring.jobs`). Every write goes to a temp file in the same folder and is
moved into place with `os.replace`, so a reader never sees half a file; `status.json` says
`done` only after everything else is written, with the size and sha256 of each file it
wrote. Arrays are `.npz` read with `allow_pickle=False`: no pickled objects ever enter the
cache.

Damage (a file missing, empty, cut short, garbled, of the wrong shape) never surfaces as a
parser's exception: `RunDir`'s readers raise `DamagedRun` (an `InputError` naming the file,
the reason and the fix), `RunDir.check` lists it, `list_runs` shows the run as `damaged`,
and `scoring.training.pipeline.score` repairs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import hashlib
import io
import json
import os
import socket
import tempfile
import time
import zipfile
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

# What to do about a damaged run file. The pipeline's own files come back by running the same
# `score` command: it checks every file against the sizes and hashes `status.json` recorded
# and recomputes only what is damaged or missing (`scoring.training.pipeline`).
FIX_RESCORE = (
    "run the same `winnow score` command again to repair it (only the damaged files are "
    "recomputed), or delete the run folder"
)
FIX_CONFIG = (
    "run the `winnow score` command that made it again (it rewrites the config), "
    "or delete the run folder"
)
FIX_MAP = "compute the map again (`winnow map --run RUN`, or the Map page's button)"


class DamagedRun(InputError):
    """A run file that is missing, empty, cut short, garbled or of the wrong shape.

    An `InputError`, so the CLI answers it in one line (exit 2) and pages show it as a
    message; `RunDir.check` returns them as a list instead of raising.

    Attributes
    ----------
    run : Path
        The run folder.
    file : str
        The damaged file, relative to the run (``runs/run_000.npz``).
    reason : str
        One line: what is wrong with it (``is missing``, ``is empty``, ...).
    fix : str
        What to do about it.
    """

    def __init__(self, run: Path | str, file: str, reason: str, fix: str | None = None) -> None:
        self.run, self.file, self.reason = Path(run), file, reason
        self.fix = fix or (
            FIX_CONFIG
            if file == "config.json"
            else FIX_MAP
            if file == "map.parquet"
            else FIX_RESCORE
        )
        super().__init__(f"damaged run {self.run}: {file} {reason}; {self.fix}")

    @property
    def short(self) -> str:
        """`file reason`, without the folder and the fix (tables, page headlines)."""
        return f"{self.file} {self.reason}"


def _damage_reason(file: Path, err: BaseException) -> str:
    """One line saying how `file` failed to read."""
    if isinstance(err, FileNotFoundError) or not file.exists():
        return "is missing"
    if file.is_dir():
        return "is a folder, not a file"
    if file.stat().st_size == 0:
        return "is empty"
    if isinstance(err, json.JSONDecodeError):
        return f"is not valid JSON ({err.msg} at line {err.lineno})"
    if isinstance(err, UnicodeDecodeError):
        return "is not text (binary garbage)"
    text = " ".join(str(err).split())[:160]
    return (
        f"cannot be read ({type(err).__name__}: {text})"
        if text
        else (f"cannot be read ({type(err).__name__})")
    )


# Every way a damaged file surfaces while it is parsed: missing or unreadable (OSError),
# garbage or cut short (ValueError covers JSON, UnicodeDecodeError, pyarrow's ArrowInvalid and
# numpy's header errors; BadZipFile and EOFError an .npz), an array or key it lacks
# (KeyError), a value of the wrong type (TypeError).
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile)


def file_digest(path: Path) -> dict[str, Any]:
    """`{"size", "mtime_ns", "sha256"}` of a file, read in blocks (memory stays flat)."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """`$WINNOW_CACHE_DIR`, else `cache/` in the working directory."""
    return Path(os.environ.get("WINNOW_CACHE_DIR", "cache"))


def run_dir(cache_dir: Path | str, fingerprint: str, key: str) -> Path:
    return Path(cache_dir) / fingerprint / key


def hf_cache_dir(cache_dir: Path | str) -> Path:
    """Where Hugging Face `datasets` keeps its own cache of the sources it reads."""
    return Path(cache_dir) / "_hf"


def digest_cache_file(hf_cache: Path | str) -> Path:
    """Source files' content digests keyed by (path, size, mtime): an unchanged file is not
    re-hashed. Beside `datasets`' own cache of the same sources (`hf_cache_dir`)."""
    return Path(hf_cache) / "source_digests.json"


def embeddings_file(cache_dir: Path | str, fingerprint: str, key: str) -> Path:
    """A dataset's cached text embeddings (`embed.embedding_key` names the encoder setting).

    They sit beside the dataset's runs, not in one, so every run of the same texts and
    encoder (another recipe, seed or score set) reuses them.
    """
    return Path(cache_dir) / fingerprint / "embeddings" / f"{key}.npz"


def recording_dir(cache_dir: Path | str, key: str) -> Path:
    """Where a `Recorder` (`scoring.training.recorder`) flushes a recording in progress.

    `<cache>/_recording/<key>/`, one sub-folder per process (rank): epoch by epoch, the
    statistics of the examples that process logged. Outside any run folder (so never listed
    as a run); removed once `finish` has written the run folder.
    """
    return Path(cache_dir) / "_recording" / key


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


def save_npz_files(path: Path, files: dict[str, Path]) -> None:
    """Pack `.npy` files (name -> file) into one uncompressed `.npz`, atomically.

    The same layout `save_arrays` writes (`np.load` reads it alike), but each member is
    copied from its file in blocks: arrays larger than memory (a recording's (T, N)
    statistics, memory-mapped while they were assembled) never sit in memory whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            for name, file in files.items():
                z.write(file, arcname=f"{name}.npy")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
        "pid_start": process_start(os.getpid()),  # with the pid: this process, not a reuse
        "host": socket.gethostname(),
        "updated": time.time(),
        **extra,
    }
    write_json(Path(path) / _STATUS, status)


def read_status(path: Path) -> dict[str, Any] | None:
    """The folder's status, or None when it has none yet or it cannot be read.

    Lenient on purpose: job panels and sweeps only ask "is it done?", and a damaged status
    file means no. `RunDir.read_status` raises `DamagedRun` instead, and `RunDir.check`
    says why.
    """
    try:
        status = read_json(Path(path) / _STATUS)
    except (OSError, ValueError):  # missing, unreadable, not JSON (UnicodeDecodeError too)
        return None
    return status if isinstance(status, dict) and isinstance(status.get("state"), str) else None


def process_start(pid: int) -> int | float | None:
    """When process `pid` started, as this machine counts it; None if unknown or gone.

    Recorded beside every pid a job writes (status.json, the run lock, the job record), so a
    pid the system has since given to another process is told apart from the job: same pid,
    other start. Linux: field 22 of /proc/<pid>/stat (clock ticks since boot); elsewhere
    psutil's create_time when psutil is installed.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # Linux, and the process is gone
    except OSError:
        return None
    else:
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        try:
            return int(fields[19])  # field 22 of the whole line
        except (IndexError, ValueError):
            return None
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def pid_alive(pid: int, started: int | float | None = None) -> bool:
    """Whether process `pid` exists and, when `started` is given, is the one that started then.

    `started` is what `process_start` recorded with the pid; a process whose start differs
    took over a dead job's pid and counts as dead. Without a recorded start (records from
    before it was kept) only the pid is checked.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False  # os.kill(0 or -1, ...) would address whole process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started is None:
        return True
    now = process_start(pid)
    if now is None:  # on Linux it just exited; elsewhere the start is unknowable: trust the pid
        return not Path("/proc/self/stat").exists()
    return now == started


def is_process(pid: int, started: int | float | None) -> bool:
    """Whether `pid` is provably the process that started at `started` (safe to signal).

    Stricter than `pid_alive`: an unknown start on either side is no proof, so a process
    that cannot be identified is never signalled.
    """
    if started is None or not pid_alive(pid):
        return False
    return process_start(pid) == started


def unfinished_reason(path: Path | str) -> str | None:
    """Why the run at `path` cannot be read yet, with what to do; None once it is done.

    One line for every consumer that needs a finished run (export, the map, the pages):
    running, interrupted (its job died: the status still says running, but the job's
    process is gone or its pid went to another), failed or cancelled, each with the
    progress and message it stopped with.
    """
    status = read_status(Path(path))
    if status is None:
        return "this run is not finished: it has no status yet (just starting); wait for it"
    state = status["state"]
    if state == "done":
        return None
    progress = status.get("progress")
    at = f" at {progress:.0%}" if isinstance(progress, int | float) and progress > 0 else ""
    message = str(status.get("message") or "").strip()
    said = f" ({message})" if message else ""
    rerun = "run the same score command again to resume it (finished runs are kept)"
    if state == "running":
        # Another host's job cannot be checked from here: it counts as running, as its lock.
        live = status.get("host") not in (None, socket.gethostname()) or pid_alive(
            status.get("pid"), status.get("pid_start")
        )
        if live:
            return f"this run is not finished: it is still running{at}{said}; wait for it"
        return f"this run is not finished: it was interrupted{at}{said}, its job stopped; {rerun}"
    if state == "failed":
        return f"this run is not finished: it failed{said}; fix that, then {rerun}"
    return f"this run is not finished: it was {state}{at}; {rerun}"


# -- one job per key -------------------------------------------------------------------


@dataclass
class RunLock:
    """An exclusive claim on a run folder, so the same key is never computed twice at once.

    The lock file holds the owner's pid, its start time and host; a lock whose owner on this
    host is dead (killed job), or whose pid now belongs to a process that started at another
    time, is stale and taken over, which is how a crashed run resumes.
    """

    path: Path
    held: bool = False

    @property
    def file(self) -> Path:
        return self.path / _LOCK

    def owner(self) -> dict[str, Any] | None:
        try:
            owner = read_json(self.file)
        except (OSError, ValueError):  # gone, or being written (or garbage: taken over)
            return None
        return owner if isinstance(owner, dict) else None

    def acquire(self) -> bool:
        """Take the lock; False when a live process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        me = json.dumps(
            {
                "pid": os.getpid(),
                "pid_start": process_start(os.getpid()),
                "host": socket.gethostname(),
            }
        ).encode()
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
                if owner and (
                    owner.get("host") != socket.gethostname()
                    or pid_alive(owner.get("pid"), owner.get("pid_start"))
                ):
                    return False
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.file)  # stale: its owner died (or its pid went to another)
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
        images: (N, C, H, W) float32 in [0, 1], or uint8 with `divisor`; tokens: (N, 3, L)
        int64 (ids, attention mask, token types); embeddings: (N, D) float32.
    test : ndarray of shape (n_test, ...), like `train`
    divisor : int or None
        uint8 images: the models' float32 input is pixels / divisor (as runs hold them).
    """

    kind: str
    train: np.ndarray
    test: np.ndarray
    divisor: int | None = None


INPUT_KINDS = ("images", "tokens", "embeddings")
_CONFIG_SECTIONS = ("config", "dataset", "recipe")  # config.json's objects (`config_record`)
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

    @property
    def summary_file(self) -> Path:
        """`summary.parquet`: per split, rule and fraction, accuracy and the paired difference
        to random with its bootstrap CI (`prune.sweeps.sweep_summary`), written once done."""
        return self.path / "summary.parquet"


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
                                  sizes), device, git revision; a
                                  recorded or imported run adds
                                  ``source`` and ``recording`` (what
                                  was logged, which scores are absent)
    ``status.json``               state (running / done / failed /        pipeline, throughout;
                                  cancelled), progress, message, pid,     `done` last of all
                                  host, time; with `done`, ``files``:
                                  size, mtime and sha256 of every file
                                  above and below it wrote (`digest`)
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
    ``features_free.npz``         label-independent embeddings (N, D)     pipeline, once, when a
                                  of the training set (`features`)        score needs them
                                                                          (`prototype`)
    ``features_free_test.npz``    the same embeddings of the held-out     pipeline, once, when a
                                  (test) rows (M, D)                      score needs them
                                                                          (`leakage`)
    ``inputs.npz``                what the models consumed                pipeline, after scoring
                                  (`ModelInputs`): uint8 pixels +
                                  divisor, int32 tokens, or the key of
                                  the dataset's embeddings file
    ``scores.parquet``            id, label, [true_label, noisy], one     pipeline, after scoring
                                  column per score; N rows
    ``scores_per_run.parquet``    id, ``<score>__run<r>`` per per-run     pipeline, after scoring
                                  score
    ``predictions.parquet``       id, pred, pred_prob, given_prob of the  pipeline, after scoring
                                  final models (mean over runs); with
                                  cross-fitting, oof_given_prob,
                                  oof_suggested, oof_suggested_prob
                                  (out-of-fold: no model saw the row)
    ``heldout.parquet``           id, label, given_prob, suggested,       pipeline, after scoring
                                  suggested_prob, cl_quality, cl_issue
                                  of the M held-out rows (mean test
                                  probs of the runs; `read_heldout`)
    ``meta.json``                 name, preset (labels only, not in the   CLI `score`, every call
                                  key; a rerun with --name renames)
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
                                  ``summary.parquet``, ``status.json``,   sweep
                                  ``lock`` (`SweepDir`)
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
    def features_free_file(self) -> Path:
        """Label-independent embeddings of the training set (`features`: (N, D) float32)."""
        return self.path / "features_free.npz"

    @property
    def features_free_test_file(self) -> Path:
        """The same label-independent embeddings of the held-out rows ((M, D) float32)."""
        return self.path / "features_free_test.npz"

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
    def heldout_images_file(self) -> Path:
        """(M, H, W, C) uint8 display images of the held-out rows (image runs)."""
        return self.examples_dir / "heldout_images.npy"

    @property
    def heldout_texts_file(self) -> Path:
        """id, text[, text_pair] of the held-out rows (text runs)."""
        return self.examples_dir / "heldout_texts.parquet"

    @property
    def decisions_file(self) -> Path:
        return self.path / "decisions.jsonl"

    @property
    def heldout_file(self) -> Path:
        """`heldout.parquet`: out-of-sample label quality of the held-out rows (M rows)."""
        return self.path / "heldout.parquet"

    @property
    def meta_file(self) -> Path:
        """`meta.json`: the run's name and preset, set by each `score` call (not in its key)."""
        return self.path / "meta.json"

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
    # Every reader turns a damaged file into `DamagedRun` (file, one-line reason, fix), so
    # no caller ever sees a JSONDecodeError, a BadZipFile or pyarrow's ArrowInvalid.

    def relative(self, file: Path) -> str:
        """`file`'s name relative to the run folder, as messages and the manifest spell it."""
        try:
            return Path(file).relative_to(self.path).as_posix()
        except ValueError:
            return str(file)

    @contextlib.contextmanager
    def reading(self, file: Path) -> Iterator[None]:
        """Turn any failure to read `file` inside the block into `DamagedRun`."""
        try:
            yield
        except DamagedRun:
            raise
        except _READ_ERRORS as err:
            raise DamagedRun(self.path, self.relative(file), _damage_reason(file, err)) from err

    def _read_object(self, file: Path) -> dict[str, Any]:
        with self.reading(file):
            obj = read_json(file)
        if not isinstance(obj, dict):
            kind = "a list" if isinstance(obj, list) else type(obj).__name__
            raise DamagedRun(self.path, self.relative(file), f"holds {kind}, not a JSON object")
        return obj

    def read_config(self) -> dict[str, Any]:
        """`config.json`; DamagedRun when it is missing, unreadable or of the wrong shape."""
        config = self._read_object(self.config_file)
        for key in _CONFIG_SECTIONS:
            if key in config and not isinstance(config[key], dict):
                raise DamagedRun(self.path, "config.json", f"has a {key!r} that is not an object")
        return config

    def read_status(self) -> dict[str, Any] | None:
        """The run's status, or None when it has none yet; DamagedRun when unreadable."""
        if not self.status_file.exists():
            return None
        status = self._read_object(self.status_file)
        if status.get("state") not in STATES:
            raise DamagedRun(self.path, _STATUS, f"has no valid state ({status.get('state')!r})")
        return status

    def read_summary(self) -> dict[str, Any]:
        summary = self._read_object(self.summary_file)
        if not isinstance(summary.get("scores"), dict):
            raise DamagedRun(self.path, "summary.json", "lacks its 'scores' section")
        return summary

    def read_arrays(self, file: Path, names: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """Every array of an .npz, read in full (so a cut-short entry fails here, not later)."""
        with self.reading(file):
            arrays = load_arrays(file)
        lacking = [n for n in names if n not in arrays]
        if lacking:
            raise DamagedRun(self.path, self.relative(file), f"lacks {', '.join(lacking)}")
        return arrays

    def read_split(self) -> RunSplit:
        names = tuple(f.name for f in dataclasses.fields(RunSplit))
        return RunSplit(
            **{n: a for n, a in self.read_arrays(self.split_file, names).items() if n in names}
        )

    def read_run(self, r: int) -> dict[str, np.ndarray]:
        """Run r's recorded arrays by name (as stored: some float16, see `compact`)."""
        return self.read_arrays(self.run_file(r), ("test_accuracy", "probs_final"))

    def read_fold(self, f: int) -> dict[str, np.ndarray]:
        """Cross-fit fold f: `index` (n,) of the rows it held out and their `probs` (n, K)."""
        return self.read_arrays(self.fold_file(f), ("index", "probs"))

    def read_scores(self, columns: list[str] | None = None) -> pd.DataFrame:
        """`scores.parquet` (only `columns` when given)."""
        with self.reading(self.scores_file):
            return pd.read_parquet(self.scores_file, columns=columns)

    def read_scores_per_run(self) -> pd.DataFrame:
        with self.reading(self.scores_per_run_file):
            return pd.read_parquet(self.scores_per_run_file)

    def read_predictions(self) -> pd.DataFrame | None:
        """Final-model predictions; None for runs from before they were written."""
        if not self.predictions_file.exists() and not self._recorded(self.predictions_file):
            return None
        with self.reading(self.predictions_file):
            return pd.read_parquet(self.predictions_file)

    def read_heldout(self) -> pd.DataFrame | None:
        """Held-out evidence (`heldout.parquet`); None for runs from before it was written.

        Columns: id, label, given_prob, suggested, suggested_prob, cl_quality, cl_issue (one
        row per held-out example, in `split.npz`'s test order; probabilities are the runs'
        mean held-out softmax, which no run trained on).
        """
        if not self.heldout_file.exists() and not self._recorded(self.heldout_file):
            return None
        with self.reading(self.heldout_file):
            return pd.read_parquet(self.heldout_file)

    def read_meta(self) -> dict[str, Any]:
        """`meta.json` ({"name": str | None, "preset": str | None}); {} when absent or unreadable.

        User metadata, not a result: a damaged file costs the label, never the run.
        """
        try:
            meta = read_json(self.meta_file)
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def write_meta(self, **fields: Any) -> None:
        """Merge `fields` (name, preset) into `meta.json`; None values leave a field as it is.

        Written beside a run by every `score` call, so a rerun with another `--name` renames
        the run without touching its key, its files or their manifest.
        """
        meta = self.read_meta()
        meta.update({k: v for k, v in fields.items() if v is not None})
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.meta_file, meta)

    def open_images(self, *, heldout: bool = False) -> np.ndarray | None:
        """The display images, memory-mapped, (N, H, W, C) uint8; None when absent.

        `heldout=True`: those of the M held-out rows, (M, H, W, C), in `split.npz` test order.
        """
        file = self.heldout_images_file if heldout else self.images_file
        if not file.exists() and not self._recorded(file):
            return None
        with self.reading(file):
            images = np.load(file, mmap_mode="r", allow_pickle=False)
            if images.ndim != 4 or images.dtype != np.uint8:
                raise ValueError(f"holds {images.dtype} of shape {images.shape}")
            return images

    def read_texts(
        self, columns: list[str] | None = None, *, heldout: bool = False
    ) -> pd.DataFrame | None:
        """The display texts (id, text[, text_pair]); None when absent (image runs).

        `heldout=True`: those of the held-out rows.
        """
        file = self.heldout_texts_file if heldout else self.texts_file
        if not file.exists() and not self._recorded(file):
            return None
        with self.reading(file):
            return pd.read_parquet(file, columns=columns)

    def _recorded(self, file: Path) -> bool:
        """Whether the finished run's manifest lists `file` (so its absence is damage)."""
        return self.relative(file) in self.manifest()

    def manifest(self) -> dict[str, dict[str, Any]]:
        """What the finished run wrote: relative name -> {size, mtime_ns, sha256}; {} if unknown.

        Read from `status.json` (`files`, written with `done`); empty for a run that is not
        done, whose status is unreadable, or that finished before manifests were kept.
        """
        status = read_status(self.path)
        files = (status or {}).get("files") if (status or {}).get("state") == "done" else None
        if not isinstance(files, dict):
            return {}
        return {
            k: v
            for k, v in files.items()
            if isinstance(v, dict) and isinstance(v.get("size"), int) and "sha256" in v
        }

    def read_inputs(self, *, pixels: bool = False) -> ModelInputs | None:
        """What the models consumed, bit for bit; None when the run does not hold it.

        None for a run scored before inputs were kept, and for a text probe whose dataset
        embeddings file has since been removed: the caller then prepares them again.
        Images come as float32, or with `pixels` as the stored uint8 and their `divisor`
        (what training holds: a quarter of the memory).
        """
        if not self.inputs_file.exists() and not self._recorded(self.inputs_file):
            return None
        a = self.read_arrays(self.inputs_file, ("kind",))
        with self.reading(self.inputs_file):
            kind = str(a["kind"])
            if kind not in INPUT_KINDS:
                raise ValueError(f"unknown input kind {kind!r}")
            if kind == "embeddings":
                file = self.embeddings_file(str(a["embedding_key"]))
                if not file.exists():
                    return None
                e = load_arrays(file)
                return ModelInputs(kind, e["train"], e["test"])
            if kind == "tokens":  # stored as int32 (ids < 2**31); the models take int64
                return ModelInputs(kind, a["train"].astype(np.int64), a["test"].astype(np.int64))
            if "divisor" in a and pixels:
                return ModelInputs(kind, a["train"], a["test"], divisor=int(a["divisor"]))
            if "divisor" in a:
                divisor = int(a["divisor"])
                return ModelInputs(
                    kind, _from_pixels(a["train"], divisor), _from_pixels(a["test"], divisor)
                )
            return ModelInputs(kind, a["train"], a["test"])

    # -- damage ------------------------------------------------------------------------

    def written_files(self) -> list[Path]:
        """The files the pipeline wrote that are on disk now (what the manifest records).

        Not `status.json` (it holds the manifest), `lock`, the runs' `.safetensors`
        snapshots, nor the user's and the app's later files (decisions, map, sweeps).
        """
        fixed = [
            self.config_file,
            self.split_file,
            self.inputs_file,
            self.features_free_file,
            self.features_free_test_file,
            self.scores_file,
            self.scores_per_run_file,
            self.predictions_file,
            self.heldout_file,
            self.images_file,
            self.texts_file,
            self.heldout_images_file,
            self.heldout_texts_file,
            self.summary_file,
        ]
        found = [f for f in fixed if f.is_file()]
        # Not the runs' weight snapshots: nothing reads them once the scores are computed,
        # and the README tells users they may delete them.
        for folder, pattern in ((self.runs_dir, "run_*.npz"), (self.cv_dir, "fold_*.npz")):
            if folder.is_dir():
                found += sorted(f for f in folder.glob(pattern) if f.is_file())
        return found

    def digest(self) -> dict[str, dict[str, Any]]:
        """The manifest of what is on disk now: relative name -> {size, mtime_ns, sha256}."""
        return {self.relative(f): file_digest(f) for f in self.written_files()}

    def require_finished(self) -> None:
        """Refuse, with one line, anything but a sound finished run: what every reader needs.

        In order: not a run folder at all; damaged (the first `check` problem, naming the
        file and the fix); not finished (`unfinished_reason`: running, interrupted, failed or
        cancelled, and how to resume).
        """
        if not (self.config_file.exists() or self.status_file.exists()):
            raise InputError(f"{self.path} is not a Winnow run folder (no config.json)")
        problems = self.check()
        if problems:
            raise problems[0]
        unfinished = unfinished_reason(self.path)
        if unfinished is not None:
            raise InputError(unfinished)

    def check(self, *, deep: bool = False) -> list[DamagedRun]:
        """What is damaged in this run, as DamagedRun records (empty when it is sound).

        Always: `config.json` and `status.json` parse to objects (a missing status is damage
        unless a live job holds the run's lock: it is being written). For a finished run also
        `summary.json`, and every file its manifest lists: present with the size it had, and
        the same sha256 when its modification time moved (cheap: `list` and the pages run
        this). `deep` hashes every file, which also catches damage that kept the time (the
        `score` command runs this before it trusts a cached run).
        """
        problems: list[DamagedRun] = []
        try:
            lacking = [k for k in _CONFIG_SECTIONS if k not in self.read_config()]
            if lacking:  # a whole run's record has every section
                problems.append(DamagedRun(self.path, "config.json", f"lacks {lacking[0]!r}"))
        except DamagedRun as err:
            problems.append(err)
        try:
            status = self.read_status()
        except DamagedRun as err:
            return [*problems, err]
        if status is None:
            if not self._lock_live():
                problems.append(DamagedRun(self.path, _STATUS, "is missing"))
            return problems
        if status["state"] != "done":
            return problems
        try:
            self.read_summary()
        except DamagedRun as err:
            problems.append(err)
        recorded = self.manifest()
        if not recorded:  # finished before manifests were kept: the files pages need
            for file in (self.scores_file, self.split_file):
                if not file.is_file():
                    problems.append(DamagedRun(self.path, self.relative(file), "is missing"))
        for name, meta in recorded.items():
            if any(p.file == name for p in problems):  # already said (config, summary)
                continue
            reason = compare_file(self.path / name, meta, deep=deep)
            if reason:
                problems.append(DamagedRun(self.path, name, reason))
        return problems

    def _lock_live(self) -> bool:
        owner = self.lock().owner()
        if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
            return False
        return owner.get("host") == socket.gethostname() and pid_alive(
            owner["pid"], owner.get("pid_start")
        )

    def remove(self) -> None:
        """Delete this run folder (a damaged run the user gave up on); refuses a live job's."""
        import shutil

        if not (self.config_file.exists() or self.status_file.exists()):
            raise InputError(f"{self.path} is not a Winnow run folder; nothing deleted")
        if self._lock_live():
            raise InputError(f"{self.path} is being computed by a live job; cancel it first")
        shutil.rmtree(self.path)

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
        elif inputs.divisor is not None:  # uint8 already: the very bytes the models divide
            if not all(a.dtype == np.uint8 for a in arrays.values()):
                raise ValueError("images with a divisor are uint8 pixels")
            arrays["divisor"] = np.int64(inputs.divisor)
        else:
            divisor = _pixel_divisor(inputs.train, inputs.test)
            if divisor is not None:
                arrays = {k: _to_pixels(a, divisor) for k, a in arrays.items()}
                arrays["divisor"] = np.int64(divisor)
        save_arrays(self.inputs_file, kind=np.str_(inputs.kind), **arrays)

    def write_images(self, pixels: np.ndarray, *, heldout: bool = False) -> None:
        """Display images, (N, H, W, C) uint8, as a plain `.npy` pages can memory-map
        (`heldout=True`: the held-out rows', (M, H, W, C))."""
        buf = io.BytesIO()
        np.save(buf, pixels)
        file = self.heldout_images_file if heldout else self.images_file
        atomic_write_bytes(file, buf.getvalue())


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


def compare_file(file: Path, meta: dict[str, Any], *, deep: bool) -> str | None:
    """How `file` differs from its manifest entry `meta` ({size, mtime_ns, sha256}), or None.

    Without `deep`, a file whose size and modification time are as written is taken as
    intact (a stat, no read: what `list` and every page afford); one whose time moved (a
    rewrite, or a copy that did not keep times) is hashed. `deep` always hashes.
    """
    if not file.is_file():
        return "is missing"
    stat = file.stat()
    size, expected = stat.st_size, int(meta["size"])
    if size == 0 and expected:
        return "is empty"
    if size < expected:
        return f"is cut short ({size:,} of {expected:,} bytes)"
    if size != expected:
        return f"changed size since the run finished ({size:,} bytes, {expected:,} written)"
    deep = deep or stat.st_mtime_ns != meta.get("mtime_ns")
    if deep and _sha256(file) != meta["sha256"]:
        return "changed since the run finished (its sha256 differs)"
    return None


# -- reading runs ----------------------------------------------------------------------


@dataclass
class RunInfo:
    """One cached run as listed by `python -m scoring list` (and the app's home page).

    `state` is the status file's (running / done / failed / cancelled), `interrupted` for a
    running one whose job died, or `damaged`: then `problem` says which file and why, and
    `problems` holds every DamagedRun found (`RunDir.check`). `name` and `preset` come from
    `meta.json` (None when never given); `runs`, `epochs`, `noise`, `noise_kind` and
    `created` from `config.json`. `title` is the one-line label every page and `list` use.
    """

    path: Path
    dataset: str
    state: str
    updated: float
    n_train: int | None
    recipe: str | None
    test_accuracy: float | None
    version_ok: bool
    problems: list[DamagedRun] = dataclasses.field(default_factory=list)
    name: str | None = None
    preset: str | None = None
    runs: int | None = None
    epochs: int | None = None
    noise: float = 0.0  # share of training labels the run's --noise check corrupted
    noise_kind: str | None = None  # NoiseConfig.kind when the config has one
    created: float | None = None  # config.json's creation time (else `updated`)
    # What made the run (config.json's "source"): "scored" (a built-in recipe), "recorded"
    # (the user's own training, `scoring.record.Recorder`) or "imported" (`winnow import`).
    source: str = "scored"

    @property
    def title(self) -> str:
        """One line naming the run: `run_title(self)`."""
        return run_title(self)

    @property
    def problem(self) -> str | None:
        """The first damage in one line (`file reason`, `(+n more)`), or None."""
        if not self.problems:
            return None
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return self.problems[0].short + more

    @property
    def fix(self) -> str | None:
        """What to do about the damage (the config's own fix when config.json is damaged)."""
        if not self.problems:
            return None
        files = {p.file for p in self.problems}
        return FIX_CONFIG if "config.json" in files else self.problems[0].fix


def run_title(info: RunInfo) -> str:
    """The one-line label of a run, the same in every caption, picker, table and `list`.

    "my run · digits · mlp 5×30 · tiny · 10% noise · 2026-12-01 14:05": the name (when
    given), the dataset, the recipe with runs × epochs, the preset (when it is not
    "default"), the injected noise (when any; its kind when not the default permutation)
    and the creation time. Parts that are unknown (a damaged config) are left out.
    """
    parts = [info.name] if info.name else []
    parts.append(info.dataset)
    if info.recipe:
        budget = f" {info.runs}×{info.epochs}" if info.runs and info.epochs else ""
        parts.append(f"{info.recipe}{budget}")
    if info.preset and info.preset != "default":
        parts.append(info.preset)
    if info.noise:
        kind = f" {info.noise_kind}" if info.noise_kind and info.noise_kind != "uniform" else ""
        parts.append(f"{info.noise:.0%}{kind} noise")
    when = info.created if info.created is not None else info.updated
    parts.append(datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M"))
    return " · ".join(parts)


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
    """Every run folder: `<fingerprint>/<key>/` holding a config or a status file.

    Either one is enough, so a run whose config.json was lost is still listed (as damaged).
    """
    root = Path(cache_dir)
    if not root.is_dir():
        return
    found: set[Path] = set()
    for name in (RunDir(root).config_file.name, _STATUS):
        for file in root.glob(f"*/*/{name}"):
            if not file.parts[-3].startswith("_"):  # _hf/, _jobs/, _uploads/ are not runs
                found.add(file.parent)
    yield from sorted(found)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_info(path: Path | str) -> RunInfo:
    """One run as `list` shows it: never raises for a damaged run, says what is wrong."""
    rd = RunDir(Path(path))
    problems = rd.check()
    try:
        config = rd.read_config()
    except DamagedRun:
        config = {}
    try:
        status = rd.read_status() or {"state": "running", "updated": 0.0}
    except DamagedRun:
        status = {"state": "damaged"}
    state = status["state"]
    pid = status.get("pid")
    alive = isinstance(pid, int) and pid_alive(pid, status.get("pid_start"))
    if state == "running" and not alive and not rd._lock_live():
        state = "interrupted"  # the job died; running the same command resumes it
    if problems:
        state = "damaged"
    summary: dict[str, Any] = {}
    if state == "done":
        with contextlib.suppress(DamagedRun):
            summary = rd.read_summary()
    updated = _number(status.get("updated"))
    if updated is None:  # unreadable status: the folder's own time keeps the order sensible
        updated = rd.path.stat().st_mtime
    dataset = config.get("dataset") or {}
    meta = rd.read_meta()
    scored = config.get("config") if isinstance(config.get("config"), dict) else {}
    noise = scored.get("noise") if isinstance(scored.get("noise"), dict) else {}
    train = scored.get("train") if isinstance(scored.get("train"), dict) else {}
    recipe = config.get("recipe") if isinstance(config.get("recipe"), dict) else {}
    runs, epochs = train.get("runs"), recipe.get("epochs")
    return RunInfo(
        path=rd.path,
        dataset=str(dataset.get("description", "?")),
        state=state,
        updated=updated,
        n_train=dataset.get("n_train") if isinstance(dataset.get("n_train"), int) else None,
        recipe=(config.get("recipe") or {}).get("name"),
        test_accuracy=_number(summary.get("test_accuracy_mean")),
        version_ok=config.get("scoring_version") == SCORING_VERSION,
        problems=problems,
        name=_text_or_none(meta.get("name")),
        preset=_text_or_none(meta.get("preset")),
        runs=runs if isinstance(runs, int) and not isinstance(runs, bool) else None,
        epochs=epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None,
        noise=_number(noise.get("fraction")) or 0.0,
        noise_kind=_text_or_none(noise.get("kind")),
        created=_number(config.get("created")),
        source=run_source(config),
    )


RUN_SOURCES = ("scored", "recorded", "imported")


def run_source(config: dict[str, Any]) -> str:
    """What made a run, from its `config.json`: "scored", "recorded" or "imported".

    Only "scored" runs can be rescored or retrained from their config (a built-in recipe on
    a loadable source); the others hold what the user's own training logged.
    """
    source = config.get("source")
    return source if source in RUN_SOURCES else "scored"


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def list_runs(cache_dir: Path | str) -> list[RunInfo]:
    """Every run under `cache_dir`, newest first; damaged runs too (state `damaged`)."""
    runs = [run_info(path) for path in iter_run_dirs(cache_dir)]
    return sorted(runs, key=lambda r: r.updated, reverse=True)


def read_scores(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """`scores.parquet` of a finished run (only `columns` when given)."""
    return RunDir(path).read_scores(columns)
