"""Writing a recording as a done run folder (rank 0, in `finish`): `write_run`.

The order is the store's: the folder is made with status `running`, then the runs'
arrays (`assemble`), the run's description, its split, the scores, predictions, held-out
frame, examples and summary, and status `done` (with every file's digest) last, so a
folder that says `done` is complete. A failure marks the folder `failed` and re-raises;
the recording stays on disk, so `finish` can be called again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from scoring import data, store
from scoring.errors import InputError
from scoring.scores import REGISTRY
from scoring.training import results
from scoring.training.record.assemble import assemble_run
from scoring.training.record.definitions import (
    FREE_FEATURES_NOTE,
    el2n_definitions,
    features_free_definitions,
    label_free_reasons,
)
from scoring.training.record.describe import (
    config_record,
    prepared,
    recorded_dataset,
    with_test,
)
from scoring.training.record.epochs import STATS
from scoring.training.record.examples import Examples
from scoring.training.record.merge import (
    Ranks,
    merge_rows,
    merge_test,
    merge_test_features,
    read_ranks,
)
from scoring.training.record.scratch import OOF_FILE, assemble_folder, end_file
from scoring.training.steps import Prepared

# What a recording always provides to the scores; the rest depends on what was logged.
_ALWAYS = frozenset(
    {"labels", "label_prior", "n_prototypes", *STATS, "correct", "probs_early", "probs_final"}
)


def write_run(ex: Examples, key: str, recording: Path) -> Path:
    """Merge every rank's recording and write the run folder; return its path.

    Parameters
    ----------
    ex : Examples
        The recording's examples.
    key : str
        The run key (shared by the ranks).
    recording : Path
        The recording's scratch folder (`store.recording_dir`), holding every rank's.
    """
    ranks = read_ranks(recording)
    n_epochs = ranks.n_epochs
    early = ex.early_epoch or max(1, round(0.1 * n_epochs))  # as built-in recipes: ~10%
    if ranks.epochs and early > n_epochs:
        raise InputError(f"early_epoch {early} is beyond the {n_epochs} recorded epochs")
    ds = recorded_dataset(ex)
    rd = store.RunDir(store.run_dir(ex.cache_dir, ds.fingerprint, key))
    if rd.path.exists():
        shutil.rmtree(rd.path)
    rd.path.mkdir(parents=True)
    store.write_status(rd.path, "running", progress=0.0, message="writing the recording")
    try:
        return _write_files(rd, ex, key, recording, ranks, early, ds)
    except InputError:
        # The recording's own fault (features for some ids, ...): no run to keep, and a
        # half-written folder would read as a damaged run. The recording stays for a retry.
        shutil.rmtree(rd.path, ignore_errors=True)
        with contextlib.suppress(OSError):  # the dataset's folder, when this was its only run
            rd.path.parent.rmdir()
        raise
    except Exception as err:  # a bug: the failed run stays, saying what went wrong
        store.write_status(rd.path, "failed", message=f"{type(err).__name__}: {err}")
        raise


def _write_files(
    rd: store.RunDir,
    ex: Examples,
    key: str,
    recording: Path,
    ranks: Ranks,
    early: int,
    ds: data.Dataset,
) -> Path:
    """Everything in the run folder, `done` last (`write_run` made the folder)."""
    t0 = time.perf_counter()
    ds, record, light = _assemble_runs(rd, ex, recording, ranks, early, ds)
    oof = merge_rows(ranks.folders, OOF_FILE, ex.n, ex.n_classes) if ranks.has_oof else None
    if ranks.has_oof and oof is None:
        raise InputError("log_oof: the out-of-fold probabilities do not cover every id")
    keys, absent, definitions = _score_plan(rd, ranks, ds, oof is not None, record, early)
    record.update(oof=oof is not None, absent_scores=absent, definitions=definitions)
    prep = prepared(ex, rd, ds, keys, len(ranks.epochs), ranks.n_epochs, early)
    store.write_json(rd.config_file, config_record(ex.kind, key, prep, record))
    rd.write_split(
        store.RunSplit(
            train_ids=ex.ids,
            test_ids=np.asarray(ds.test.ids, dtype=np.int64),
            labels=ex.labels,
            true_labels=np.asarray(ds.train.labels, dtype=np.int64),
            test_labels=np.asarray(ds.test.labels, dtype=np.int64),
        )
    )
    store.write_status(rd.path, "running", progress=0.9, message="scoring the recording")
    scores = _write_scores(rd, prep, oof, light, "leakage" in keys)
    results.write_health(prep, oof)  # the dataset-level checks, from what was recorded
    if ex.data_config is not None or ex.inputs is not None:
        results.write_examples(prep)
    summary = results.summarize(prep, light, scores, {"scoring": time.perf_counter() - t0})
    if not light or not all(e["test"] for e in ranks.extras):  # no held-out logits: unknown
        summary.update(test_accuracy=[], test_accuracy_mean=None, test_accuracy_std=None)
    summary["absent_scores"] = absent
    summary["definitions"] = definitions
    store.write_json(rd.summary_file, summary)
    rd.write_meta(name=ex.name)
    store.write_status(rd.path, "done", progress=1.0, message="done", files=rd.digest())
    return rd.path


def _assemble_runs(
    rd: store.RunDir,
    ex: Examples,
    recording: Path,
    ranks: Ranks,
    early: int,
    ds: data.Dataset,
) -> tuple[data.Dataset, dict[str, Any], list[dict[str, np.ndarray]]]:
    """Write every run's arrays (`runs/run_<r>.npz`).

    Returns
    -------
    ds : data.Dataset
        With the held-out rows the runs gave logits for.
    record : dict
        `config.json`'s ``recording`` block so far.
    light : list of dict of str to ndarray
        Per run, what `assemble.assemble_run` returns.
    """
    if any(e["test"] for e in ranks.extras):
        test_rows = merge_test(ranks.folders, len(ranks.epochs))
        if test_rows is not None:
            test_ids, test_labels = test_rows
            ds = with_test(ds, test_ids, test_labels, ex.data_config is not None)
    record: dict[str, Any] = {
        "ranks": len(ranks.folders),
        "runs": len(ranks.epochs),
        "epochs": ranks.n_epochs,
        "early_epoch": early if ranks.epochs else None,
        "logged_per_epoch": [],
        "probs_early_runs": [],
    }
    light = [
        assemble_run(rd, assemble_folder(recording, r), ranks, r, early, ex, ds, record)
        for r in range(len(ranks.epochs))
    ]
    return ds, record, light


def _score_plan(
    rd: store.RunDir,
    ranks: Ranks,
    ds: data.Dataset,
    has_oof: bool,
    record: dict[str, Any],
    early: int,
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Which scores the recording gives, and how.

    Returns
    -------
    keys : list of str
        The registry keys whose needs were recorded.
    absent : dict of str to str
        The others, each with what it needs (and, for embeddings, how to give them).
    definitions : dict of str to str
        Per score whose definition depends on what was logged (`definitions`), the one used.
        Also sets ``probs_early`` and ``features_free`` of `record` (`config.json`).
    """
    available = set(_ALWAYS) if ranks.epochs else {"labels", "label_prior", "n_prototypes"}
    if has_oof:
        available.add("oof_probs")
    free = _free_features(rd, ranks, ds, available)
    keys = [k for k, s in REGISTRY.items() if set(s.needs) <= available]
    first = ranks.extras[0] if ranks.extras else {"features": False}
    reasons = label_free_reasons(first["features"], _test_features_given(ranks))
    absent = {
        k: "needs " + ", ".join(_need(n, reasons) for n in s.needs if n not in available)
        for k, s in REGISTRY.items()
        if k not in keys
    }
    runs = record["probs_early_runs"]
    sources = {r["source"] for r in runs}
    record["probs_early"] = (sources.pop() if len(sources) == 1 else "mixed") if runs else None
    record["features_free"] = FREE_FEATURES_NOTE if free else None
    definitions = el2n_definitions(runs, early) if runs else {}
    if free:
        definitions.update(features_free_definitions(keys))
    return keys, absent, {k: v for k, v in definitions.items() if k in keys}


def _need(name: str, reasons: dict[str, str]) -> str:
    """A missing need as `absent_scores` names it: its name, and how to give it if known."""
    return f"{name} ({reasons[name]})" if name in reasons else name


def _test_features_given(ranks: Ranks) -> bool:
    """Whether run 1 gave the held-out rows' features (on any rank)."""
    if not ranks.epochs:
        return False
    return any("test_features" in store.load_arrays(f / end_file(0)) for f in ranks.folders)


def _free_features(rd: store.RunDir, ranks: Ranks, ds: data.Dataset, available: set[str]) -> bool:
    """Run 1's features as the label-free embeddings (and the held-out rows' as theirs),
    only when the user stated them label-free (`end_run(features_label_free=True)`): the
    trained model's penultimate features have seen the labels. Written, added to
    `available`; whether they were."""
    if not (ranks.epochs and ranks.extras[0]["features_free"]):
        return False
    feats = store.load_arrays(rd.run_file(0)).get("features")
    if feats is None:
        return False
    store.save_arrays(rd.features_free_file, features=feats.astype(np.float32))
    available.add("features_free")
    test_feats = merge_test_features(ranks.folders, ds.test.ids)
    if test_feats is not None:
        store.save_arrays(rd.features_free_test_file, features=test_feats)
        available.add("features_free_test")
    return True


def _write_scores(
    rd: store.RunDir,
    prep: Prepared,
    oof: np.ndarray | None,
    light: list[dict[str, np.ndarray]],
    heldout_features: bool,
) -> dict[str, Any]:
    """Score the recording and write the score, prediction and held-out frames; return
    the scores (`results.compute_scores`)."""
    scores = results.compute_scores(prep, oof)
    if heldout_features:
        frame, per_run = results.score_frames(prep, scores)
    else:  # no held-out features: which rows leak is unknown, so `leak_of` is left out
        ds = prep.dataset
        empty = data.Split(np.zeros(0, np.int64), [], np.zeros(0, np.int64))
        bare = dataclasses.replace(prep, dataset=dataclasses.replace(ds, test=empty))
        frame, per_run = results.score_frames(bare, scores)
        frame = frame.drop(columns="leak_of", errors="ignore")
    store.write_parquet(rd.scores_file, frame)
    store.write_parquet(rd.scores_per_run_file, per_run)
    store.write_parquet(rd.predictions_file, _predictions(prep, light, oof))
    held = results.heldout_frame(prep, light) if light else None
    if held is not None:
        store.write_parquet(rd.heldout_file, held)
    return scores


def _predictions(prep: Prepared, light: list[dict[str, np.ndarray]], oof: np.ndarray | None) -> Any:
    """`predictions.parquet`: the runs' final predictions (`results.predictions`); with no
    recorded epochs (out-of-fold probabilities only), the out-of-fold ones stand in."""
    if light:
        return results.predictions(prep, light, oof)
    assert oof is not None  # `read_ranks` refuses a recording with neither
    return results.predictions(prep, [{"probs_final": oof}], oof)
