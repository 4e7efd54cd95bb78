"""Run assembly: one recorded run's flushes, merged over the ranks, as `runs/run_<r>.npz`.

The (T, N) statistics are assembled epoch by epoch in memory-mapped files of a scratch
folder and packed from there (`store.save_npz_files`), so memory stays one epoch's worth
however long the run. The arrays are stored as a built-in run stores them: `steps.COMPACT`
ones in float16 when they fit, the rest float32, under the same names, so every score and
page reads a recorded run as any other.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from scoring import data, store
from scoring.errors import InputError
from scoring.training.record.definitions import probs_early_source
from scoring.training.record.epochs import STATS
from scoring.training.record.examples import Examples
from scoring.training.record.merge import (
    Ranks,
    count_rows,
    merge_epoch_stats,
    merge_features,
    merge_rows,
    merge_test_probs,
)
from scoring.training.record.scratch import end_file, epoch_file, eval_file
from scoring.training.steps import COMPACT

_F16_MAX = float(np.finfo(np.float16).max)


def assemble_run(
    rd: store.RunDir,
    work: Path,
    ranks: Ranks,
    r: int,
    early: int,
    ex: Examples,
    ds: data.Dataset,
    recording: dict[str, Any],
) -> dict[str, np.ndarray]:
    """Merge run r's epochs over the ranks into `runs/run_r.npz`; return its light part.

    Parameters
    ----------
    rd : store.RunDir
        The run folder being written.
    work : Path
        An empty scratch folder for the run's memory-mapped arrays; removed at the end.
    ranks : Ranks
        What the ranks logged, and where.
    r : int
        The run (0-based).
    early : int
        EL2N's epoch (1-based).
    ex : Examples
        The recording's examples (N ids, K classes).
    ds : data.Dataset
        The run's dataset; its held-out split names the test rows.
    recording : dict
        `config.json`'s ``recording`` block: the run's ``logged_per_epoch`` and
        ``probs_early_runs`` (where EL2N's probabilities came from:
        `definitions.probs_early_source`) are appended.

    Returns
    -------
    dict of str to ndarray
        ``test_accuracy`` (scalar), ``probs_final`` (n_examples, n_classes) and, when
        held-out logits were given, ``test_probs`` (n_test, n_classes): what
        `training.results` reads of every run at once.
    """
    files, per_epoch = _stack_stats(work, ranks.folders, r, ranks.n_epochs, ex.ids)
    recording["logged_per_epoch"].append(per_epoch)
    arrays, source = _run_probs(ranks.folders, r, early, ranks.n_epochs, ex.n, ex.n_classes)
    recording["probs_early_runs"].append(source)
    feats = merge_features(ranks.folders, r, ex.n)
    if feats is not None:
        arrays["features"] = feats
    arrays.update(_held_out(ranks.folders, r, ds, ex.n_classes))
    for name, value in results_compact(arrays).items():
        np.save(work / f"{name}.npy", value)
        files[name] = work / f"{name}.npy"
    store.save_npz_files(rd.run_file(r), files)
    shutil.rmtree(work)
    light = {"test_accuracy": arrays["test_accuracy"], "probs_final": arrays["probs_final"]}
    if "test_probs" in arrays:
        light["test_probs"] = arrays["test_probs"]
    return light


def results_compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of a run as stored: `steps.COMPACT` ones in float16 when they fit."""
    out = dict(arrays)
    for name in COMPACT:
        a = out.get(name)
        if a is not None and a.dtype == np.float32 and np.abs(a).max() < _F16_MAX:
            out[name] = a.astype(np.float16)
    return out


def _stack_stats(
    work: Path, folders: list[Path], r: int, n_epochs: int, ids: np.ndarray
) -> tuple[dict[str, Path], list[list[int]]]:
    """Run r's (T, N) statistics and correctness, merged epoch by epoch into `.npy` files of
    `work`; also, per epoch, the least and most ranks that logged an id."""
    n = ids.shape[0]
    stats = {
        name: np.lib.format.open_memmap(
            work / f"{name}32.npy", mode="w+", dtype=np.float32, shape=(n_epochs, n)
        )
        for name in STATS
    }
    correct = np.lib.format.open_memmap(
        work / "correct.npy", mode="w+", dtype=np.bool_, shape=(n_epochs, n)
    )
    top = dict.fromkeys(STATS, 0.0)  # largest |value| of each, to see if float16 holds it
    per_epoch = []
    for t in range(n_epochs):
        row, count = merge_epoch_stats(folders, r, t + 1, n)  # (4, N), (N,)
        if (count == 0).any():
            raise InputError(
                f"finish: epoch {t + 1} of run {r + 1}: no rank logged id "
                f"{ids[count == 0][0]} ({int((count == 0).sum()):,} ids missing)"
            )
        per_epoch.append([int(count.min()), int(count.max())])
        for i, name in enumerate(STATS):
            stats[name][t] = row[i]
            if name in COMPACT:
                top[name] = max(top[name], float(np.abs(row[i]).max()))
        correct[t] = row[1] > row[2]  # the given label's logit beats every other one
    files = _pack_stats(work, stats, top, n_epochs, n)
    correct.flush()
    files["correct"] = work / "correct.npy"
    return files, per_epoch


def _pack_stats(
    work: Path, stats: dict[str, np.ndarray], top: dict[str, float], n_epochs: int, n: int
) -> dict[str, Path]:
    """The file of each statistic: a float16 copy where the values fit, as `steps.compact`
    stores a built-in run's, else the float32 one."""
    files: dict[str, Path] = {}
    for name in STATS:
        if name in COMPACT and top[name] < _F16_MAX:
            small = np.lib.format.open_memmap(
                work / f"{name}.npy", mode="w+", dtype=np.float16, shape=(n_epochs, n)
            )
            for t in range(n_epochs):  # epoch by epoch: memory stays one row
                small[t] = stats[name][t]
            small.flush()
            files[name] = work / f"{name}.npy"
        else:
            stats[name].flush()
            files[name] = work / f"{name}32.npy"
    return files


def _run_probs(
    folders: list[Path], r: int, early: int, n_epochs: int, n: int, k: int
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Run r's EL2N probabilities (float16) and final ones (float32), each (N, K), and
    where EL2N's came from (`definitions.probs_early_source`)."""
    # The eval pass after EL2N's epoch when it covers every id (Data Diet's fixed weights),
    # else its training pass, said in `summary.json`'s definitions; the final predictions
    # likewise, else the run's end.
    early_probs = merge_rows(folders, eval_file(r, early), n, k)
    covered = n if early_probs is not None else count_rows(folders, eval_file(r, early), n)
    source = probs_early_source(covered, n, early)
    if early_probs is None:
        early_probs = merge_rows(folders, epoch_file(r, early), n, k)
    if early_probs is None:
        raise InputError(f"finish: EL2N's epoch {early} of run {r + 1} misses ids")
    end = merge_rows(folders, end_file(r), n, k, key="probs_final")
    final = merge_rows(folders, eval_file(r, n_epochs), n, k)
    probs_final = final if final is not None else end
    if probs_final is None:
        raise InputError(f"finish: the last epoch of run {r + 1} misses ids")
    arrays = {
        "probs_early": early_probs.astype(np.float16),
        "probs_final": probs_final.astype(np.float32),
    }
    return arrays, source


def _held_out(folders: list[Path], r: int, ds: data.Dataset, k: int) -> dict[str, np.ndarray]:
    """Run r's held-out probabilities (M, K) when given, and its test accuracy (NaN if not)."""
    test_probs = merge_test_probs(folders, r, np.asarray(ds.test.ids), k)
    if test_probs is None:
        return {"test_accuracy": np.float64(np.nan)}
    labels = np.asarray(ds.test.labels)
    acc = float((test_probs.argmax(1) == labels).mean()) if labels.size else np.nan
    return {"test_probs": test_probs, "test_accuracy": np.float64(acc)}
