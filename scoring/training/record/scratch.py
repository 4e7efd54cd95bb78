"""The scratch folder of a recording in progress: its layout, its file names, its flushes.

A recording lives in `store.recording_dir(cache_dir, key)` until `finish` turns it into a
run folder and removes it. Each rank flushes into its own `rank<r>/`:

- `r<r>e<t>.npz`: epoch t of run r (`epochs.epoch_arrays`: ``pos``, ``stats``, ``probs``);
- `r<r>v<t>.npz`: the eval pass after epoch t (``pos``, ``probs``);
- `r<r>end.npz`: run r's end (``pos``, ``probs_final``, held-out evidence, features);
- `oof.npz`: out-of-fold probabilities (``pos``, ``probs``);
- `rank.json`: what the rank logged, written last (= its part is done).

`assemble<r>/` beside the ranks is where `finish` builds run r's arrays. Only this module
spells these names.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np

from scoring import store

RANK_FILE = "rank.json"
OOF_FILE = "oof.npz"


def epoch_file(r: int, t: int) -> str:
    """Name of run r's epoch t (1-based) flush."""
    return f"r{r}e{t}.npz"


def eval_file(r: int, t: int) -> str:
    """Name of run r's eval pass after epoch t (1-based)."""
    return f"r{r}v{t}.npz"


def end_file(r: int) -> str:
    """Name of run r's end: its final predictions and evidence."""
    return f"r{r}end.npz"


def rank_folder(cache_dir: Path, key: str, rank: int) -> Path:
    """This rank's folder of recording `key`, made empty (a rerun's leftovers removed)."""
    folder = store.recording_dir(cache_dir, key) / f"rank{rank}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def rank_records(recording: Path) -> list[Path]:
    """Every rank's `rank.json` of a recording, in rank order (rank 0 first)."""
    # By number, not by name: "rank10" sorts before "rank2" as text, and the merge's rule
    # (the lowest rank's value wins) depends on this order.
    return sorted(
        recording.glob(f"rank*/{RANK_FILE}"), key=lambda f: int(f.parent.name[len("rank") :])
    )


def assemble_folder(recording: Path, r: int) -> Path:
    """Where run r's arrays are assembled (made if missing)."""
    work = recording / f"assemble{r}"
    work.mkdir(exist_ok=True)
    return work


def save(path: Path, **arrays: np.ndarray) -> None:
    """A recording's own flush: a plain `.npz`, without the fsync of the store's atomic
    writes (a flush that dies with its process is lost with the rest of the recording;
    `finish` writes the run folder through the store)."""
    np.savez(path, **arrays)


def remove(recording: Path) -> None:
    """Remove a recording, and the recordings folder when it was the last one."""
    shutil.rmtree(recording, ignore_errors=True)
    with contextlib.suppress(OSError):  # the last recording: no empty folder left
        recording.parent.rmdir()
