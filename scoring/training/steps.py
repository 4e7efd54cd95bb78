"""The training steps of a scoring run, public so the pipeline reads as them and tests (and
retraining) can call one: prepare (validate, load, inject noise, resolve the recipe), record
the setup, model inputs, the R recorded runs (one run each), cross-fitting.

`scoring.training.results` holds the steps after training (score, write, summarize) and
`scoring.training.pipeline` runs them all in order; every file they write is named by
`store.RunDir`.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scoring import data, store
from scoring.config import SCORING_VERSION, ScoreConfig
from scoring.data.decode import display_pixels
from scoring.data.noise import inject_noise
from scoring.errors import InputError
from scoring.machine import cpu_threads
from scoring.scores import REGISTRY, resolve
from scoring.scores.registry import available
from scoring.training import grad_arrays
from scoring.training.checkpoints import Snapshots, save_states
from scoring.training.embed import check_encoder, embed_texts, embedding_key
from scoring.training.executors import Executor, LocalExecutor, Report, spreads
from scoring.training.image_encoders import (
    check_image_encoder,
    embed_images,
    embed_images_spread,
    image_embedding_key,
    load_image_model,
)
from scoring.training.loop import fit, predict, seed_everything
from scoring.training.models import (
    ENCODER_RECIPES,
    SINGLE_THREAD_RECIPES,
    Recipe,
    auto_recipe,
    build_model,
    pick_device,
    resolve_recipe,
)
from scoring.training.pixels import Inputs, to_inputs
from scoring.training.progress import Progress
from scoring.training.text_models import tokenize
from scoring.training.tfidf import tfidf_features, tfidf_key

# Scores computed from cross-fit (out-of-fold) probabilities, in registry order.
CV_SCORES = tuple(key for key, s in REGISTRY.items() if "oof_probs" in s.needs)
DEFAULT_MAX_LENGTH = 128  # tokens per text example (a pair counts both parts)
FOLD_SEED_OFFSET = 10_000  # fold seeds sit far from run seeds: no fold repeats a run's init


@dataclass(frozen=True)
class ModelSpec:
    """How a run's models are built and trained: all that retraining needs besides data.

    Attributes
    ----------
    recipe : Recipe
    n_classes : int
    encoder : str or None
        The text encoder of `probe` / `finetune` (`TrainConfig.model`).
    device : torch.device
    """

    recipe: Recipe
    n_classes: int
    encoder: str | None
    device: torch.device

    def new_model(self, x: Inputs) -> torch.nn.Module:
        """A fresh model of the recipe for inputs like `x` (seed torch first)."""
        return build_model(
            self.recipe.name, tuple(x.shape[1:]), self.n_classes, encoder=self.encoder
        )

    @property
    def augment(self) -> bool:
        # Flips suit natural images; digits (and text embeddings) are not flip-invariant.
        return self.recipe.name in ("cnn32", "resnet18")

    def set_threads(self) -> None:
        """One thread for tiny recipes, every core for the rest (CPU only)."""
        if self.device.type == "cpu":
            small = self.recipe.name in SINGLE_THREAD_RECIPES
            torch.set_num_threads(1 if small else cpu_threads())


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
    # A run of several model families (`training.families`): each family's own run, whose
    # recorded runs and folds this run reads side by side; () for a run of one recipe.
    families: tuple[Prepared, ...] = ()

    @property
    def run_dir(self) -> store.RunDir:
        return store.RunDir(self.path)

    @property
    def spec(self) -> ModelSpec:
        n_classes = len(self.dataset.label_names)
        return ModelSpec(self.recipe, n_classes, self.config.train.model, self.device)

    @property
    def needs_cv(self) -> bool:
        return bool(set(self.score_keys) & set(CV_SCORES))

    @property
    def n_runs(self) -> int:
        """Recorded runs in the folder: R, or F * R for F families (family f's run r is
        run f * R + r)."""
        return self.config.train.runs * max(1, len(self.families))

    @property
    def n_folds(self) -> int:
        """Cross-fit folds in the folder: K, or F * K for F families (fold f * K + k)."""
        return self.config.cv_folds * max(1, len(self.families))

    @property
    def epochs_per_run(self) -> int:
        return self.recipe.epochs + self.grad_plan.passes  # a gradient pass counts as an epoch

    @property
    def total_epochs(self) -> int:
        """The run's whole work in epochs: R runs, then K cross-fit folds when needed."""
        folds = self.config.cv_folds * self.recipe.epochs if self.needs_cv else 0
        return self.config.train.runs * self.epochs_per_run + folds


# -- step 1: prepare ----------------------------------------------------------------------


def prepare(
    config: ScoreConfig, cache_dir: Path | str, *, like: Prepared | None = None
) -> Prepared:
    """Validate everything that can be validated before any training starts.

    Checks the config's own values (`ScoreConfig.validate`), loads (and decodes) the data,
    injects the asked-for noise, resolves the recipe and the gradient arrays, and checks
    what depends on the data (the number of prototypes, the text model and its token limit);
    writes nothing, so bad input never leaves a run folder behind. `like`: a Prepared of the
    same data and noise (another family of a run of several, `training.families`), whose
    loaded data is taken instead of loading it again.
    """
    config.validate()
    score_keys = _score_keys(config)
    device = pick_device(config.train.device)
    if like is not None:
        ds, labels, noisy = like.dataset, like.labels, like.noisy
    else:
        ds, labels, noisy = _load(config, cache_dir)
    name = config.train.recipe
    if name == "auto":
        name = auto_recipe(ds.modality, _input_shape(ds), config.train.model)
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
    cv_keys = [k for k in CV_SCORES if k in score_keys]  # (not those of absent annotators)
    if cv_keys:
        counts = np.bincount(labels, minlength=len(ds.label_names))
        if counts.min() < config.cv_folds:
            rare = ds.label_names[int(counts.argmin())]
            raise InputError(
                f"{', '.join(cv_keys)} use {config.cv_folds}-fold cross-fitting, but class "
                f"{rare!r} has only {counts.min()} training examples; lower --cv-folds, raise "
                f"--limit, or leave out {','.join(cv_keys)}"
            )
    if config.prototypes is not None and config.prototypes > len(labels):
        raise InputError(
            f"--prototypes must be between 1 and the number of training examples "
            f"({len(labels)}), got {config.prototypes}"
        )
    if ds.modality == "image" and recipe.name == "probe":  # config and processor, no weights
        check_image_encoder(config.train.model)
    elif recipe.name in ENCODER_RECIPES:  # the model's config and tokenizer only, no weights
        check_encoder(config.train.model, config.train.max_length or DEFAULT_MAX_LENGTH)
    needed = {name for key in score_keys for name in REGISTRY[key].needs}
    grad_plan = grad_arrays.plan(needed, config.grads, recipe, n_train=len(labels))
    path = store.run_dir(cache_dir, ds.fingerprint, config.key())
    return Prepared(config, ds, recipe, labels, noisy, score_keys, device, path, grad_plan)


def _load(
    config: ScoreConfig, cache_dir: Path | str
) -> tuple[data.Dataset, np.ndarray, np.ndarray | None]:
    """The data, its training labels (N,) with the asked-for noise, and the noise mask (N,)."""
    ds = data.load(config.data, hf_cache_dir=str(store.hf_cache_dir(cache_dir)))
    if config.noise.fraction == 0:
        return ds, ds.train.labels, None
    labels, noisy = inject_noise(
        ds.train.labels,
        config.noise.fraction,
        config.noise.seed,
        config.noise.kind,
        label_names=ds.label_names,
        inputs=ds.train.inputs,
    )
    return ds, labels, noisy


def _score_keys(config: ScoreConfig) -> list[str]:
    """The requested scores the run can compute: those of several annotators only when the
    data has them ("all" leaves them out; asking for one by name without them is refused)."""
    keys = resolve(config.scores)
    voted = config.data.annotator_cols is not None or config.data.annotations is not None
    kept = available(keys, voted)
    lacking = [k for k in keys if k not in kept]
    if lacking and "all" not in config.scores:
        raise InputError(
            f"{', '.join(lacking)} need several annotators per example: pass --annotator-cols "
            "a,b,c (one column per annotator) or --annotations FILE, or leave them out of "
            "--scores"
        )
    return kept


def _input_shape(ds: data.Dataset) -> tuple[int, ...]:
    if ds.modality == "image":
        return tuple(ds.train.inputs.shape[1:])
    return (0,)  # text: the probe's width is known once the encoder has run


def record_setup(prep: Prepared) -> None:
    """Write the run's `config.json` and `split.npz`: what it is, before any work."""
    rd, ds = prep.run_dir, prep.dataset
    try:  # a resumed or repaired run keeps its intact record (its creation time and revision)
        kept = rd.read_config().get("key") == prep.config.key()
    except store.DamagedRun:
        kept = False
    if not kept:
        store.write_json(rd.config_file, config_record(prep))
    rd.write_split(
        store.RunSplit(
            train_ids=ds.train.ids,
            test_ids=ds.test.ids,
            labels=prep.labels,
            true_labels=ds.train.labels,
            test_labels=ds.test.labels,
        )
    )
    if ds.annotators is not None:  # the votes, for the scores, the cards and the export
        rd.write_votes(store.RunVotes(np.asarray(ds.annotators), ds.train.votes, ds.test.votes))


def dataset_record(ds: data.Dataset) -> dict[str, Any]:
    """config.json's `dataset` block: what the data turned out to be (pipeline and recorder)."""
    return {
        "description": ds.description,
        "fingerprint": ds.fingerprint,
        "modality": ds.modality,
        "label_names": list(ds.label_names),
        "input_cols": list(ds.input_cols),
        "label_col": ds.label_col,
        "n_train": int(len(ds.train.labels)),
        "n_test": int(len(ds.test.labels)),
        "test_origin": ds.test_origin,
        **({"annotators": list(ds.annotators)} if ds.annotators is not None else {}),
    }


def config_record(prep: Prepared) -> dict[str, Any]:
    """`config.json`: the config, the resolved recipe and what the data turned out to be."""
    return {
        "scoring_version": SCORING_VERSION,
        "key": prep.config.key(),
        "config": prep.config.to_dict(),
        "recipe": _recipe_record(prep),
        "dataset": dataset_record(prep.dataset),
        "score_keys": prep.score_keys,
        "device": str(prep.device),
        "git_revision": _git_revision(),
        "created": time.time(),
    }


def _recipe_record(prep: Prepared) -> dict[str, Any]:
    """config.json's `recipe`: the resolved recipe; for several families their names joined
    (what lists show), the epochs they share (if they do) and each family's own recipe."""
    if not prep.families:
        return dataclasses.asdict(prep.recipe)
    epochs = {m.recipe.epochs for m in prep.families}
    return {
        "name": prep.config.train.recipe,
        **({"epochs": epochs.pop()} if len(epochs) == 1 else {}),
        "families": [
            {**dataclasses.asdict(m.recipe), "run_key": m.config.key()} for m in prep.families
        ],
    }


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


# -- step 2: model inputs -----------------------------------------------------------------


def tensor_inputs(
    prep: Prepared, progress: Progress, executor: Executor | None = None
) -> tuple[Inputs, Inputs]:
    """Model inputs for train and test: images as uint8 `Pixels` (float32 per batch), or
    (image `probe`) as a pretrained image encoder's cached embeddings; text as cached
    embeddings (probe), TF-IDF's cached SVD components (tfidf) or token tensors (finetune).
    Embeddings are computed once per dataset and encoder setting; with a Ray `executor`,
    as tasks over batches (the same bytes as here).

    Returns
    -------
    x : Pixels or Tensor of shape (n_examples, ...)
        (N, C, H, W) uint8 `Pixels` (the models take value / divisor, float32), (N, D)
        float32 embeddings or (N, 3, L) int64 tokens.
    x_test : like `x`, of shape (n_test, ...)
    """
    ds = prep.dataset
    if ds.modality == "image" and prep.recipe.name == "probe":
        return image_probe_inputs(prep, progress, executor)
    if ds.modality == "image":  # shared with the dataset: no copy
        divisor = ds.pixel_divisor
        return to_inputs(ds.train.inputs, divisor), to_inputs(ds.test.inputs, divisor)
    if prep.recipe.name == "tfidf":
        return tfidf_inputs(prep, progress)
    model = prep.config.train.model
    max_length = prep.config.train.max_length or DEFAULT_MAX_LENGTH
    if prep.recipe.name == "finetune":
        progress.stage("tokenizing")
        return tuple(  # (N, 3, L) int64: ids, attention mask, token types
            torch.from_numpy(tokenize(split.inputs, model=model, max_length=max_length))
            for split in (ds.train, ds.test)
        )
    long_text = prep.config.train.long_text
    emb_path = prep.run_dir.embeddings_file(embedding_key(model, max_length, long_text))
    if emb_path.exists():
        arrays = store.load_arrays(emb_path)
    else:
        if prep.device.type == "cpu":
            torch.set_num_threads(cpu_threads())  # a transformer forward uses every core
        n = len(ds.train.labels) + len(ds.test.labels)
        bar, tick = progress.counter("embedding text", n, "sentence")
        kw = dict(model=model, max_length=max_length, device=prep.device, on_batch=tick)
        kw.update(long_text=long_text, executor=executor if spreads(executor) else None)
        arrays = {
            "train": embed_texts(ds.train.inputs, **kw),
            "test": embed_texts(ds.test.inputs, **kw),
        }
        bar.close()
        store.save_arrays(emb_path, **arrays)
    return torch.from_numpy(arrays["train"]), torch.from_numpy(arrays["test"])


def image_probe_inputs(
    prep: Prepared, progress: Progress | None = None, executor: Executor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A pretrained image encoder's pooled embeddings, train (N, D) and test (M, D), float32.

    Computed once per dataset and encoder (`image_encoders.image_embedding_key`), batched
    on the run's device (or as Ray tasks with `--executor ray`), and stored in the
    dataset's embeddings folder beside text ones.
    """
    ds, model = prep.dataset, prep.config.train.model
    emb_path = prep.run_dir.embeddings_file(image_embedding_key(model))
    if emb_path.exists():
        arrays = store.load_arrays(emb_path)
        return torch.from_numpy(arrays["train"]), torch.from_numpy(arrays["test"])
    if prep.device.type == "cpu":
        torch.set_num_threads(cpu_threads())  # an encoder forward uses every core
    n = len(ds.train.labels) + len(ds.test.labels)
    bar, tick = progress.counter("embedding images", n, "image") if progress else (None, None)
    if spreads(executor):  # Ray tasks over whole batches: the same table, byte for byte
        kw = dict(model=model, device=prep.device, on_batch=tick, executor=executor)
        embed = embed_images_spread
    else:
        loaded = load_image_model(model)
        kw = dict(model=model, device=prep.device, on_batch=tick, loaded=loaded)
        embed = embed_images
    arrays = {
        "train": embed(display_pixels(ds.train.inputs, ds.pixel_divisor), **kw),
        "test": embed(display_pixels(ds.test.inputs, ds.pixel_divisor), **kw),
    }
    if bar is not None:
        bar.close()
    store.save_arrays(emb_path, **arrays)
    return torch.from_numpy(arrays["train"]), torch.from_numpy(arrays["test"])


def tfidf_inputs(
    prep: Prepared, progress: Progress | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The `tfidf` recipe's inputs, train (N, D) and test (M, D), float32
    (`scoring.training.tfidf`): fitted on the training rows, computed once per dataset and
    stored in its embeddings folder beside the encoders' tables."""
    ds = prep.dataset
    path = prep.run_dir.embeddings_file(tfidf_key())
    if path.exists():
        arrays = store.load_arrays(path)
    else:
        if progress is not None:
            progress.stage("TF-IDF features")
        arrays = tfidf_features(ds.train.inputs, ds.test.inputs)
        store.save_arrays(path, **arrays)
    return torch.from_numpy(arrays["train"]), torch.from_numpy(arrays["test"])


# -- step 3: the recorded runs -------------------------------------------------------------


def train_runs(
    prep: Prepared,
    x: Inputs,
    x_test: Inputs,
    progress: Progress,
    executor: Executor | None = None,
) -> list[dict[str, np.ndarray]]:
    """The R recorded runs: those on disk are read back, the others trained and saved.

    Each run is saved the moment it ends (so a killed job resumes run by run); the missing
    ones go through `executor` (default: here, one after another).

    Returns
    -------
    list of length n_runs of dict
        What stays in memory of each run: its scalars and final probabilities (`light_run`).
    """
    rd, n_runs = prep.run_dir, prep.config.train.runs
    prep.spec.set_threads()
    runs: list[dict[str, np.ndarray] | None] = [None] * n_runs
    todo = []
    for r in range(n_runs):
        if rd.run_file(r).exists():
            runs[r] = light_run(rd.read_run(r))
            progress.advance(prep.epochs_per_run)
        else:
            todo.append(r)

    def save_run(i: int, result: tuple[dict, dict[str, np.ndarray]]) -> None:
        r, (states, arrays) = todo[i], result
        if states:  # before the run's .npz, whose presence marks the run complete
            save_states(rd.states_file(r), states)
        store.save_arrays(rd.run_file(r), **compact(arrays))
        runs[r] = light_run(arrays)

    if todo:
        progress.stage(f"runs {', '.join(str(r + 1) for r in todo)} of {n_runs}")
        work = functools.partial(train_one_run, prep, x, x_test)
        (executor or LocalExecutor()).map(work, todo, progress, save_run)
    return runs  # type: ignore[return-value]  (every slot is filled by now)


def train_one_run(
    prep: Prepared, x: Inputs, x_test: Inputs, r: int, progress: Report
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, np.ndarray]]:
    """Run r: train from seed base_seed + r, record dynamics, then an eval pass.

    Returns the weight snapshots the gradient scores used (empty without them) and the run's
    recorded arrays; the caller writes both. Runs in a Ray task with `--executor ray`.
    """
    spec = prep.spec
    spec.set_threads()  # again: a Ray worker is a fresh process
    progress.stage(f"run {r + 1}/{prep.config.train.runs}")
    gen = seed_everything(prep.config.train.base_seed + r)
    model = spec.new_model(x)
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
        augment=spec.augment,
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
            fresh = spec.new_model(x)
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


# Per-run recordings kept in float16 on disk: values whose rounding (relative 5e-4) cannot
# move a score that matters (tests/training/test_pipeline.py checks ranks and noise AUROC).
# Losses stay float32 (an easy example's loss of 1e-6 would flush to zero), and so do the
# final probabilities (the predictions the pages show beside each label).
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


def light_run(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What stays in memory of a run while the others train: scalars and final probs (the
    held-out ones too: they score the held-out rows, `results.heldout_frame`)."""
    keep = ("test_accuracy", "train_seconds", "grad_seconds", "probs_final", "test_probs")
    return {k: arrays[k] for k in keep if k in arrays}


# -- step 4: cross-fitting ------------------------------------------------------------------


def cross_fit(prep: Prepared, x: Inputs, progress: Progress) -> np.ndarray:
    """Out-of-fold probabilities from K stratified folds; each fold is saved as it ends.

    Returns
    -------
    ndarray of shape (n_examples, n_classes), float32
        Row i: the probabilities of a model that never trained on example i.
    """
    rd, folds = prep.run_dir, prep.config.cv_folds
    fold = fold_assignment(prep.labels, folds, prep.config.train.base_seed)
    oof = np.zeros((len(prep.labels), len(prep.dataset.label_names)), dtype=np.float32)
    for f in range(folds):
        if rd.fold_file(f).exists():
            got = rd.read_fold(f)
            progress.advance(prep.recipe.epochs)
        else:
            progress.stage(f"cross-fit fold {f + 1}/{folds}")
            got = cross_fit_fold(prep, f, fold, x, progress)
            store.save_arrays(rd.fold_file(f), **got)
        oof[got["index"]] = got["probs"]
    return oof


def fold_assignment(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold index per example, shape (N,), from a seeded shuffle per class."""
    rng = np.random.default_rng(seed)
    fold = np.empty(labels.shape[0], dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        fold[rng.permutation(idx)] = np.arange(idx.shape[0]) % folds
    return fold


def cross_fit_fold(
    prep: Prepared, f: int, fold: np.ndarray, x: Inputs, progress: Report
) -> dict[str, np.ndarray]:
    """Train on every fold but f (no recording) and predict fold f: `index`, `probs`."""
    spec = prep.spec
    train_idx, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
    gen = seed_everything(prep.config.train.base_seed + FOLD_SEED_OFFSET + f)
    model = spec.new_model(x)
    fit(
        model,
        x[torch.from_numpy(train_idx)],
        torch.from_numpy(prep.labels[train_idx]),
        prep.recipe,
        gen=gen,
        device=prep.device,
        record=False,
        augment=spec.augment,
        on_step=progress.advance,
    )
    out = predict(model, x[torch.from_numpy(held)], device=prep.device)
    return {"index": held, "probs": out.probs}
