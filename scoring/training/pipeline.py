"""A scoring run from config to a complete cache entry: the run steps in order, resumable.

prepare -> record the setup -> model inputs -> R recorded runs -> K cross-fit folds (only
for scores that need out-of-fold probabilities) -> scores -> results -> summary; each step
lives in `scoring.training.steps`. Each run and fold is saved as soon as it finishes, so a
killed job resumes where it stopped; the run is marked done only after every file is written.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from scoring import store
from scoring.config import ScoreConfig
from scoring.errors import Cancelled, InputError
from scoring.training import results, steps
from scoring.training.executors import Executor
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
    steps.record_setup(prep)
    progress = Progress(rd.path, prep.total_epochs, show_progress)
    timings: dict[str, float] = {}
    try:
        with _timed(timings, "inputs"):
            x, x_test = steps.tensor_inputs(prep, progress)
            if prep.device.type == "cuda":  # page-locked: host-to-GPU copies overlap compute
                x, x_test = x.pin_memory(), x_test.pin_memory()
        with _timed(timings, "runs"):
            runs = steps.train_runs(prep, x, x_test, progress, executor)
        oof = None
        if prep.needs_cv:
            with _timed(timings, "cross_fit"):
                oof = steps.cross_fit(prep, x, progress)
        progress.stage("scoring")
        with _timed(timings, "scores"):
            scores = results.compute_scores(prep, oof)
        with _timed(timings, "write"):
            results.write_results(prep, scores, runs, x, x_test)
        store.write_json(rd.summary_file, results.summarize(prep, runs, scores, timings))
        # Last: `done` promises that everything above is on disk.
        store.write_status(rd.path, "done", progress=1.0, message="done")
    except Cancelled:
        store.write_status(
            rd.path,
            "cancelled",
            progress=min(progress.fraction, 1.0),
            message="cancelled; run the same command to resume",
        )
        raise
    except InputError as err:
        store.write_status(rd.path, "failed", message=str(err))
        raise
    except Exception as err:
        store.write_status(rd.path, "failed", message=f"{type(err).__name__}: {err}")
        raise
    finally:
        progress.close()
    return rd.path


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
    of starting a second one.
    """
    cache_dir = Path(cache_dir)
    prep = prepare(config, cache_dir)
    path = prep.path
    if on_prepared is not None:
        on_prepared(path)
    status = store.read_status(path)
    if status and status["state"] == "done":
        store.check_version(path)
        return path
    lock = prep.run_dir.lock()
    while not lock.acquire():
        if on_wait is not None:
            on_wait(store.read_status(path) or {})
        time.sleep(wait_poll_s)
    status = store.read_status(path)
    if status and status["state"] == "done":  # the job we waited for finished it
        lock.release()
        return path
    try:
        return execute(prep, show_progress=show_progress, executor=executor)
    finally:
        lock.release()
