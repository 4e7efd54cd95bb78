"""Pruning sweeps: retrain fresh models on selected subsets, always against random.

For each fraction x seed, and for the chosen rule, the random baseline and the rule's
registry baseline (offset: random after the same offset) at the same fractions and seeds, a
trial selects a subset of a finished run's training examples, trains a new model with the
run's recipe (new seeds, as Data Diet does: the models that scored the data never judge it)
and records its per-example correctness on the validation split (`sweeps.validation_rows`:
held out of every selection and every trial's training set) and on the test split. By
default a trial takes the same number of optimizer steps as the full-data schedule (the
examples in play: training rows less the validation split and any dropped by decisions;
Data Diet); `schedule="epochs"` keeps the epochs instead. Every trial is cached by its full
description under `<run>/sweeps/trials/`, so a repeated or overlapping sweep only computes
what is new, and a killed sweep resumes trial by trial. Results of one sweep are collected in
`<run>/sweeps/<sweep-key>/trials.parquet`, rewritten after each trial so the app can draw the
curve as it fills in, and, once done, `summary.parquet` (`sweeps.sweep_summary`: per split,
rule and fraction the accuracy and the paired difference to random with a t-interval CI).

A sweep reads everything from the run folder (`store.RunDir`): the recipe and config, the
labels trained on, the split, and the very tensors the scoring runs consumed; the source is
read again only for a run scored before runs kept their inputs.
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
from scoring.errors import Cancelled, InputError
from scoring.prune.plan import plan_selection
from scoring.prune.select import SelectionConfig
from scoring.prune.sweeps import (
    TRIAL_FORMAT,
    VALIDATION_FRACTION,
    VALIDATION_SEED,
    SweepConfig,
    check_sweep,
    pack_correct,
    retrain_blocker,
    sweep_summary,
    trial_key,
    trials_frame,
    trials_of,
    validation_rows,
)
from scoring.read import decisions
from scoring.read.views import RunView, load_run
from scoring.training.executors import Executor, LocalExecutor, Report
from scoring.training.loop import fit, predict, seed_everything
from scoring.training.models import Recipe, pick_device
from scoring.training.pixels import Inputs, to_inputs
from scoring.training.progress import Progress
from scoring.training.steps import ModelSpec, prepare, tensor_inputs

TRAIN_SEED_BASE = 1_000  # retraining seeds sit apart from the scoring runs' seeds


@dataclass
class _Context:
    """What every trial of a sweep shares: the run, its data as tensors, its decisions."""

    view: RunView
    spec: ModelSpec  # the run's recipe, classes, encoder; this machine's device
    base_seed: int
    x: Inputs  # (N, ...): uint8 Pixels for images, converted per batch
    x_test: Inputs  # (M, ...)
    test_labels: np.ndarray  # (M,)
    decisions: pd.DataFrame | None  # the latest decisions, when they apply
    val_rows: np.ndarray  # (V,) positions into the run's table, never selected or trained on
    val_labels: np.ndarray  # (V,) the run's labels as given there


def _context(view: RunView, config: SweepConfig, progress: Progress) -> _Context:
    """Everything from the run folder: config, recipe, split, labels and model inputs."""
    rd = store.RunDir(view.path)
    score_config = ScoreConfig.from_dict(view.config["config"])
    spec = ModelSpec(
        recipe=Recipe(**view.config["recipe"]),
        n_classes=len(view.label_names),
        encoder=score_config.train.model,
        device=pick_device(score_config.train.device),
    )
    split = rd.read_split()
    config.check_decisions(view.path)  # a job from the app passes here first
    latest = decisions.latest(view.path) if config.apply_decisions else None
    x, x_test = model_inputs(rd, score_config, progress)
    labels = view.table["label"].to_numpy(np.int64)  # (N,)
    val_rows = validation_rows(labels)
    return _Context(
        view,
        spec,
        score_config.train.base_seed,
        x,
        x_test,
        split.test_labels,
        latest,
        val_rows,
        labels[val_rows],
    )


def model_inputs(
    rd: store.RunDir, config: ScoreConfig, progress: Progress
) -> tuple[Inputs, Inputs]:
    """The very tensors the run's models consumed, for train (N, ...) and test (M, ...).

    Read from the run folder (`inputs.npz`, or the dataset's embeddings for a text probe);
    images as the stored uint8 `Pixels`, which become the float32 inputs per batch.
    A run scored before runs kept their inputs is prepared again from its source, which
    must then still be where it was and unchanged; otherwise one InputError says so.
    """
    stored = rd.read_inputs(pixels=True)
    if stored is not None:
        return (
            to_inputs(stored.train, stored.divisor),
            to_inputs(stored.test, stored.divisor),
        )
    why = (
        f"the embeddings {rd.path} was trained on were removed from the cache"
        if rd.inputs_file.exists()  # a text probe's inputs live in the dataset's folder
        else f"{rd.path} was scored before runs kept their model inputs"
    ) + ", so retraining reads"
    for source in (config.data.source, config.data.test):
        local = source and source != "digits" and not source.startswith("hf:")
        if local and not Path(source).expanduser().exists():
            raise InputError(
                f"{why} its source again, but {source} is not there any more; put it "
                "back at that path, or score the data again from where it is now"
            )
    try:
        prep = prepare(config, rd.cache_dir)
    except InputError as err:
        raise InputError(
            f"{why} its source {config.data.source} again, which failed: {err}"
        ) from None
    if prep.path.resolve() != rd.path.resolve():
        raise InputError(
            f"{why} its source {config.data.source} again, but that has changed since; "
            "score it again to retrain on it"
        )
    return tensor_inputs(prep, progress)


def _run_trial(
    ctx: _Context, config: SweepConfig, sel: SelectionConfig, progress: Report
) -> dict[str, Any]:
    """Select, train a fresh model (one trial = one unit of progress), evaluate.

    Runs in a Ray task with `--executor ray`; the caller writes the record.
    """
    spec, recipe = ctx.spec, ctx.spec.recipe
    spec.set_threads()  # again: a Ray worker is a fresh process
    progress.stage(f"{sel.rule} {sel.fraction:g} seed {sel.seed}")
    # The one planner the Pruning preview and the export use: the validation rows out, then
    # the decisions, then the rule.
    plan = plan_selection(ctx.view, sel, ctx.decisions, exclude=ctx.val_rows)
    kept = plan.positions  # (M,) rows of the run's training set
    labels = plan.labels[plan.kept]  # (M,) relabels applied
    steps = _trial_steps(plan.rows.shape[0], len(kept), recipe, config.schedule)
    gen = seed_everything(ctx.base_seed + TRAIN_SEED_BASE + sel.seed)
    model = spec.new_model(ctx.x)
    t0 = time.perf_counter()
    fit(
        model,
        ctx.x[torch.from_numpy(kept)],
        torch.from_numpy(labels),
        recipe,
        gen=gen,
        device=spec.device,
        record=False,
        augment=spec.augment,
        steps=steps,
        on_step=lambda _epoch_share: progress.advance(1.0 / steps),
    )
    return {
        "format": TRIAL_FORMAT,
        "rule": sel.rule,
        "score": sel.score,
        "fraction": sel.fraction,
        "seed": sel.seed,
        **_evaluate(ctx, model),
        "n_kept": int(len(kept)),
        "kept_per_class": np.bincount(labels, minlength=spec.n_classes).tolist(),
        "steps": int(steps),
        "schedule": config.schedule,
        "train_seconds": round(time.perf_counter() - t0, 3),  # evaluation included
        "selection": sel.to_dict(),
        "apply_decisions": config.apply_decisions,
    }


def _trial_steps(n_full: int, n_kept: int, recipe: Recipe, schedule: str) -> int:
    """Optimizer steps of a trial: the full data's (`n_full` examples in play: less the
    validation split and the drops) for schedule "steps" (Data Diet), else the kept rows'."""
    full_steps = -(-n_full // recipe.batch_size) * recipe.epochs
    return full_steps if schedule == "steps" else -(-n_kept // recipe.batch_size) * recipe.epochs


def _evaluate(ctx: _Context, model: torch.nn.Module) -> dict[str, Any]:
    """A trained trial model's accuracy and packed per-example correctness on the test split
    and the validation split, and its test accuracy per class (None for an absent class)."""
    probs = predict(model, ctx.x_test, device=ctx.spec.device).probs
    test_labels = ctx.test_labels
    correct = probs.argmax(1) == test_labels  # (M_test,)
    per_class = [
        float(correct[test_labels == c].mean()) if (test_labels == c).any() else None
        for c in range(ctx.spec.n_classes)
    ]
    val_correct = np.zeros(0, dtype=bool)
    if ctx.val_rows.shape[0]:
        x_val = ctx.x[torch.from_numpy(ctx.val_rows)]
        val_probs = predict(model, x_val, device=ctx.spec.device).probs
        val_correct = val_probs.argmax(1) == ctx.val_labels  # (V,)
    return {
        "accuracy": float(correct.mean()),
        "val_accuracy": float(val_correct.mean()) if val_correct.shape[0] else float("nan"),
        "test_correct": pack_correct(correct),
        "n_test": int(correct.shape[0]),
        "val_correct": pack_correct(val_correct),
        "n_val": int(val_correct.shape[0]),
        "validation": {"fraction": VALIDATION_FRACTION, "seed": VALIDATION_SEED},
        "per_class_accuracy": per_class,
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
    blocker = retrain_blocker(view.config)
    if blocker:
        raise InputError(blocker)
    rd = store.RunDir(run)
    run_key = view.config["key"]
    folder = rd.sweep(config.key(run_key))
    trials = trials_of(config)
    lock = store.RunLock(folder.path)
    while not lock.acquire():  # another job computes this very sweep: wait for it
        time.sleep(1.0)
    try:
        status = store.read_status(folder.path)
        if status and status["state"] == "done" and folder.trials_file.exists():
            if not folder.summary_file.exists():  # e.g. removed by hand: cheap to redo
                _write_summary(folder)
            return folder.trials_file
        store.write_json(
            folder.record_file, {"run": str(run), "run_key": run_key, **config.to_dict()}
        )
        progress = Progress(folder.path, float(len(trials)), show_progress)
        files = [rd.trial_file(trial_key(run_key, sel, config)) for sel in trials]
        try:
            _run_trials(view, config, folder, trials, files, progress, executor)
            store.write_status(folder.path, "done", progress=1.0, message="done")
        except BaseException as err:
            state = "cancelled" if isinstance(err, Cancelled) else "failed"
            message = str(err) if isinstance(err, InputError) else f"{type(err).__name__}: {err}"
            store.write_status(folder.path, state, progress=progress.fraction, message=message)
            raise
        finally:
            progress.close()
        return folder.trials_file
    finally:
        lock.release()


def _run_trials(
    view: RunView,
    config: SweepConfig,
    folder: store.SweepDir,
    trials: list[SelectionConfig],
    files: list[Path],
    progress: Progress,
    executor: Executor | None,
) -> None:
    """Reuse the cached trials, run the others through `executor`, then write the summary.

    `trials.parquet` is rewritten after every new trial, so the app draws the curve as it fills.
    """
    progress.stage("reading the run")
    ctx = _context(view, config, progress)
    ctx.spec.set_threads()
    records: list[dict[str, Any] | None] = [None] * len(trials)
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
        store.write_parquet(folder.trials_file, trials_frame(done, view.label_names))

    if not todo:
        store.write_parquet(folder.trials_file, trials_frame(records, view.label_names))
    else:
        work = functools.partial(_run_trial, ctx, config)
        (executor or LocalExecutor()).map(work, [trials[i] for i in todo], progress, save_trial)
    progress.stage("confidence intervals")
    _write_summary(folder)


def _write_summary(folder: store.SweepDir) -> None:
    """`summary.parquet` beside the trials: `sweeps.sweep_summary` of the sweep's trials."""
    store.write_parquet(folder.summary_file, sweep_summary(pd.read_parquet(folder.trials_file)))
