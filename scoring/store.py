"""Content-addressed store of scoring runs.

Layout: `<cache-dir>/<dataset-fingerprint>/<run-key>/` holding `config.json`, `status.json`,
`dataset.json`, `split.npz`, `runs/run_NNN.npz`, `cv/fold_N.npz`, `scores.parquet`,
`scores_per_run.parquet`, `summary.json`, `log.txt`. Every write goes to a temp file in the
same folder and is moved into place with `os.replace`, so a reader never sees half a file;
`status.json` says `done` only after everything else is written. Arrays are `.npz` read with
`allow_pickle=False`: no pickled objects ever enter the cache.
"""

from __future__ import annotations

import contextlib
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


def default_cache_dir() -> Path:
    """`$WINNOW_CACHE_DIR`, else `cache/` in the working directory."""
    return Path(os.environ.get("WINNOW_CACHE_DIR", "cache"))


def run_dir(cache_dir: Path | str, fingerprint: str, key: str) -> Path:
    return Path(cache_dir) / fingerprint / key


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
    write_json(Path(path) / "status.json", status)


def read_status(path: Path) -> dict[str, Any] | None:
    """The run's status, or None when it has none yet."""
    try:
        return read_json(Path(path) / "status.json")
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
        return self.path / "lock"

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
    config = read_json(Path(path) / "config.json")
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
    for config in root.glob("*/*/config.json"):
        if not config.parts[-3].startswith("_"):  # _hf/ holds Hugging Face's own cache
            yield config.parent


def list_runs(cache_dir: Path | str) -> list[RunInfo]:
    """Every run under `cache_dir`, newest first."""
    runs = []
    for path in iter_run_dirs(cache_dir):
        try:
            config = read_json(path / "config.json")
        except (OSError, json.JSONDecodeError):
            continue
        status = read_status(path) or {"state": "running", "updated": 0.0}
        state = status["state"]
        if state == "running" and not pid_alive(status.get("pid", -1)):
            state = "interrupted"  # the job died; running the same command resumes it
        summary = {}
        if state == "done" and (path / "summary.json").exists():
            summary = read_json(path / "summary.json")
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
    return pd.read_parquet(Path(path) / "scores.parquet", columns=columns)
