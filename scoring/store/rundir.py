"""A run folder's typed readers, damage checks and writers: `RunDir`, the one way into a run.

`RunDir` adds to the paths of `RunPaths` (`scoring.store.paths`) a reader per file that
turns any damage into `DamagedRun` (`scoring.store.integrity`), the checks that list what
is damaged (`check`, against the manifest `status.json` keeps), and the writers whose
format is its own business (`split.npz`, `inputs.npz`, the display images).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.config import SCORING_VERSION
from scoring.errors import InputError
from scoring.store.atomic import (
    atomic_write_bytes,
    load_arrays,
    read_json,
    save_arrays,
    write_json,
)
from scoring.store.inputs import INPUT_KINDS, ModelInputs, decode_inputs, encode_inputs
from scoring.store.integrity import (
    READ_ERRORS,
    DamagedRun,
    compare_file,
    damage_reason,
    file_digest,
)
from scoring.store.paths import RunPaths
from scoring.store.status import STATES, RunLock, pid_alive, read_status, unfinished_reason

_CONFIG_SECTIONS = ("config", "dataset", "recipe")  # config.json's objects (`config_record`)


# `heldout.parquet`'s columns every reader relies on (`read_heldout`).
HELDOUT_COLUMNS = ("id", "label", "given_prob", "suggested", "suggested_prob")


@dataclass(frozen=True)
class RunSplit:
    """A run's examples and labels, as `split.npz` records them.

    Attributes
    ----------
    train_ids : ndarray of shape (n_examples,), int64
        Stable ids of the training examples, in the order of every per-example file.
    test_ids : ndarray of shape (n_test,), int64
    labels : ndarray of shape (n_examples,), int64
        The labels the runs trained on (after injected noise, when some was asked for).
    true_labels : ndarray of shape (n_examples,), int64
        The source's labels.
    test_labels : ndarray of shape (n_test,), int64
    """

    train_ids: np.ndarray
    test_ids: np.ndarray
    labels: np.ndarray
    true_labels: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True)
class RunVotes:
    """Several annotators' votes, as `annotations.npz` records them.

    Attributes
    ----------
    annotators : ndarray of shape (n_annotators,), str
        Their names, in column order.
    votes : ndarray of shape (n_examples, n_annotators), int64
        Each annotator's class id per training example (`split.npz` order), -1 = no vote.
    test_votes : ndarray of shape (n_test, n_annotators), int64
        The same for the held-out rows.
    """

    annotators: np.ndarray
    votes: np.ndarray
    test_votes: np.ndarray


@dataclass(frozen=True)
class RunDir(RunPaths):
    """A run folder `<cache>/<dataset-fingerprint>/<run-key>/`: its paths and typed readers.

    The one place that names a run's files (its paths come from `RunPaths`, its readers,
    checks and writers are here); the writer (`scoring.training.pipeline`) and every reader
    go through it. N training examples, M held-out (test) examples, K classes, R runs,
    T epochs.

    ============================  ======================================  ==========================
    file                          holds                                   written by, when
    ============================  ======================================  ==========================
    ``config.json``               scoring version, run key, the           pipeline, first
                                  ScoreConfig, the resolved recipe, the
                                  dataset (description, label names,
                                  sizes), device, git revision; a
                                  recorded or imported run adds
                                  ``source`` and ``recording`` (what
                                  was logged, which scores are absent)
    ``status.json``               state (running / done / failed /        pipeline, throughout;
                                  cancelled), progress, message, pid,     `done` last of all
                                  host, time; with `done`, ``files``:
                                  size, mtime and sha256 of every file
                                  above and below it wrote (`digest`)
    ``lock``                      pid and host of the job computing it    `RunLock`, while computing
    ``split.npz``                 train_ids (N,), test_ids (M,), labels   pipeline, first
                                  (N,) trained on, true_labels (N,),
                                  test_labels (M,) (`RunSplit`)
    ``annotations.npz``           several annotators: names (A,), votes   pipeline, first; only
                                  (N, A) and test_votes (M, A), class     with annotators
                                  ids, -1 = no vote (`RunVotes`)
    ``runs/run_NNN.npz``          run NNN's recording: loss, logits,      pipeline, as each run ends
                                  probs, correct (T, N), features,        (its presence = run done)
                                  test_probs, gradient arrays, timings
                                  (some float16: `compact`)
    ``runs/run_NNN.safetensors``  weight snapshots the gradient scores    pipeline, just before the
                                  used                                    run's .npz
    ``cv/fold_N.npz``             index and out-of-fold probs of fold N   pipeline, per fold; only
                                                                          for scores that need
                                                                          oof_probs
    ``features_free.npz``         label-independent embeddings (N, D)     pipeline, once, when a
                                  of the training set (`features`)        score needs them
                                                                          (`prototype`)
    ``features_free_test.npz``    the same embeddings of the held-out     pipeline, once, when a
                                  (test) rows (M, D)                      score needs them
                                                                          (`leakage`)
    ``inputs.npz``                what the models consumed                pipeline, after scoring
                                  (`ModelInputs`): uint8 pixels +
                                  divisor, int32 tokens, or the key of
                                  the dataset's embeddings file
    ``scores.parquet``            id, label, [true_label, noisy], one     pipeline, after scoring
                                  column per score; N rows
    ``scores_per_run.parquet``    id, ``<score>__run<r>`` per per-run     pipeline, after scoring
                                  score
    ``predictions.parquet``       id, pred, pred_prob, given_prob of the  pipeline, after scoring
                                  final models (mean over runs); with
                                  cross-fitting, oof_given_prob,
                                  oof_suggested, oof_suggested_prob
                                  (out-of-fold: no model saw the row)
    ``heldout.parquet``           id, label, given_prob, suggested,       pipeline, after scoring
                                  suggested_prob, cl_quality, cl_issue
                                  of the M held-out rows (mean test
                                  probs of the runs; `read_heldout`)
    ``meta.json``                 name, preset (labels only, not in the   CLI `score`, every call
                                  key; a rerun with --name renames)
    ``examples/images.npy``       (N, H, W, C) uint8 images to display    pipeline, after scoring
    ``examples/texts.parquet``    id, text[, text_pair] to display        pipeline, after scoring
    ``summary.json``              test accuracy per run, timings, per     pipeline, last before
                                  score: direction, stability, noise      `done`
                                  detection
    ``health.json``               dataset-level issues: overlapping       pipeline, after the
                                  class pairs and per-class label         results
                                  quality, weak slices, non-IID order
                                  (`scoring.scores.health`)
    ``decisions.jsonl``           keep / relabel / drop lines, append     `read.decisions`, on
                                  only                                    review
    ``map.parquet``               id, x, y: UMAP of run 0's features      `read.maps`, on request
    ``sweeps/trials/<key>.json``  one retraining trial's record           `training.retrain`, per
                                                                          trial
    ``sweeps/<key>/``             ``sweep.json``, ``trials.parquet``,     `training.retrain`, per
                                  ``summary.parquet``, ``status.json``,   sweep
                                  ``lock`` (`SweepDir`)
    ============================  ======================================  ==========================

    Outside the run folder but read through it: the dataset's cached text embeddings
    (`embeddings_file`, shared by the dataset's runs) and Hugging Face's cache
    (`hf_cache_dir`). Job logs live in `<cache>/_jobs/`, not here.
    """

    def lock(self) -> RunLock:
        """The run's `RunLock` (not taken: call `acquire`)."""
        return RunLock(self.path)

    # -- readers -----------------------------------------------------------------------
    # Every reader turns a damaged file into `DamagedRun` (file, one-line reason, fix), so
    # no caller ever sees a JSONDecodeError, a BadZipFile or pyarrow's ArrowInvalid.

    @contextlib.contextmanager
    def reading(self, file: Path) -> Iterator[None]:
        """Turn any failure to read `file` inside the block into `DamagedRun`."""
        try:
            yield
        except DamagedRun:
            raise
        except READ_ERRORS as err:
            raise DamagedRun(self.path, self.relative(file), damage_reason(file, err)) from err

    def _read_object(self, file: Path) -> dict[str, Any]:
        """The JSON object in `file`; DamagedRun when unreadable or not an object."""
        with self.reading(file):
            obj = read_json(file)
        if not isinstance(obj, dict):
            kind = "a list" if isinstance(obj, list) else type(obj).__name__
            raise DamagedRun(self.path, self.relative(file), f"holds {kind}, not a JSON object")
        return obj

    def read_config(self) -> dict[str, Any]:
        """`config.json`; DamagedRun when it is missing, unreadable or of the wrong shape."""
        config = self._read_object(self.config_file)
        for key in _CONFIG_SECTIONS:
            if key in config and not isinstance(config[key], dict):
                name = self.relative(self.config_file)
                raise DamagedRun(self.path, name, f"has a {key!r} that is not an object")
        return config

    def read_status(self) -> dict[str, Any] | None:
        """The run's status, or None when it has none yet; DamagedRun when unreadable."""
        if not self.status_file.exists():
            return None
        status = self._read_object(self.status_file)
        if status.get("state") not in STATES:
            name, state = self.relative(self.status_file), status.get("state")
            raise DamagedRun(self.path, name, f"has no valid state ({state!r})")
        return status

    def read_summary(self) -> dict[str, Any]:
        """`summary.json`; DamagedRun when unreadable or without its `scores` section."""
        summary = self._read_object(self.summary_file)
        if not isinstance(summary.get("scores"), dict):
            name = self.relative(self.summary_file)
            raise DamagedRun(self.path, name, "lacks its 'scores' section")
        return summary

    def read_health(self) -> dict[str, Any] | None:
        """`health.json`; None for a run from before it was written (or recorded without it).

        DamagedRun when it is unreadable, or missing though the finished run's manifest lists it.
        """
        if not self.health_file.exists() and not self._recorded(self.health_file):
            return None
        return self._read_object(self.health_file)

    def write_health(self, record: dict[str, Any]) -> None:
        """Write `health.json` (the record `scoring.scores.health.dataset_health` returns)."""
        write_json(self.health_file, record)

    def read_arrays(self, file: Path, names: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """Every array of an .npz, read in full (so a cut-short entry fails here, not later)."""
        with self.reading(file):
            arrays = load_arrays(file)
        lacking = [n for n in names if n not in arrays]
        if lacking:
            raise DamagedRun(self.path, self.relative(file), f"lacks {', '.join(lacking)}")
        return arrays

    def read_split(self) -> RunSplit:
        """`split.npz`; DamagedRun when an array is missing, not 1-D integers, or the train
        and test arrays disagree in length (a file written by something else)."""
        names = tuple(f.name for f in dataclasses.fields(RunSplit))
        arrays = self.read_arrays(self.split_file, names)
        for n in names:
            a = arrays[n]
            if a.ndim != 1 or a.dtype.kind not in "iu":
                raise DamagedRun(
                    self.path,
                    self.relative(self.split_file),
                    f"holds {n} of shape {a.shape} and type {a.dtype}, not integers",
                )
        sizes = {len(arrays[n]) for n in ("train_ids", "labels", "true_labels")}
        if len(sizes) > 1 or len(arrays["test_ids"]) != len(arrays["test_labels"]):
            raise DamagedRun(
                self.path, self.relative(self.split_file), "holds arrays of unequal lengths"
            )
        return RunSplit(**{n: arrays[n] for n in names})

    def read_votes(self) -> RunVotes | None:
        """Several annotators' votes (`annotations.npz`); None for a run without annotators."""
        if not self.annotations_file.exists() and not self._recorded(self.annotations_file):
            return None
        names = tuple(f.name for f in dataclasses.fields(RunVotes))
        arrays = self.read_arrays(self.annotations_file, names)
        return RunVotes(**{n: arrays[n] for n in names})

    def read_run(self, r: int) -> dict[str, np.ndarray]:
        """Run r's recorded arrays by name (as stored: some float16, see `compact`);
        DamagedRun when its final probabilities are not one row per training example."""
        arrays = self.read_arrays(self.run_file(r), ("test_accuracy", "probs_final"))
        probs, n = arrays["probs_final"], len(self.read_split().train_ids)
        if probs.ndim != 2 or probs.shape[0] != n or probs.dtype.kind != "f":
            raise DamagedRun(
                self.path,
                self.relative(self.run_file(r)),
                f"holds probs_final of shape {probs.shape} and type {probs.dtype}, not "
                f"({n}, n_classes) probabilities",
            )
        return arrays

    def read_fold(self, f: int) -> dict[str, np.ndarray]:
        """Cross-fit fold f: `index` (n,) of the rows it held out and their `probs` (n, K)."""
        return self.read_arrays(self.fold_file(f), ("index", "probs"))

    def read_scores(self, columns: list[str] | None = None) -> pd.DataFrame:
        """`scores.parquet` (only `columns` when given)."""
        with self.reading(self.scores_file):
            return pd.read_parquet(self.scores_file, columns=columns)

    def read_scores_per_run(self) -> pd.DataFrame:
        with self.reading(self.scores_per_run_file):
            return pd.read_parquet(self.scores_per_run_file)

    def read_predictions(self) -> pd.DataFrame | None:
        """Final-model predictions; None for runs from before they were written."""
        if not self.predictions_file.exists() and not self._recorded(self.predictions_file):
            return None
        with self.reading(self.predictions_file):
            return pd.read_parquet(self.predictions_file)

    def read_heldout(self) -> pd.DataFrame | None:
        """Held-out evidence (`heldout.parquet`); None for runs from before it was written.

        Columns: id, label, given_prob, suggested, suggested_prob, cl_quality, cl_issue (one
        row per held-out example, in `split.npz`'s test order; probabilities are the runs'
        mean held-out softmax, which no run trained on).
        """
        if not self.heldout_file.exists() and not self._recorded(self.heldout_file):
            return None
        with self.reading(self.heldout_file):
            frame = pd.read_parquet(self.heldout_file)
        lacking = [c for c in HELDOUT_COLUMNS if c not in frame.columns]
        if lacking:  # another table under this name: the readers would fail on a column
            raise DamagedRun(
                self.path, self.relative(self.heldout_file), f"lacks column(s) {', '.join(lacking)}"
            )
        return frame

    def read_meta(self) -> dict[str, Any]:
        """`meta.json` ({"name": str | None, "preset": str | None}); {} when absent or unreadable.

        User metadata, not a result: a damaged file costs the label, never the run.
        """
        try:
            meta = read_json(self.meta_file)
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def write_meta(self, **fields: Any) -> None:
        """Merge `fields` (name, preset) into `meta.json`; None values leave a field as it is.

        Written beside a run by every `score` call, so a rerun with another `--name` renames
        the run without touching its key, its files or their manifest.
        """
        meta = self.read_meta()
        meta.update({k: v for k, v in fields.items() if v is not None})
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.meta_file, meta)

    def open_images(self, *, heldout: bool = False) -> np.ndarray | None:
        """The display images, memory-mapped, (N, H, W, C) uint8; None when absent.

        `heldout=True`: those of the M held-out rows, (M, H, W, C), in `split.npz` test order.
        """
        file = self.heldout_images_file if heldout else self.images_file
        if not file.exists() and not self._recorded(file):
            return None
        with self.reading(file):
            images = np.load(file, mmap_mode="r", allow_pickle=False)
            if images.ndim != 4 or images.dtype != np.uint8:
                raise ValueError(f"holds {images.dtype} of shape {images.shape}")
            return images

    def read_texts(
        self, columns: list[str] | None = None, *, heldout: bool = False
    ) -> pd.DataFrame | None:
        """The display texts (id, text[, text_pair]); None when absent (image runs).

        `heldout=True`: those of the held-out rows.
        """
        file = self.heldout_texts_file if heldout else self.texts_file
        if not file.exists() and not self._recorded(file):
            return None
        with self.reading(file):
            return pd.read_parquet(file, columns=columns)

    def _recorded(self, file: Path) -> bool:
        """Whether the finished run's manifest lists `file` (so its absence is damage)."""
        return self.relative(file) in self.manifest()

    def manifest(self) -> dict[str, dict[str, Any]]:
        """What the finished run wrote: relative name -> {size, mtime_ns, sha256}; {} if unknown.

        Read from `status.json` (`files`, written with `done`); empty for a run that is not
        done, whose status is unreadable, or that finished before manifests were kept.
        """
        status = read_status(self.path)
        files = (status or {}).get("files") if (status or {}).get("state") == "done" else None
        if not isinstance(files, dict):
            return {}
        return {
            k: v
            for k, v in files.items()
            if isinstance(v, dict) and isinstance(v.get("size"), int) and "sha256" in v
        }

    def read_inputs(self, *, pixels: bool = False) -> ModelInputs | None:
        """What the models consumed, bit for bit; None when the run does not hold it.

        None for a run scored before inputs were kept, and for a text probe whose dataset
        embeddings file has since been removed: the caller then prepares them again.
        Images come as float32, or with `pixels` as the stored uint8 and their `divisor`
        (what training holds: a quarter of the memory).
        """
        if not self.inputs_file.exists() and not self._recorded(self.inputs_file):
            return None
        a = self.read_arrays(self.inputs_file, ("kind",))
        with self.reading(self.inputs_file):
            kind = str(a["kind"])
            if kind not in INPUT_KINDS:
                raise ValueError(f"unknown input kind {kind!r}")
            if kind == "embeddings":
                file = self.embeddings_file(str(a["embedding_key"]))
                if not file.exists():
                    return None
                e = load_arrays(file)
                return ModelInputs(kind, e["train"], e["test"])
            return decode_inputs(a, pixels=pixels)

    # -- damage ------------------------------------------------------------------------

    def _unreadable_results(self, known: list[DamagedRun]) -> list[DamagedRun]:
        """For a run without a manifest: every file on disk it wrote that does not read whole,
        and the result tables its typed readers refuse (a file that is simply absent may be
        one an older version never wrote: not damage)."""
        found: list[DamagedRun] = []
        readers = [
            self.read_split,
            lambda: self.read_scores(["id", "label"]),
            self.read_heldout,
            *(functools.partial(self.read_run, r) for r in range(len(self._run_files()))),
        ]
        for file in self.written_files():
            readers.append(functools.partial(self._read_whole, file))
        for read in readers:
            try:
                read()
            except DamagedRun as err:
                if not any(p.file == err.file for p in [*known, *found]):
                    found.append(err)
        return found

    def _run_files(self) -> list[Path]:
        return sorted(self.runs_dir.glob("run_*.npz")) if self.runs_dir.is_dir() else []

    def _read_whole(self, file: Path) -> None:
        """Read `file` in full by its kind; DamagedRun when it does not."""
        if file.suffix == ".npz":
            self.read_arrays(file)
        elif file.suffix == ".json":
            self._read_object(file)
        else:
            with self.reading(file):
                if file.suffix == ".npy":
                    np.load(file, allow_pickle=False)
                elif file.suffix == ".parquet":
                    pd.read_parquet(file)

    def result_files(self) -> list[Path]:
        """Every fixed-name file the pipeline may write, on disk or not (the runs' and folds'
        files are numbered: `written_files` finds them). The damage suite derives its cases
        from this list, so a new result file is covered by construction."""
        return [
            self.config_file,
            self.split_file,
            self.annotations_file,
            self.inputs_file,
            self.features_free_file,
            self.features_free_test_file,
            self.scores_file,
            self.scores_per_run_file,
            self.predictions_file,
            self.heldout_file,
            self.images_file,
            self.texts_file,
            self.heldout_images_file,
            self.heldout_texts_file,
            self.summary_file,
            self.health_file,
        ]

    def written_files(self) -> list[Path]:
        """The files the pipeline wrote that are on disk now (what the manifest records).

        Not `status.json` (it holds the manifest), `lock`, the runs' `.safetensors`
        snapshots, nor the user's and the app's later files (decisions, map, sweeps).
        """
        fixed = self.result_files()
        found = [f for f in fixed if f.is_file()]
        # Not the runs' weight snapshots: nothing reads them once the scores are computed,
        # and the README tells users they may delete them.
        for folder, pattern in ((self.runs_dir, "run_*.npz"), (self.cv_dir, "fold_*.npz")):
            if folder.is_dir():
                found += sorted(f for f in folder.glob(pattern) if f.is_file())
        return found

    def digest(self) -> dict[str, dict[str, Any]]:
        """The manifest of what is on disk now: relative name -> {size, mtime_ns, sha256}."""
        return {self.relative(f): file_digest(f) for f in self.written_files()}

    def require_finished(self) -> None:
        """Refuse, with one line, anything but a sound finished run: what every reader needs.

        In order: not a run folder at all; damaged (the first `check` problem, naming the
        file and the fix); not finished (`unfinished_reason`: running, interrupted, failed or
        cancelled, and how to resume).
        """
        if not (self.config_file.exists() or self.status_file.exists()):
            raise InputError(f"{self.path} is not a Winnow run folder (no {self.config_file.name})")
        problems = self.check()
        if problems:
            raise problems[0]
        unfinished = unfinished_reason(self.path)
        if unfinished is not None:
            raise InputError(unfinished)

    def check(self, *, deep: bool = False) -> list[DamagedRun]:
        """What is damaged in this run, as DamagedRun records (empty when it is sound).

        Always: `config.json` and `status.json` parse to objects (a missing status is damage
        unless a live job holds the run's lock: it is being written). For a finished run also
        `summary.json`, and every file its manifest lists: present with the size it had, and
        the same sha256 when its modification time moved (cheap: `list` and the pages run
        this). `deep` hashes every file, which also catches damage that kept the time (the
        `score` command runs this before it trusts a cached run).
        """
        problems: list[DamagedRun] = []
        try:
            lacking = [k for k in _CONFIG_SECTIONS if k not in self.read_config()]
            if lacking:  # a whole run's record has every section
                name = self.relative(self.config_file)
                problems.append(DamagedRun(self.path, name, f"lacks {lacking[0]!r}"))
        except DamagedRun as err:
            problems.append(err)
        try:
            status = self.read_status()
        except DamagedRun as err:
            return [*problems, err]
        if status is None:
            if not self.lock_live():
                name = self.relative(self.status_file)
                problems.append(DamagedRun(self.path, name, "is missing"))
            return problems
        if status["state"] != "done":
            return problems
        try:
            self.read_summary()
        except DamagedRun as err:
            problems.append(err)
        recorded = self.manifest()
        if not recorded:  # finished before manifests were kept: the files pages need
            for file in (self.scores_file, self.split_file):
                if not file.is_file():
                    problems.append(DamagedRun(self.path, self.relative(file), "is missing"))
            if deep:  # no sizes or hashes to compare: read each result as its readers do
                problems += self._unreadable_results(problems)
        for name, meta in recorded.items():
            if any(p.file == name for p in problems):  # already said (config, summary)
                continue
            reason = compare_file(self.path / name, meta, deep=deep)
            if reason:
                problems.append(DamagedRun(self.path, name, reason))
        return problems

    def lock_live(self) -> bool:
        """Whether a live job on this host holds the run's lock (it is being written)."""
        owner = self.lock().owner()
        if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
            return False
        return owner.get("host") == socket.gethostname() and pid_alive(
            owner["pid"], owner.get("pid_start")
        )

    def remove(self) -> None:
        """Delete this run folder (a damaged run the user gave up on); refuses a live job's."""
        import shutil

        if not (self.config_file.exists() or self.status_file.exists()):
            raise InputError(f"{self.path} is not a Winnow run folder; nothing deleted")
        if self.lock_live():
            raise InputError(f"{self.path} is being computed by a live job; cancel it first")
        shutil.rmtree(self.path)

    # -- writers whose format is this class's business ---------------------------------

    def write_split(self, split: RunSplit) -> None:
        save_arrays(self.split_file, **dataclasses.asdict(split))

    def write_votes(self, votes: RunVotes) -> None:
        """`annotations.npz`; names as a fixed-width unicode array (read without pickle)."""
        save_arrays(
            self.annotations_file,
            annotators=np.asarray(votes.annotators, dtype=np.str_),
            votes=np.asarray(votes.votes, dtype=np.int64),
            test_votes=np.asarray(votes.test_votes, dtype=np.int64),
        )

    def write_inputs(self, inputs: ModelInputs, *, embedding_key: str | None = None) -> None:
        """Keep what the models consumed, compactly and exactly (`inputs.encode_inputs`).

        Images as uint8 pixels plus the divisor that gives back the float32 inputs bit for
        bit (float32 as is when no divisor does); tokens as int32; embeddings by the key of
        the dataset's embeddings file (`embedding_key`), which already holds them.
        """
        save_arrays(self.inputs_file, **encode_inputs(inputs, embedding_key=embedding_key))

    def write_images(self, pixels: np.ndarray, *, heldout: bool = False) -> None:
        """Display images, (N, H, W, C) uint8, as a plain `.npy` pages can memory-map
        (`heldout=True`: the held-out rows', (M, H, W, C))."""
        buf = io.BytesIO()
        np.save(buf, pixels)
        file = self.heldout_images_file if heldout else self.images_file
        atomic_write_bytes(file, buf.getvalue())


def check_version(path: Path) -> None:
    """Refuse a run written by another scoring version, with a way forward."""
    config = RunDir(path).read_config()
    found = config.get("scoring_version")
    if found != SCORING_VERSION:
        raise InputError(
            f"{path} was written by scoring version {found}, this is version {SCORING_VERSION}; "
            "run the same `python -m scoring score` command again to recompute it"
        )


def read_scores(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """`scores.parquet` of a finished run (only `columns` when given)."""
    return RunDir(path).read_scores(columns)
