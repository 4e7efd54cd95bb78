"""Pruning sweeps: retrain fresh models on selected subsets, always against random.

For each fraction x seed, and for the chosen rule and the random baseline at the same
fractions and seeds, a trial selects a subset of a finished run's training examples, trains
a new model with the run's recipe (new seeds, as Data Diet does: the models that scored the
data never judge it) and measures held-out accuracy. By default a trial takes the same number
of optimizer steps as the full-data schedule (Data Diet); `schedule="epochs"` keeps the
epochs instead. Every trial is cached by its full description under `<run>/sweeps/trials/`,
so a repeated or overlapping sweep only computes what is new, and a killed sweep resumes
trial by trial. Results of one sweep are collected in `<run>/sweeps/<sweep-key>/trials.parquet`,
rewritten after each trial so the app can draw the curve as it fills in.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from scoring import store
from scoring.config import ScoreConfig
from scoring.errors import Cancelled
from scoring.prune.select import SelectionConfig, apply_decisions, select_run
from scoring.prune.sweeps import SweepConfig, check_sweep, trial_key, trials_frame, trials_of
from scoring.read import decisions
from scoring.read.views import RunView, load_run
from scoring.training.executors import Executor, LocalExecutor, Report
from scoring.training.loop import fit, predict, seed_everything
from scoring.training.pipeline import (
    Prepared,
    Progress,
    augments,
    new_model,
    prepare,
    set_train_threads,
    tensor_inputs,
)

TRAIN_SEED_BASE = 1_000  # retraining seeds sit apart from the scoring runs' seeds


@dataclass
class _Context:
    """What every trial of a sweep shares: the run, its data as tensors, its decisions."""

    view: RunView
    prep: Prepared
    x: torch.Tensor  # (N, ...)
    x_test: torch.Tensor  # (M, ...)
    labels: np.ndarray  # (N,) labels to train on (relabels applied when asked)
    keep: np.ndarray  # (N,) bool: rows not dropped by decisions
    decisions: pd.DataFrame | None  # the latest decisions, when they apply


def _context(run: Path, config: SweepConfig, show_progress: bool) -> _Context:
    view = load_run(run)
    score_config = ScoreConfig.from_dict(view.config["config"])
    prep = prepare(score_config, run.parent.parent)
    labels = prep.labels
    keep = np.ones(labels.shape[0], dtype=bool)
    latest = decisions.latest(run) if config.apply_decisions else None
    if latest is not None:
        keep, labels = apply_decisions(view.table["id"].to_numpy(), labels, latest)
    progress = Progress(run / "sweeps", 1, show_progress)  # only its embedding bar is used
    x, x_test = tensor_inputs(prep, progress, run.parent.parent)
    return _Context(view, prep, x, x_test, labels, keep, latest)


def _select(ctx: _Context, sel: SelectionConfig) -> np.ndarray:
    """Row indices kept by `sel` (decisions applied first when asked), shape (M,)."""
    return select_run(ctx.view, sel, decisions=ctx.decisions)


def _run_trial(
    ctx: _Context, config: SweepConfig, sel: SelectionConfig, progress: Report
) -> dict[str, Any]:
    """Select, train a fresh model (one trial = one unit of progress), evaluate.

    Runs in a Ray task with `--executor ray`; the caller writes the record.
    """
    prep, recipe = ctx.prep, ctx.prep.recipe
    set_train_threads(prep)  # again: a Ray worker is a fresh process
    progress.stage(f"{sel.rule} {sel.fraction:g} seed {sel.seed}")
    kept = _select(ctx, sel)
    n_full = int(ctx.keep.sum())
    full_steps = -(-n_full // recipe.batch_size) * recipe.epochs
    steps = (
        full_steps
        if config.schedule == "steps"
        else -(-len(kept) // recipe.batch_size) * recipe.epochs
    )
    gen = seed_everything(prep.config.train.base_seed + TRAIN_SEED_BASE + sel.seed)
    n_classes = len(ctx.view.label_names)
    model = new_model(prep, ctx.x)
    t0 = time.perf_counter()
    fit(
        model,
        ctx.x[torch.from_numpy(kept)],
        torch.from_numpy(ctx.labels[kept]),
        recipe,
        gen=gen,
        device=prep.device,
        record=False,
        augment=augments(prep),
        steps=steps,
        on_step=lambda _epoch_share: progress.advance(1.0 / steps),
    )
    probs = predict(model, ctx.x_test, device=prep.device).probs
    test_labels = prep.dataset.test.labels
    correct = probs.argmax(1) == test_labels
    per_class = [
        float(correct[test_labels == c].mean()) if (test_labels == c).any() else None
        for c in range(n_classes)
    ]
    return {
        "rule": sel.rule,
        "score": sel.score,
        "fraction": sel.fraction,
        "seed": sel.seed,
        "accuracy": float(correct.mean()),
        "per_class_accuracy": per_class,
        "n_kept": int(len(kept)),
        "kept_per_class": np.bincount(ctx.labels[kept], minlength=n_classes).tolist(),
        "steps": int(steps),
        "schedule": config.schedule,
        "train_seconds": round(time.perf_counter() - t0, 3),
        "selection": sel.to_dict(),
        "apply_decisions": config.apply_decisions,
    }


def sweep(
    run: Path | str,
    config: SweepConfig,
    *,
    show_progress: bool = True,
    executor: Executor | None = None,
) -> Path:
    """Run (or finish) a sweep on a finished run; returns the path of its trials parquet.

    Trials not cached yet go through `executor` (default: here, one after another).
    """
    run = Path(run)
    check_sweep(config)
    view = load_run(run)
    run_key = view.config["key"]
    folder = run / "sweeps" / config.key(run_key)
    out = folder / "trials.parquet"
    trials = trials_of(config)
    lock = store.RunLock(folder)
    while not lock.acquire():  # another job computes this very sweep: wait for it
        time.sleep(1.0)
    try:
        status = store.read_status(folder)
        if status and status["state"] == "done" and out.exists():
            return out
        store.write_json(
            folder / "sweep.json", {"run": str(run), "run_key": run_key, **config.to_dict()}
        )
        ctx = _context(run, config, show_progress)
        set_train_threads(ctx.prep)
        progress = Progress(folder, float(len(trials)), show_progress)
        records: list[dict[str, Any] | None] = [None] * len(trials)
        trial_dir = run / "sweeps" / "trials"
        files = [trial_dir / f"{trial_key(run_key, sel, config)}.json" for sel in trials]
        try:
            todo = []
            for i, trial_file in enumerate(files):
                if trial_file.exists():
                    records[i] = store.read_json(trial_file)
                    progress.advance(1.0)
                else:
                    todo.append(i)

            def save_trial(j: int, record: dict[str, Any]) -> None:
                i = todo[j]
                store.write_json(files[i], record)
                records[i] = record
                done = [r for r in records if r is not None]
                store.write_parquet(out, trials_frame(done, view.label_names))

            if not todo:
                store.write_parquet(out, trials_frame(records, view.label_names))
            else:
                work = functools.partial(_run_trial, ctx, config)
                (executor or LocalExecutor()).map(
                    work, [trials[i] for i in todo], progress, save_trial
                )
            store.write_status(folder, "done", progress=1.0, message="done")
        except BaseException as err:
            state = "cancelled" if isinstance(err, Cancelled) else "failed"
            store.write_status(folder, state, message=f"{type(err).__name__}: {err}")
            raise
        finally:
            progress.close()
        return out
    finally:
        lock.release()
