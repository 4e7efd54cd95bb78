"""A scoring run from config to a complete cache entry.

prepare (load + validate data, inject noise, resolve the recipe) -> R recorded runs ->
K cross-fit folds (only when a cleanlab score is asked for) -> scores -> summary. Each run
and fold is saved as soon as it finishes, so a killed job resumes where it stopped; the run
is marked done only after every file is written.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from scoring import data, store
from scoring.config import SCORING_VERSION, ScoreConfig
from scoring.data.noise import inject_noise, noise_detection
from scoring.errors import Cancelled, InputError
from scoring.scores import REGISTRY, ScoreResult, compute, resolve
from scoring.training import grad_arrays
from scoring.training.checkpoints import Snapshots, save_states
from scoring.training.embed import embed_texts, embedding_key
from scoring.training.executors import Executor, LocalExecutor, Report
from scoring.training.loop import fit, predict, seed_everything
from scoring.training.models import (
    SINGLE_THREAD_RECIPES,
    Recipe,
    auto_recipe,
    build_model,
    pick_device,
    resolve_recipe,
)
from scoring.training.text_models import tokenize

CV_SCORES = {"cl_quality", "cl_issue"}  # need out-of-fold probabilities
DEFAULT_MAX_LENGTH = 128  # tokens per text example (a pair counts both parts)


@dataclass
class Prepared:
    """Everything a run needs, resolved once."""

    config: ScoreConfig
    dataset: data.Dataset
    recipe: Recipe
    labels: np.ndarray  # (N,) labels trained on (noised when noise was asked for)
    noisy: np.ndarray | None  # (N,) bool
    score_keys: list[str]
    device: torch.device
    path: Path
    grad_plan: grad_arrays.GradPlan  # gradient arrays each run records (none for most scores)


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def prepare(config: ScoreConfig, cache_dir: Path) -> Prepared:
    """Validate everything that can be validated before any training starts."""
    if config.train.runs < 1:
        raise InputError(f"--runs must be at least 1, got {config.train.runs}")
    if config.train.max_length is not None and config.train.max_length < 8:
        raise InputError(f"--max-length must be at least 8 tokens, got {config.train.max_length}")
    if config.cv_folds < 2:
        raise InputError(f"--cv-folds must be at least 2, got {config.cv_folds}")
    if not 0 <= config.noise.fraction < 1:
        raise InputError(f"--noise must be a fraction in [0, 1), got {config.noise.fraction}")
    score_keys = resolve(config.scores)
    device = pick_device(config.train.device)
    ds = data.load(config.data, hf_cache_dir=str(Path(cache_dir) / "_hf"))
    labels, noisy = ds.train.labels, None
    if config.noise.fraction > 0:
        labels, noisy = inject_noise(labels, config.noise.fraction, config.noise.seed)
    input_shape = _input_shape(ds)
    name = config.train.recipe
    if name == "auto":
        name = auto_recipe(ds.modality, input_shape)
    t = config.train
    recipe = resolve_recipe(
        name,
        modality=ds.modality,
        epochs=t.epochs,
        batch_size=t.batch_size,
        lr=t.lr,
        weight_decay=t.weight_decay,
        early_epoch=t.early_epoch,
    )
    if set(score_keys) & CV_SCORES:
        counts = np.bincount(labels, minlength=len(ds.label_names))
        if counts.min() < config.cv_folds:
            rare = ds.label_names[int(counts.argmin())]
            raise InputError(
                f"cleanlab scores use {config.cv_folds}-fold cross-fitting, but class {rare!r} "
                f"has only {counts.min()} training examples; lower --cv-folds, raise --limit, "
                "or leave out cl_quality,cl_issue"
            )
    needed = {name for key in score_keys for name in REGISTRY[key].needs}
    grad_plan = grad_arrays.plan(needed, config.grads, recipe, n_train=len(labels))
    path = store.run_dir(cache_dir, ds.fingerprint, config.key())
    return Prepared(config, ds, recipe, labels, noisy, score_keys, device, path, grad_plan)


def _input_shape(ds: data.Dataset) -> tuple[int, ...]:
    if ds.modality == "image":
        return tuple(ds.train.inputs.shape[1:])
    return (0,)  # text: the probe's width is known once the encoder has run


class Progress:
    """A tqdm bar on stderr plus `status.json` updates (at most every half second).

    Overall progress counts training epochs (runs and cross-fit folds) and passes of the
    gradient scores over the training set, one epoch each; a preparatory stage
    such as text embedding gets its own bar and reports its count in the status message.
    """

    def __init__(self, path: Path, total: float, enabled: bool) -> None:
        self.path, self.total, self.done, self.enabled = path, total, 0.0, enabled
        self.bar = None
        self._last = 0.0
        self.message = ""

    def stage(self, message: str) -> None:
        self.message = message
        if self.bar is None:
            self.bar = tqdm(
                total=self.total,
                disable=not self.enabled,
                unit="epoch",
                dynamic_ncols=True,
                bar_format=_BAR,
            )
            self.bar.update(self.done)
        self.bar.set_description(message)
        self._write(force=True)

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount
        if self.bar is not None:
            self.bar.update(amount)
        self._write()

    def counter(self, message: str, total: int, unit: str):
        """A side bar for a stage measured in its own units (e.g. sentences embedded)."""
        bar = tqdm(
            total=total, disable=not self.enabled, unit=unit, desc=message, dynamic_ncols=True
        )

        def tick(n: int) -> None:
            bar.update(n)
            self.message = f"{message}: {bar.n}/{total} {unit}s"
            self._write(force=bar.n >= total)

        return bar, tick

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last > 0.5:
            self._last = now
            frac = min(self.done / max(self.total, 1e-9), 0.999)
            store.write_status(self.path, "running", progress=frac, message=self.message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


_BAR = "{desc}{percentage:3.0f}%|{bar}| {n:.1f}/{total:.0f} epochs [{elapsed}<{remaining}]"


def tensor_inputs(
    prep: Prepared, progress: Progress, cache_dir: Path
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model inputs: images as is; text as cached embeddings (probe) or token tensors."""
    ds = prep.dataset
    if ds.modality == "image":
        return torch.from_numpy(ds.train.inputs), torch.from_numpy(ds.test.inputs)
    model = prep.config.train.model
    max_length = prep.config.train.max_length or DEFAULT_MAX_LENGTH
    if prep.recipe.name == "finetune":
        progress.stage("tokenizing")
        return tuple(  # (N, 3, L) int64: ids, attention mask, token types
            torch.from_numpy(tokenize(split.inputs, model=model, max_length=max_length))
            for split in (ds.train, ds.test)
        )
    emb_path = (
        Path(cache_dir) / ds.fingerprint / "embeddings" / f"{embedding_key(model, max_length)}.npz"
    )
    if emb_path.exists():
        arrays = store.load_arrays(emb_path)
    else:
        if prep.device.type == "cpu":
            torch.set_num_threads(_cpu_threads())  # a transformer forward uses every core
        n = len(ds.train.labels) + len(ds.test.labels)
        bar, tick = progress.counter("embedding text", n, "sentence")
        kw = dict(model=model, max_length=max_length, device=prep.device, on_batch=tick)
        arrays = {
            "train": embed_texts(ds.train.inputs, **kw),
            "test": embed_texts(ds.test.inputs, **kw),
        }
        bar.close()
        store.save_arrays(emb_path, **arrays)
    return torch.from_numpy(arrays["train"]), torch.from_numpy(arrays["test"])


def new_model(prep: Prepared, x: torch.Tensor) -> torch.nn.Module:
    """A fresh model of the run's recipe for inputs like `x` (seed torch first)."""
    k = len(prep.dataset.label_names)
    return build_model(prep.recipe.name, tuple(x.shape[1:]), k, encoder=prep.config.train.model)


def _train_one_run(
    prep: Prepared, x: torch.Tensor, x_test: torch.Tensor, r: int, progress: Report
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, np.ndarray]]:
    """Run r: train from seed base_seed + r, record dynamics, then an eval pass.

    Returns the weight snapshots the gradient scores used (empty without them) and the run's
    recorded arrays; the caller writes both. Runs in a Ray task with `--executor ray`.
    """
    set_train_threads(prep)  # again: a Ray worker is a fresh process
    progress.stage(f"run {r + 1}/{prep.config.train.runs}")
    gen = seed_everything(prep.config.train.base_seed + r)
    model = new_model(prep, x)
    labels = torch.from_numpy(prep.labels)
    snaps = Snapshots(model, prep.grad_plan.snapshot_steps)
    t0 = time.perf_counter()
    dyn = fit(
        model,
        x,
        labels,
        prep.recipe,
        gen=gen,
        device=prep.device,
        augment=augments(prep),
        on_step=progress.advance,
        on_update=snaps if prep.grad_plan.arrays else None,
    )
    train_seconds = time.perf_counter() - t0
    train_out = predict(model, x, device=prep.device)
    test_out = predict(model, x_test, device=prep.device)
    test_acc = float((test_out.probs.argmax(1) == prep.dataset.test.labels).mean())
    grads: dict[str, np.ndarray] = {}
    grad_seconds = 0.0
    if prep.grad_plan.arrays:
        progress.stage(f"run {r + 1}/{prep.config.train.runs}: gradient scores")

        def build(state: dict[str, torch.Tensor]) -> torch.nn.Module:
            fresh = new_model(prep, x)
            fresh.load_state_dict(state)
            return fresh

        t0 = time.perf_counter()
        grads = grad_arrays.record(
            prep.grad_plan, snaps, build, x, labels, device=prep.device, on_pass=progress.advance
        )
        grad_seconds = time.perf_counter() - t0
    states = {f"step{s}": state for s, state in snaps.states.items()} if grads else {}
    return states, {
        **grads,
        **dataclasses.asdict(dyn),
        "probs_final": train_out.probs,
        "features": train_out.features,
        "test_probs": test_out.probs,
        "test_accuracy": np.float64(test_acc),
        # Wall seconds of this run's training steps and of its gradient scores.
        "train_seconds": np.float64(train_seconds),
        "grad_seconds": np.float64(grad_seconds),
    }


def _cpu_threads() -> int:
    """Cores this process may use (respects CPU affinity, e.g. in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def set_train_threads(prep: Prepared) -> None:
    """One thread for tiny recipes, every core for the rest (CPU only)."""
    if prep.device.type == "cpu":
        small = prep.recipe.name in SINGLE_THREAD_RECIPES
        torch.set_num_threads(1 if small else _cpu_threads())


def augments(prep: Prepared) -> bool:
    # Flips suit natural images; digits (and text embeddings) are not flip-invariant.
    return prep.recipe.name in ("cnn32", "resnet18")


def _fold_assignment(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold index per example, shape (N,), from a seeded shuffle per class."""
    rng = np.random.default_rng(seed)
    fold = np.empty(labels.shape[0], dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        fold[rng.permutation(idx)] = np.arange(idx.shape[0]) % folds
    return fold


def _cross_fit_fold(
    prep: Prepared, f: int, fold: np.ndarray, x: torch.Tensor, progress: Progress
) -> dict[str, np.ndarray]:
    """Train on every fold but f (no recording) and predict fold f."""
    train_idx, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
    # Fold seeds sit far from run seeds so a fold model never repeats a scoring run's init.
    gen = seed_everything(prep.config.train.base_seed + 10_000 + f)
    model = new_model(prep, x)
    fit(
        model,
        x[torch.from_numpy(train_idx)],
        torch.from_numpy(prep.labels[train_idx]),
        prep.recipe,
        gen=gen,
        device=prep.device,
        record=False,
        augment=augments(prep),
        on_step=progress.advance,
    )
    out = predict(model, x[torch.from_numpy(held)], device=prep.device)
    return {"index": held, "probs": out.probs}


def _config_record(prep: Prepared) -> dict[str, Any]:
    ds = prep.dataset
    return {
        "scoring_version": SCORING_VERSION,
        "key": prep.config.key(),
        "config": prep.config.to_dict(),
        "recipe": dataclasses.asdict(prep.recipe),
        "dataset": {
            "description": ds.description,
            "fingerprint": ds.fingerprint,
            "modality": ds.modality,
            "label_names": list(ds.label_names),
            "input_cols": list(ds.input_cols),
            "label_col": ds.label_col,
            "n_train": int(len(ds.train.labels)),
            "n_test": int(len(ds.test.labels)),
            "test_origin": ds.test_origin,
        },
        "score_keys": prep.score_keys,
        "device": str(prep.device),
        "git_revision": _git_revision(),
        "created": time.time(),
    }


# Per-run recordings kept in float16 on disk: values whose rounding (relative 5e-4) cannot
# move a score that matters (tests/test_pipeline.py checks ranks and noise AUROC). Losses
# stay float32 (an easy example's loss of 1e-6 would flush to zero), and so do the final
# probabilities (PVI takes their log).
COMPACT = ("logit_given", "logit_other", "prob_given", "probs_early", "features")
_F16_MAX = float(np.finfo(np.float16).max)


def compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A run's arrays as stored: the COMPACT ones in float16 when they fit its range."""
    out = dict(arrays)
    for name in COMPACT:
        a = arrays.get(name)
        if a is not None and a.dtype == np.float32 and np.abs(a).max() < _F16_MAX:
            out[name] = a.astype(np.float16)
    return out


def _light(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What stays in memory of a run while the others train: scalars and final probs."""
    keep = ("test_accuracy", "train_seconds", "grad_seconds", "probs_final")
    return {k: arrays[k] for k in keep if k in arrays}


_RUN_ARRAYS = (
    "loss",
    "logit_given",
    "logit_other",
    "prob_given",
    "correct",
    "probs_early",
    "probs_final",
    "features",
    *grad_arrays.GRAD_ARRAYS,
)


def _shared_arrays(prep: Prepared, oof) -> dict[str, Any]:
    """The arrays every run shares, by the names scores ask for (scores/registry.py)."""
    k = len(prep.dataset.label_names)
    return {
        "labels": prep.labels,
        "label_prior": np.bincount(prep.labels, minlength=k) / prep.labels.shape[0],
        "oof_probs": oof,
        "n_prototypes": prep.config.prototypes or k,
    }


def _compute_scores(prep: Prepared, run_files: list[Path], oof) -> dict[str, ScoreResult]:
    """Every requested score; per-run scores one run at a time, from the stored runs.

    Reading each run back from disk, one at a time, bounds memory by one run's recording
    (not R of them) and makes a fresh and a resumed run score the very same numbers.
    """
    shared = _shared_arrays(prep, oof)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in prep.score_keys if REGISTRY[k].per_run}
    for run_file in run_files:
        run = store.load_arrays(run_file)
        arrays = {**shared, **{n: run[n][None] for n in _RUN_ARRAYS if n in run}}  # R = 1
        for key in rows:
            rows[key].append(compute(key, arrays).per_run[0])
        del run, arrays
    results = {}
    for key in prep.score_keys:
        if key in rows:
            per_run = np.stack(rows.pop(key))  # (R, N)
            results[key] = ScoreResult(key, per_run.mean(axis=0), per_run)
        else:
            results[key] = compute(key, shared)
    return results


def _summarize(prep: Prepared, runs, results, timings: dict[str, float]) -> dict[str, Any]:
    accs = [float(r["test_accuracy"]) for r in runs]
    blocks: dict[str, Any] = {}
    for key, res in results.items():
        block: dict[str, Any] = {
            "higher_is_harder": REGISTRY[key].higher_is_harder,
            "version": REGISTRY[key].version,
        }
        if prep.noisy is not None:
            block.update(noise_detection(res.values, prep.noisy, REGISTRY[key].higher_is_harder))
        if res.per_run is not None and res.per_run.shape[0] > 1:
            rhos = [_spearman(run_vals, res.values) for run_vals in res.per_run]
            block["spearman_single_vs_mean"] = float(np.mean(rhos))
            block["spearman_per_run"] = rhos
        else:
            block["spearman_single_vs_mean"] = None
        blocks[key] = block
    summary: dict[str, Any] = {
        "test_accuracy": accs,
        "test_accuracy_mean": float(np.mean(accs)),
        "test_accuracy_std": float(np.std(accs)),
        "n_train": int(len(prep.labels)),
        "n_classes": len(prep.dataset.label_names),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        # Summed over runs; absent for runs cached before they were recorded.
        "training_s": _run_total(runs, "train_seconds"),
        "gradient_scores_s": _run_total(runs, "grad_seconds"),
        "train_examples_per_s": _train_rate(prep, runs),
        "scores": blocks,
    }
    if prep.noisy is not None:
        summary["noise"] = {
            "fraction": prep.config.noise.fraction,
            "n_noisy": int(prep.noisy.sum()),
        }
    return summary


def _run_total(runs, name: str) -> float | None:
    if not all(name in r for r in runs):
        return None
    return round(float(sum(float(r[name]) for r in runs)), 2)


def _train_rate(prep: Prepared, runs) -> float | None:
    """Examples per second through the training steps (forward + backward + update)."""
    total = _run_total(runs, "train_seconds")
    if not total:
        return None
    return round(len(prep.labels) * prep.recipe.epochs * len(runs) / total, 1)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _score_frames(prep: Prepared, results) -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = prep.dataset
    frame = pd.DataFrame({"id": ds.train.ids, "label": prep.labels})
    if prep.noisy is not None:
        frame["true_label"] = ds.train.labels
        frame["noisy"] = prep.noisy
    per_run = pd.DataFrame({"id": ds.train.ids})
    for key, res in results.items():
        frame[key] = res.values
        if res.per_run is not None:
            for r, vals in enumerate(res.per_run):
                per_run[f"{key}__run{r}"] = vals
    return frame, per_run


def _predictions(prep: Prepared, runs) -> pd.DataFrame:
    """Final-model predictions averaged over runs: what the app shows beside a given label."""
    probs = np.mean([r["probs_final"] for r in runs], axis=0)  # (N, K)
    rows = np.arange(probs.shape[0])
    return pd.DataFrame(
        {
            "id": prep.dataset.train.ids,
            "pred": probs.argmax(1),
            "pred_prob": probs.max(1),
            "given_prob": probs[rows, prep.labels],
        }
    )


def _write_examples(prep: Prepared, path: Path) -> None:
    """What the app renders for each example: images as uint8, texts as strings."""
    inputs = prep.dataset.train.inputs
    if prep.dataset.modality == "image":
        pixels = np.clip(np.rint(inputs * 255), 0, 255).astype(np.uint8)  # (N, C, H, W)
        # A plain .npy (not .npz) so pages can memory-map it and read a handful of rows.
        buf = io.BytesIO()
        np.save(buf, pixels.transpose(0, 2, 3, 1))  # (N, H, W, C)
        store.atomic_write_bytes(path / "examples" / "images.npy", buf.getvalue())
        return
    if inputs and isinstance(inputs[0], tuple):
        cols = {"text": [a for a, _ in inputs], "text_pair": [b for _, b in inputs]}
    else:
        cols = {"text": list(inputs)}
    store.write_parquet(
        path / "examples" / "texts.parquet", pd.DataFrame({"id": prep.dataset.train.ids, **cols})
    )


def execute(
    prep: Prepared,
    cache_dir: Path,
    *,
    show_progress: bool = True,
    executor: Executor | None = None,
) -> Path:
    """Compute (or resume) the run described by `prep`; caller holds the run's lock.

    The R training runs go through `executor` (default: one after another, here).
    """
    path, cfg, recipe = prep.path, prep.config, prep.recipe
    n_runs, folds = cfg.train.runs, cfg.cv_folds
    need_cv = bool(set(prep.score_keys) & CV_SCORES)
    per_run = recipe.epochs + prep.grad_plan.passes  # a gradient pass counts as an epoch
    total = n_runs * per_run + (folds * recipe.epochs if need_cv else 0)
    store.write_json(path / "config.json", _config_record(prep))
    store.save_arrays(
        path / "split.npz",
        train_ids=prep.dataset.train.ids,
        test_ids=prep.dataset.test.ids,
        labels=prep.labels,
        true_labels=prep.dataset.train.labels,
        test_labels=prep.dataset.test.labels,
    )
    progress = Progress(path, total, show_progress)
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        x, x_test = tensor_inputs(prep, progress, cache_dir)
        if prep.device.type == "cuda":  # page-locked: host-to-GPU copies overlap compute
            x, x_test = x.pin_memory(), x_test.pin_memory()
        timings["inputs"] = time.perf_counter() - t0
        set_train_threads(prep)
        runs: list[dict[str, np.ndarray] | None] = [None] * n_runs
        t0 = time.perf_counter()
        todo = []
        for r in range(n_runs):
            run_file = path / "runs" / f"run_{r:03d}.npz"
            if run_file.exists():
                runs[r] = _light(store.load_arrays(run_file))
                progress.advance(per_run)
            else:
                todo.append(r)

        def save_run(i: int, result) -> None:
            r, (states, arrays) = todo[i], result
            if states:  # before the run's .npz, whose presence marks the run complete
                save_states(path / "runs" / f"run_{r:03d}.safetensors", states)
            store.save_arrays(path / "runs" / f"run_{r:03d}.npz", **compact(arrays))
            runs[r] = _light(arrays)

        if todo:
            progress.stage(f"runs {', '.join(str(r + 1) for r in todo)} of {n_runs}")
            work = functools.partial(_train_one_run, prep, x, x_test)
            (executor or LocalExecutor()).map(work, todo, progress, save_run)
        timings["runs"] = time.perf_counter() - t0
        oof = None
        if need_cv:
            t0 = time.perf_counter()
            fold = _fold_assignment(prep.labels, folds, cfg.train.base_seed)
            oof = np.zeros((len(prep.labels), len(prep.dataset.label_names)), dtype=np.float32)
            for f in range(folds):
                fold_file = path / "cv" / f"fold_{f}.npz"
                if fold_file.exists():
                    got = store.load_arrays(fold_file)
                    progress.advance(recipe.epochs)
                else:
                    progress.stage(f"cross-fit fold {f + 1}/{folds}")
                    got = _cross_fit_fold(prep, f, fold, x, progress)
                    store.save_arrays(fold_file, **got)
                oof[got["index"]] = got["probs"]
            timings["cross_fit"] = time.perf_counter() - t0
        progress.stage("scoring")
        t0 = time.perf_counter()
        run_files = [path / "runs" / f"run_{r:03d}.npz" for r in range(n_runs)]
        results = _compute_scores(prep, run_files, oof)
        timings["scores"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        frame, per_run = _score_frames(prep, results)
        store.write_parquet(path / "scores.parquet", frame)
        store.write_parquet(path / "scores_per_run.parquet", per_run)
        store.write_parquet(path / "predictions.parquet", _predictions(prep, runs))
        _write_examples(prep, path)
        timings["write"] = time.perf_counter() - t0
        store.write_json(path / "summary.json", _summarize(prep, runs, results, timings))
        # Last: `done` promises that everything above is on disk.
        store.write_status(path, "done", progress=1.0, message="done")
    except Cancelled:
        store.write_status(
            path,
            "cancelled",
            progress=progress.done / max(total, 1),
            message="cancelled; run the same command to resume",
        )
        raise
    except InputError as err:
        store.write_status(path, "failed", message=str(err))
        raise
    except Exception as err:
        store.write_status(path, "failed", message=f"{type(err).__name__}: {err}")
        raise
    finally:
        progress.close()
    return path


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
    lock = store.RunLock(path)
    while not lock.acquire():
        if on_wait is not None:
            on_wait(store.read_status(path) or {})
        time.sleep(wait_poll_s)
    status = store.read_status(path)
    if status and status["state"] == "done":  # the job we waited for finished it
        lock.release()
        return path
    try:
        return execute(prep, cache_dir, show_progress=show_progress, executor=executor)
    finally:
        lock.release()
