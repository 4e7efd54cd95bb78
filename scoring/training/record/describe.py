"""A recorded run in the terms the rest of Winnow reads a run in.

- `recorded_dataset`: the examples as a `data.Dataset` (the linked source's rows, or the
  ids with the given inputs or placeholders), whose fingerprint places the run folder;
- `with_test`: that dataset with the held-out rows the runs gave logits for;
- `prepared`: the `steps.Prepared` that `training.results` scores and writes from;
- `config_record`: `config.json`, a scored run's plus `source` and `recording`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Any

import numpy as np
import torch

from scoring import data, store
from scoring.config import SCORING_VERSION, DataConfig, ScoreConfig, TrainConfig
from scoring.training.grad_arrays import GradPlan
from scoring.training.models import Recipe
from scoring.training.record.examples import Examples
from scoring.training.steps import Prepared, _git_revision, dataset_record


def recorded_dataset(ex: Examples) -> data.Dataset:
    """The run's examples as a `data.Dataset`: the linked source's rows, or the ids."""
    if ex.data_config is not None:
        full = data.load(ex.data_config, hf_cache_dir=str(store.hf_cache_dir(ex.cache_dir)))
        at = np.searchsorted(full.train.ids, ex.ids)  # ids were checked at construction
        inputs = full.train.inputs
        train_inputs = inputs[at] if isinstance(inputs, np.ndarray) else [inputs[i] for i in at]
        return dataclasses.replace(
            full, train=data.Split(ex.ids, train_inputs, full.train.labels[at])
        )
    content = hashlib.sha256(b"recorded\0")
    content.update(ex.ids.tobytes())
    content.update(ex.labels.tobytes())
    content.update(json.dumps(ex.label_names).encode())
    if ex.inputs is not None:
        modality, inputs = ex.inputs
    else:
        # Nothing to show; unique placeholders so no two rows count as exact copies.
        modality, inputs = "none", [f"\x00id {i}" for i in ex.ids]
    return data.Dataset(
        train=data.Split(ex.ids, inputs, ex.labels),
        test=data.Split(np.zeros(0, np.int64), [], np.zeros(0, np.int64)),
        label_names=ex.label_names,
        modality=modality,
        input_cols=(),
        label_col="label",
        fingerprint=content.hexdigest()[:16],
        test_origin="given",
        description="own data",
    )


def with_test(
    ds: data.Dataset, test_ids: np.ndarray, test_labels: np.ndarray, linked: bool
) -> data.Dataset:
    """`ds` whose held-out split is the rows the runs gave logits for.

    Parameters
    ----------
    ds : data.Dataset
    test_ids : ndarray of shape (n_test,), int64
        Sorted.
    test_labels : ndarray of shape (n_test,), int64
    linked : bool
        `ds` is a linked source: its held-out rows keep their inputs.
    """
    if linked:  # the source's held-out rows: keep their inputs (and the source's labels)
        at = np.searchsorted(ds.test.ids, test_ids)
        inputs = ds.test.inputs
        taken = inputs[at] if isinstance(inputs, np.ndarray) else [inputs[i] for i in at]
        test = data.Split(test_ids, taken, test_labels)
    else:
        test = data.Split(test_ids, [f"\x00test id {i}" for i in test_ids], test_labels)
    return dataclasses.replace(ds, test=test)


def prepared(
    ex: Examples,
    rd: store.RunDir,
    ds: data.Dataset,
    keys: list[str],
    n_runs: int,
    n_epochs: int,
    early: int,
) -> Prepared:
    """What `training.results` reads of a run, for this recording."""
    config = ScoreConfig(
        data=ex.data_config or DataConfig(source=""),
        train=TrainConfig(recipe=ex.kind, runs=n_runs, epochs=n_epochs or None, early_epoch=early),
        scores=tuple(keys),
    )
    recipe = Recipe(ex.kind, n_epochs, 0, "", 0.0, 0.0, early)
    return Prepared(
        config=config,
        dataset=ds,
        recipe=recipe,
        labels=ex.labels,
        noisy=None,
        score_keys=keys,
        device=torch.device("cpu"),
        path=rd.path,
        grad_plan=GradPlan((), None, "all", ()),
    )


def config_record(kind: str, key: str, prep: Prepared, recording: dict[str, Any]) -> dict[str, Any]:
    """`config.json` of a recorded run: what a scored one holds, plus `source` and
    `recording`; the recipe's training settings are unknown (None)."""
    recipe = {
        "name": kind,
        "epochs": prep.recipe.epochs,
        "batch_size": None,
        "optimizer": None,
        "lr": None,
        "weight_decay": None,
        "early_epoch": recording["early_epoch"],
    }
    return {
        "scoring_version": SCORING_VERSION,
        "key": key,
        "source": kind,
        "config": prep.config.to_dict(),
        "recipe": recipe,
        "dataset": dataset_record(prep.dataset),
        "score_keys": prep.score_keys,
        "recording": recording,
        "device": None,  # the user's own
        "git_revision": _git_revision(),  # Winnow's, which scored the recording
        "created": time.time(),
    }
