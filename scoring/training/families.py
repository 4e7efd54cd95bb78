"""A run of several model families (`--recipe tfidf,probe`): one suspect list from all of them.

On long texts, averaging two families' out-of-fold probabilities lifts cleanlab and
consensus above either family alone (docs/benchmarks.md, *Text recipes*, `tfidf+probe`).
Such a run is built from member runs:

- each family is scored first as its own ordinary run: the config with that one recipe, so
  the very key, seeds, files and numbers of `--recipe tfidf` alone; it is cached, resumed
  after a kill and repaired like any run, and a later single-recipe run finds it;
- this run's folder then holds family f's recorded run r as run f * R + r and its cross-fit
  fold k as fold f * K + k (hard links where the file system has them,
  `store.link_or_copy`), and the first family's label-free embeddings (`prototype`,
  duplicates, outliers, leakage); a damaged one is dropped and linked again as a resume
  would (`pipeline.drop_damaged`), so once done the folder stands alone;
- the ordinary score registry runs over all F * R runs side by side (dynamics scores average
  over every run of every family; `consensus` sees every run), with `oof_probs` the mean over
  families of each family's out-of-fold probabilities (`cl_*`, `pvi`, `consensus`);
- predictions and the held-out rows' evidence average every run's probabilities; summary.json's
  `test_accuracy_mean` is the accuracy of the averaged held-out probabilities, and
  `families` gives each family's recipe, run key, runs and own mean accuracy.

The run keeps no model inputs (each family's run keeps its own), so it is never retrained
on a kept subset itself: sweep one family's run instead (`prune.sweeps.retrain_blocker`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from scoring import store
from scoring.config import ScoreConfig, recipe_families
from scoring.errors import InputError
from scoring.training import steps
from scoring.training.models import RECIPES
from scoring.training.steps import Prepared


def member_config(config: ScoreConfig, recipe: str) -> ScoreConfig:
    """The config of one family's own run: `config` with that one recipe, all else equal."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, recipe=recipe))


def prepare(config: ScoreConfig, cache_dir: Path | str) -> Prepared:
    """Validate a run of several families before any work, as `steps.prepare` does one run.

    Each name must be a recipe (checked before the data loads) that fits the data (checked
    by each family's own `steps.prepare`, which share one loading of the data).

    Returns
    -------
    Prepared
        This run's: its own config and folder, `families` each family's Prepared, and the
        first family's recipe and data otherwise (its label-free embeddings are this run's).
    """
    config.validate()
    names = recipe_families(config.train.recipe)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise InputError(
            f"--recipe {config.train.recipe!r}: unknown recipe {unknown[0]!r}; expected a comma "
            f"list of 2 or more distinct recipes of {', '.join(RECIPES)}, e.g. tfidf,probe"
        )
    members: list[Prepared] = []
    for name in names:
        like = members[0] if members else None
        members.append(steps.prepare(member_config(config, name), cache_dir, like=like))
    first = members[0]
    path = store.run_dir(cache_dir, first.dataset.fingerprint, config.key())
    return dataclasses.replace(first, config=config, path=path, families=tuple(members))


def gather(prep: Prepared) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None]:
    """Link each finished family's recorded runs and folds into this run; read them back.

    Files already here are kept: `pipeline.drop_damaged` has removed the damaged ones.

    Returns
    -------
    runs : list of length n_families * n_runs of dict
        What `steps.train_runs` keeps of each run (`steps.light_run`), family by family.
    oof : ndarray of shape (n_examples, n_classes), float32, or None
        `family_oof`; None when no requested score needs out-of-fold probabilities.
    """
    rd, n_runs, n_folds = prep.run_dir, prep.config.train.runs, prep.config.cv_folds
    for f, member in enumerate(prep.families):
        own = member.run_dir
        pairs = [(own.run_file(r), rd.run_file(f * n_runs + r)) for r in range(n_runs)]
        if prep.needs_cv:
            pairs += [(own.fold_file(k), rd.fold_file(f * n_folds + k)) for k in range(n_folds)]
        if f == 0:  # computed once per folder otherwise; the first family's are this run's
            pairs += [
                (own.features_free_file, rd.features_free_file),
                (own.features_free_test_file, rd.features_free_test_file),
            ]
        for source, path in pairs:
            if source.exists() and not path.exists():
                store.link_or_copy(source, path)
    runs = [steps.light_run(rd.read_run(r)) for r in range(prep.n_runs)]
    return runs, (family_oof(prep) if prep.needs_cv else None)


def family_oof(prep: Prepared) -> np.ndarray:
    """The mean over families of each family's out-of-fold probabilities, from this run's
    folds (family f's fold k is fold f * K + k).

    Returns
    -------
    ndarray of shape (n_examples, n_classes), float32
        Row i: the mean of F models' probabilities, none of which trained on example i.
    """
    rd, n_folds = prep.run_dir, prep.config.cv_folds
    per_family = np.zeros(
        (len(prep.families), len(prep.labels), len(prep.dataset.label_names)), dtype=np.float32
    )  # (F, N, K)
    for f in range(len(prep.families)):
        for k in range(n_folds):
            fold = rd.read_fold(f * n_folds + k)
            per_family[f, fold["index"]] = fold["probs"]
    return per_family.mean(axis=0)  # (N, K)


def summary_fields(prep: Prepared, runs: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """What summary.json says differently for several families (`results.summarize` the rest).

    `test_accuracy_mean`: the accuracy of the held-out probabilities averaged over every run
    of every family (what `heldout.parquet` judges by), not the mean of the runs'
    accuracies; `families`: per family its recipe, run key, runs, epochs and the mean of its
    own runs' held-out accuracies; `train_examples_per_s` over every family's epochs.
    """
    n_runs = prep.config.train.runs
    families = []
    for f, member in enumerate(prep.families):
        accs = [float(r["test_accuracy"]) for r in runs[f * n_runs : (f + 1) * n_runs]]
        families.append(
            {
                "recipe": member.recipe.name,
                "run_key": member.config.key(),
                "runs": n_runs,
                "epochs": member.recipe.epochs,
                "test_accuracy_mean": float(np.mean(accs)),
            }
        )
    fields: dict[str, Any] = {"families": families}
    test_labels = prep.dataset.test.labels
    if len(test_labels) and all("test_probs" in r for r in runs):
        probs = np.mean([np.asarray(r["test_probs"], np.float64) for r in runs], axis=0)  # (M, K)
        fields["test_accuracy_mean"] = float((probs.argmax(1) == test_labels).mean())
    seconds = sum(float(r.get("train_seconds", 0.0)) for r in runs)
    if seconds:
        epochs = sum(m.recipe.epochs for m in prep.families) * n_runs
        fields["train_examples_per_s"] = round(len(prep.labels) * epochs / seconds, 1)
    return fields
