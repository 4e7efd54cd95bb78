"""A scoring run from config to a complete cache entry: the run steps in order, resumable.

prepare -> record the setup -> model inputs -> R recorded runs -> K cross-fit folds (only
for scores that need out-of-fold probabilities) -> scores -> results -> summary; each step
lives in `scoring.training.steps`. Each run and fold is saved as soon as it finishes, so a
killed job resumes where it stopped; the run is marked done only after every file is written,
and `done` records every file's size and sha256 (`store.RunDir.digest`).

Repair: `score` on a run marked done first checks its files against those hashes
(`RunDir.check(deep=True)`). When one is damaged or missing it computes the run again the way
a resume does: recorded runs and folds that fail their hash (or, without one, do not load)
are dropped and retrained, the intact ones are read back, and everything derived from them
(scores, predictions, examples, inputs, summary) is written again, bit for bit what an
undamaged run holds.

Several model families (`--recipe tfidf,probe`, `scoring.training.families`): each family is
first scored as its own ordinary run, then this run reads their recorded runs and folds side
by side in place of training, and scores, writes and marks itself done the same way.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from scoring import store
from scoring.config import ScoreConfig, recipe_families
from scoring.errors import Cancelled, InputError
from scoring.scores import knn
from scoring.training import families, results, steps
from scoring.training.executors import Executor, spreads
from scoring.training.pixels import Inputs
from scoring.training.progress import Progress
from scoring.training.steps import CV_SCORES, Prepared, prepare

__all__ = ["CV_SCORES", "Prepared", "execute", "prepare", "score"]


def execute(
    prep: Prepared,
    *,
    show_progress: bool = True,
    executor: Executor | None = None,
) -> Path:
    """Compute (or resume) the run described by `prep`; caller holds the run's lock.

    The R training runs go through `executor` (default: one after another, here).
    """
    rd = prep.run_dir
    progress = None
    timings: dict[str, float] = {}
    try:
        # Inside the try: a cancel or an error while setting up also marks the run.
        drop_damaged(prep)
        steps.record_setup(prep)
        progress = Progress(rd.path, prep.total_epochs, show_progress)
        x = x_test = None
        if prep.families:  # several families, each already its own finished run: read them
            with _timed(timings, "runs"):
                runs, oof = families.gather(prep)
        else:
            runs, oof, x, x_test = _train(prep, progress, timings, executor)
        progress.stage("scoring")
        # With Ray, the neighbour searches' query blocks are tasks too (same results).
        with knn.spread_over(executor if spreads(executor) else None):
            with _timed(timings, "scores"):
                scores = results.compute_scores(prep, oof)
            with _timed(timings, "write"):
                results.write_results(prep, scores, runs, x, x_test, oof)
        with _timed(timings, "health"):  # dataset-level issues: health.json
            results.write_health(prep, oof)
        summary = results.summarize(prep, runs, scores, timings, oof=oof)
        if prep.families:
            summary.update(families.summary_fields(prep, runs))
        store.write_json(rd.summary_file, summary)
        # Last: `done` promises that everything above is on disk, as its manifest says.
        store.write_status(rd.path, "done", progress=1.0, message="done", files=rd.digest())
    except Cancelled:
        _mark(
            rd,
            "cancelled",
            progress=min(progress.fraction, 1.0) if progress is not None else 0.0,
            message="cancelled; run the same command to resume",
        )
        raise
    except InputError as err:
        _mark(rd, "failed", message=str(err))
        raise
    except Exception as err:
        _mark(rd, "failed", message=f"{type(err).__name__}: {err}")
        raise
    finally:
        if progress is not None:
            progress.close()
    return rd.path


def _train(
    prep: Prepared, progress: Progress, timings: dict[str, float], executor: Executor | None
) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None, Inputs, Inputs]:
    """The model inputs, the R recorded runs and (when asked for) the K cross-fit folds.

    Returns the runs as `steps.train_runs` keeps them, the out-of-fold probabilities
    (N, K) or None, and the train (N, ...) and test (M, ...) inputs.
    """
    with _timed(timings, "inputs"):
        x, x_test = steps.tensor_inputs(prep, progress, executor)
        if prep.device.type == "cuda":  # page-locked: host-to-GPU copies overlap compute
            x, x_test = x.pin_memory(), x_test.pin_memory()
    with _timed(timings, "runs"):
        runs = steps.train_runs(prep, x, x_test, progress, executor)
    oof = None
    if prep.needs_cv:
        with _timed(timings, "cross_fit"):
            oof = steps.cross_fit(prep, x, progress)
    return runs, oof, x, x_test


def _mark(rd: store.RunDir, state: str, **fields: Any) -> None:
    """Write the run's final status, once it is a run (its config.json written): a cancel or
    an error before that leaves no half-made folder claiming a state."""
    if rd.config_file.exists():
        store.write_status(rd.path, state, **fields)


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Wall seconds of the block, into `timings[name]` (summary.json's timings_s)."""
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0


def score(
    config: ScoreConfig,
    cache_dir: Path | str,
    *,
    show_progress: bool = True,
    wait_poll_s: float = 1.0,
    on_wait: Callable[[dict], None] | None = None,
    on_prepared: Callable[[Path], None] | None = None,
    executor: Executor | None = None,
) -> Path:
    """Compute the run for `config` unless it is cached; returns its folder.

    `executor` runs the R training runs (default: here, one after another).

    A request for a key that another live process is computing waits for that job instead
    of starting a second one. A cached run whose files no longer match the hashes its
    `done` recorded is repaired: only what is damaged or missing is recomputed.
    """
    cache_dir = Path(cache_dir)
    several = len(recipe_families(config.train.recipe)) > 1
    prep = families.prepare(config, cache_dir) if several else prepare(config, cache_dir)
    if on_prepared is not None:
        on_prepared(prep.path)
    return _score_prepared(
        prep,
        show_progress=show_progress,
        wait_poll_s=wait_poll_s,
        on_wait=on_wait,
        executor=executor,
    )


def _score_prepared(
    prep: Prepared,
    *,
    show_progress: bool,
    wait_poll_s: float,
    on_wait: Callable[[dict], None] | None = None,
    executor: Executor | None,
) -> Path:
    """`score` once prepared: the cached run, a repaired one, or a new one. A run of several
    families first scores each family as its own ordinary run (cached, resumed, repaired
    like any), under this run's lock."""
    path = prep.path
    damage = _damage(prep.run_dir)
    if damage is None:
        store.check_version(path)
        return path
    lock = prep.run_dir.lock()
    while not lock.acquire():
        if on_wait is not None:  # the lock's holder is who computes it (status.json may lag)
            on_wait({**(store.read_status(path) or {}), **(lock.owner() or {})})
        time.sleep(wait_poll_s)
    damage = _damage(prep.run_dir)
    if damage is None:  # the job we waited for finished it
        lock.release()
        return path
    if damage and show_progress:
        print(f"repairing {path}: {'; '.join(d.short for d in damage)}", file=sys.stderr)
    try:
        for member in prep.families:
            _score_prepared(
                member, show_progress=show_progress, wait_poll_s=wait_poll_s, executor=executor
            )
        return execute(prep, show_progress=show_progress, executor=executor)
    finally:
        lock.release()


def _damage(rd: store.RunDir) -> list[store.DamagedRun] | None:
    """None for a finished, intact run; else what is damaged ([] when just not finished)."""
    try:
        status = rd.read_status()
    except store.DamagedRun as err:
        return [err]
    if not status or status["state"] != "done":
        return []
    return rd.check(deep=True) or None


def drop_damaged(prep: Prepared) -> list[str]:
    """Remove the recorded runs, folds and label-free features that are damaged, so they are
    computed again.

    A file the finished run's manifest lists must match its size and sha256; one it does not
    list (a resumed, unfinished run) must load. A run's weight snapshots go with its
    recording (the .npz marks the run complete). Returns the relative names removed.
    """
    rd = prep.run_dir
    manifest = rd.manifest()
    groups = [
        ((rd.run_file(r), rd.states_file(r)), functools.partial(rd.read_run, r))
        for r in range(prep.n_runs)
    ]
    if prep.needs_cv:
        groups += [
            ((rd.fold_file(f),), functools.partial(rd.read_fold, f)) for f in range(prep.n_folds)
        ]
    # Label-free features (the training rows' and the held-out rows') are computed once and
    # read back, like a run: a damaged file goes.
    for free in (rd.features_free_file, rd.features_free_test_file):
        groups.append(((free,), functools.partial(rd.read_arrays, free, ("features",))))
    dropped = []
    for files, read in groups:
        if not files[0].exists():
            continue  # computed anyway
        if rd.relative(files[0]) in manifest:
            listed = [(f, manifest[rd.relative(f)]) for f in files if rd.relative(f) in manifest]
            bad = any(store.compare_file(f, meta, deep=True) for f, meta in listed)
        else:
            try:
                read()
                bad = False
            except store.DamagedRun:
                bad = True
        if bad:
            for f in files:
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
            dropped.append(rd.relative(files[0]))
    return dropped
