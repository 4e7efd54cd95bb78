"""Record per-example training dynamics from the user's own training: `Recorder`.

Any PyTorch loop (or JAX, or anything that yields logits) logs the logits of each training
step for the ids of its batch; `finish` turns the recording into a normal, done run folder
(`store.RunDir`), scored by the very functions a built-in run is (`training.results`), so
every page, `suspects` and `export` read it as they read any run.

Cost while training: `log` copies the batch's logits to the host into one preallocated
(N, K) float32 epoch buffer (no per-step Python objects are kept); `end_epoch` derives the
per-example statistics of that epoch (loss, logit of the given label, largest other logit,
probability of the given label: what `loop.fit` records) and flushes them to disk, so memory
does not grow with epochs. `bench/recording_overhead.py` measures it.

Distributed training (`torch.distributed` initialized, e.g. DDP): every rank records the
examples it trained on; `finish` merges the ranks by id (a barrier, then rank 0 writes the
run). Ranks share the cache folder (one machine, or a shared file system). An id logged by
several ranks in one epoch (a sampler that pads) keeps the lowest rank's values.

What is recorded, and the scores it gives (scores whose inputs were not given are left
out, and `summary.json`'s ``absent_scores`` says what each would need):

- the training pass (`log`, every epoch): forgetting, AUM, data-map confidence /
  variability / correctness, loss, and EL2N from the training pass at EL2N's epoch;
- an eval pass (`log_eval`, after `end_epoch`): EL2N at fixed weights, as Data Diet defines
  it, when one is logged after EL2N's epoch; the final predictions when one follows the
  last epoch;
- held-out logits (`end_run(test_logits=..., test_labels=...)`): test accuracy, held-out
  label quality;
- penultimate features (`end_run(features=...)`): the map; run 0's also stand in for the
  label-free embeddings of prototype and the neighbourhood scores (they have seen the
  labels: `config.json` says so);
- out-of-fold probabilities from the user's own cross-validation (`log_oof`): cl_quality,
  cl_issue, pvi;
- a data source (`dataset=`) or the inputs (`inputs=`): the rows Examples, Mislabeled and
  export show and write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scoring import data, store
from scoring.config import SCORING_VERSION, DataConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.scores import REGISTRY
from scoring.training import results
from scoring.training.grad_arrays import GradPlan
from scoring.training.models import Recipe
from scoring.training.steps import COMPACT, Prepared, _git_revision, dataset_record

KINDS = ("recorded", "imported")
# Row order of an epoch's statistics (as `loop._STATS`).
STATS = ("loss", "logit_given", "logit_other", "prob_given")
# What a recording always provides to the scores; the rest depends on what was logged.
_ALWAYS = frozenset(
    {"labels", "label_prior", "n_prototypes", *STATS, "correct", "probs_early", "probs_final"}
)
_F16_MAX = float(np.finfo(np.float16).max)
_RANK_FILE = "rank.json"  # a rank's record of what it logged; written last (= its part is done)


class Recorder:
    """Record what the user's own training does to every example; `finish` scores it.

    Parameters
    ----------
    cache_dir : path
        The cache the app and the CLI read (`winnow list`, `WINNOW_CACHE_DIR`).
    name : str
        The run's name in lists and captions.
    ids : array-like of shape (n_examples,), int
        The user's own ids of the training examples (unique, >= 0): what `log` is given
        with each batch. With `dataset`, the source's row ids (`winnow export` writes them).
    labels : array-like of shape (n_examples,), int, or None
        The labels trained on, in `ids` order, as class indices in [0, num_classes). None
        only with `dataset`: the source's labels of those rows.
    num_classes : int
    label_names : sequence of num_classes str, optional
        Default "0", "1", ...; with `dataset`, the source's.
    dataset : str or DataConfig, optional
        The data source the examples come from ("digits", a local file or image folder,
        hf:NAME), read as `winnow score --dataset` reads it: `ids` must be its training row
        ids. Pages then show the rows and `export` writes them.
    inputs : ndarray or sequence of str, optional
        Without a dataset, what to display per example, in `ids` order: images (N, H, W),
        (N, H, W, C) uint8 or (N, C, H, W) float in [0, 1]; or texts (str, or (str, str)
        pairs).
    early_epoch : int, optional
        EL2N's epoch t (1-based). Default: about 10% of the epochs, as for built-in recipes
        (then every epoch's probabilities wait on disk until the run's length is known).
    kind : {"recorded", "imported"}
        What the runs table calls the run (`winnow import` passes "imported").

    Notes
    -----
    The calls, in order: for each run (a seed) and each epoch, `log(ids, logits)` per
    training batch, then `end_epoch()`; optionally `log_eval(ids, logits)` after an
    `end_epoch()`; `end_run(...)` after a run's last epoch; `finish()` once. Under
    `torch.distributed` every rank makes its Recorder (same ids and labels) and calls each of
    these; `log` gets that rank's own batches.
    """

    def __init__(
        self,
        cache_dir: Path | str,
        name: str,
        ids: Any,
        labels: Any,
        num_classes: int,
        label_names: Sequence[str] | None = None,
        *,
        dataset: str | DataConfig | None = None,
        inputs: Any = None,
        early_epoch: int | None = None,
        kind: str = "recorded",
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"name must be a non-empty text, got {name!r}")
        if kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
            raise InputError(f"num_classes must be a whole number, got {num_classes!r}")
        if num_classes < 2:
            raise InputError(f"num_classes must be at least 2, got {num_classes}")
        if early_epoch is not None and (
            isinstance(early_epoch, bool) or not isinstance(early_epoch, int) or early_epoch < 1
        ):
            raise InputError(f"early_epoch must be a whole number >= 1, got {early_epoch!r}")
        self.cache_dir, self.name, self.kind = Path(cache_dir), name.strip(), kind
        self.n_classes = int(num_classes)
        self.early_epoch = early_epoch
        given = _int_vector(ids, "ids")
        if given.size == 0:
            raise InputError("ids: expected at least one example id, got none")
        if given.min() < 0:
            raise InputError(f"ids: expected ids >= 0, got {given.min()}")
        self._order = np.argsort(given, kind="stable")  # given position -> sorted position
        self.ids = given[self._order]  # (N,) sorted: the order of every file of the run
        dup = self.ids[1:] == self.ids[:-1]
        if dup.any():
            raise InputError(f"ids: expected unique ids, id {self.ids[1:][dup][0]} repeats")
        self.n = int(self.ids.shape[0])
        self.data_config = _data_config(dataset)
        if labels is not None:  # checked before the linked source is loaded
            lab = _int_vector(labels, "labels")
            if lab.shape[0] != self.n:
                raise InputError(
                    f"labels: expected {self.n} labels (one per id), got {lab.shape[0]}"
                )
            if lab.size and (lab.min() < 0 or lab.max() >= self.n_classes):
                bad = lab[(lab < 0) | (lab >= self.n_classes)][0]
                raise InputError(
                    f"labels: expected class indices in [0, {self.n_classes}), got {bad}; map "
                    "label names to 0..num_classes-1"
                )
        elif self.data_config is None:
            raise InputError(
                "labels: expected one label per id (only with dataset= may they be left "
                "out: then the source's labels are used)"
            )
        self._link = None
        if self.data_config is not None:
            self._link = _check_link(self.data_config, self.ids, self.n_classes, self.cache_dir)
        # Labels in id order: the given ones, else the linked source's.
        self.labels = lab[self._order] if labels is not None else self._link["labels"]
        self.label_names = _label_names(label_names, self.n_classes)
        if self._link is not None:
            if label_names is not None and list(label_names) != self._link["label_names"]:
                raise InputError(
                    f"label_names {list(label_names)} differ from the dataset's "
                    f"{self._link['label_names']}; leave label_names out with a dataset"
                )
            self.label_names = self._link["label_names"]
            if inputs is not None:
                raise InputError("give dataset= or inputs=, not both (the dataset has the rows)")
        self.inputs = None if inputs is None else _check_inputs(inputs, self.n, self._order)
        # Positions are the ids themselves when they are 0..N-1 (the common case: row index).
        self._direct = bool(self.ids[-1] == self.n - 1)
        self._rank, self._world = _distributed()
        self.key = _shared_key(self.name, self._rank, self._world)
        self._space = store.recording_dir(self.cache_dir, self.key) / f"rank{self._rank}"
        if self._space.exists():
            shutil.rmtree(self._space)
        self._space.mkdir(parents=True)
        # The epoch buffer: one row per example, filled by `log`, flushed by `end_epoch`.
        self._buf = np.empty((self.n, self.n_classes), dtype=np.float32)  # (N, K)
        self._seen = np.zeros(self.n, dtype=bool)  # (N,) logged in this epoch
        self._last = np.zeros(self.n, dtype=bool)  # (N,) logged in the epoch just ended
        self._eval: np.ndarray | None = None  # (N, K) eval-pass buffer, allocated on first use
        self._eval_seen = np.zeros(self.n, dtype=bool)
        self._eval_epoch: int | None = None
        self._oof: np.ndarray | None = None  # (N, K) out-of-fold probabilities
        self._oof_seen = np.zeros(self.n, dtype=bool)
        self._run = 0  # runs ended
        self._epoch = 0  # epochs ended in the current run
        self._epochs: list[int] = []  # epochs of each ended run
        self._extras: list[dict[str, bool]] = []  # per ended run: test, features given
        self._finished: Path | None = None

    # -- logging -------------------------------------------------------------------------

    def log(self, ids: Any, logits: Any) -> None:
        """Record one training step's logits for the ids of its batch.

        Parameters
        ----------
        ids : array-like or tensor of shape (batch,), int
        logits : tensor or array-like of shape (batch, n_classes)
            The training pass's outputs (before softmax), as the loss saw them.
        """
        if self._eval_epoch is not None:
            self._flush_eval()
        pos = self._positions(ids)
        values = _host(logits)  # (B, K) float32 on the host
        if values.shape != (pos.shape[0], self.n_classes):
            raise InputError(
                f"logits: expected shape ({pos.shape[0]}, {self.n_classes}) for "
                f"{pos.shape[0]} ids and {self.n_classes} classes, got {tuple(values.shape)}"
            )
        self._buf[pos] = values
        self._seen[pos] = True

    def log_eval(self, ids: Any, logits: Any) -> None:
        """Record an eval pass (fixed weights, no augmentation) made after `end_epoch()`.

        The pass belongs to the weights after the epoch just ended. One after EL2N's epoch
        gives EL2N at fixed weights (Data Diet); one after the last epoch gives the final
        predictions. Call it between `end_epoch()` and the next epoch's first `log`.
        """
        if self._seen.any():
            raise InputError(
                "log_eval: call it after end_epoch(), before the next epoch's first log(): "
                "an eval pass is taken with the weights after a whole epoch"
            )
        if self._epoch == 0:
            raise InputError("log_eval: no epoch has ended in this run yet; call end_epoch() first")
        pos = self._positions(ids)
        values = _host(logits)
        if values.shape != (pos.shape[0], self.n_classes):
            raise InputError(
                f"eval logits: expected shape ({pos.shape[0]}, {self.n_classes}), "
                f"got {tuple(values.shape)}"
            )
        if self._eval is None:
            self._eval = np.empty((self.n, self.n_classes), dtype=np.float32)
        self._eval[pos] = values
        self._eval_seen[pos] = True
        self._eval_epoch = self._epoch

    def log_oof(self, ids: Any, probs: Any) -> None:
        """Record out-of-fold probabilities from the user's own cross-validation.

        Parameters
        ----------
        ids : array-like of shape (n,), int
        probs : array-like of shape (n, n_classes)
            Row i from a model that never trained on example ids[i] (softmax outputs).
        """
        pos = self._positions(ids)
        values = _host(probs)
        if values.shape != (pos.shape[0], self.n_classes):
            raise InputError(
                f"oof probs: expected shape ({pos.shape[0]}, {self.n_classes}), "
                f"got {tuple(values.shape)}"
            )
        if not np.isfinite(values).all() or values.min() < -1e-6 or values.max() > 1 + 1e-6:
            raise InputError("oof probs: expected probabilities in [0, 1] (softmax outputs)")
        if self._oof is None:
            self._oof = np.zeros((self.n, self.n_classes), dtype=np.float32)
        self._oof[pos] = values
        self._oof_seen[pos] = True

    def end_epoch(self) -> None:
        """Close the epoch: derive its per-example statistics and flush them to disk."""
        n_seen = int(np.count_nonzero(self._seen))
        if n_seen == 0:
            raise InputError("end_epoch: nothing was logged in this epoch; call log() per batch")
        if self._world == 1 and n_seen < self.n:
            missing = self.ids[~self._seen]
            raise InputError(
                f"end_epoch: epoch {self._epoch + 1} of run {self._run + 1} logged {n_seen:,} of "
                f"{self.n:,} examples (e.g. id {missing[0]} is missing); log every training "
                "batch, or give Recorder only the ids you train on"
            )
        pos = np.flatnonzero(self._seen)  # (n,)
        logits = self._buf if n_seen == self.n else self._buf[pos]  # (n, K)
        self._epoch += 1
        # A candidate for EL2N's epoch keeps its softmax: float16, as a run stores it anyway.
        candidate = self.early_epoch is None or self.early_epoch == self._epoch
        stats, probs = epoch_stats(logits, self.labels[pos], probs=candidate)  # (4, n)
        arrays: dict[str, np.ndarray] = {"pos": pos, "stats": stats}
        if probs is not None:
            arrays["probs"] = probs.astype(np.float16)
        _scratch(self._space / f"r{self._run}e{self._epoch}.npz", **arrays)
        self._last, self._seen = self._seen, self._last
        self._seen[:] = False

    def end_run(
        self,
        *,
        test_logits: Any = None,
        test_labels: Any = None,
        test_ids: Any = None,
        features: Any = None,
        feature_ids: Any = None,
        test_features: Any = None,
    ) -> None:
        """Close a run (one seed): its final predictions and, optionally, held-out evidence.

        Parameters
        ----------
        test_logits : tensor or array-like of shape (n_test, n_classes), optional
            The final model's logits on held-out rows (test accuracy, held-out label
            quality).
        test_labels : array-like of shape (n_test,), int, optional
            Required with `test_logits`.
        test_ids : array-like of shape (n_test,), int, optional
            Ids of the held-out rows. Default 0..n_test-1, or with a dataset its held-out
            split's ids when the sizes match.
        features : tensor or array-like of shape (n, n_features), optional
            Penultimate features of the final model, rows in `feature_ids` order.
        feature_ids : array-like of shape (n,), optional
            Default: the Recorder's `ids`, in the order they were given.
        test_features : tensor or array-like of shape (n_test, n_features), optional
            The same features of the held-out rows (leakage), in `test_ids` order.
        """
        if self._seen.any():
            raise InputError("end_run: the last epoch is still open; call end_epoch() first")
        if self._epoch == 0:
            raise InputError("end_run: no epoch was recorded in this run; call end_epoch()")
        if self.early_epoch is not None and self._epoch < self.early_epoch:
            raise InputError(
                f"end_run: run {self._run + 1} recorded {self._epoch} epochs, fewer than "
                f"early_epoch={self.early_epoch} (EL2N's epoch); lower early_epoch"
            )
        if self._eval_epoch is not None:
            self._flush_eval()
        pos = np.flatnonzero(self._last)
        arrays: dict[str, np.ndarray] = {
            "pos": pos,
            "probs_final": softmax(self._buf if pos.shape[0] == self.n else self._buf[pos]),
        }
        has_test = test_logits is not None
        if has_test != (test_labels is not None):
            raise InputError("end_run: give test_logits and test_labels together")
        if has_test:
            probs = softmax(_host(test_logits))
            labels = _int_vector(test_labels, "test_labels")
            if probs.ndim != 2 or probs.shape != (labels.shape[0], self.n_classes):
                raise InputError(
                    f"test_logits: expected shape ({labels.shape[0]}, {self.n_classes}) for "
                    f"{labels.shape[0]} test labels, got {tuple(probs.shape)}"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
                raise InputError(f"test_labels: expected class indices in [0, {self.n_classes})")
            ids = self._test_ids(test_ids, labels.shape[0])
            arrays.update(test_ids=ids, test_labels=labels, test_probs=probs)
            if test_features is not None:
                tf = _host(test_features)
                if tf.ndim != 2 or tf.shape[0] != ids.shape[0]:
                    raise InputError(
                        f"test_features: expected shape ({ids.shape[0]}, n_features), "
                        f"got {tuple(tf.shape)}"
                    )
                arrays["test_features"] = tf
        elif test_features is not None:
            raise InputError("end_run: test_features go with test_logits and test_labels")
        if features is not None:
            feats = _host(features)
            fpos = self._order_positions() if feature_ids is None else self._positions(feature_ids)
            if feats.ndim != 2 or feats.shape[0] != fpos.shape[0]:
                raise InputError(
                    f"features: expected shape ({fpos.shape[0]}, n_features), "
                    f"got {tuple(feats.shape)}"
                )
            if not np.isfinite(feats).all():
                raise InputError("features: expected finite numbers, got NaN or infinite values")
            arrays.update(feature_pos=fpos, features=feats)
        _scratch(self._space / f"r{self._run}end.npz", **arrays)
        self._extras.append({"test": has_test, "features": features is not None})
        self._epochs.append(self._epoch)
        self._run += 1
        self._epoch = 0
        self._last[:] = False

    def finish(self) -> Path:
        """Write the recording as a done run folder in the cache and return its path.

        Every rank calls it (distributed training); rank 0 merges the ranks by id and writes
        the run, the others wait for it. Returns the same path on every rank.
        """
        if self._finished is not None:
            return self._finished
        if self._seen.any() or self._epoch:
            raise InputError("finish: a run is still open; call end_epoch() and end_run() first")
        if self._oof is not None:
            _scratch(self._space / "oof.npz", pos=np.flatnonzero(self._oof_seen), probs=self._oof)
        store.write_json(
            self._space / _RANK_FILE,
            {"epochs": self._epochs, "extras": self._extras, "oof": self._oof is not None},
        )
        path: Path | None = None
        error: str | None = None
        if self._world > 1:
            torch.distributed.barrier()
        if self._rank == 0:
            try:
                path = self._write_run()
            except Exception as err:
                # The recording stays on disk, so `finish()` can be called again.
                error = str(err) if isinstance(err, InputError) else f"{type(err).__name__}: {err}"
                if self._world == 1:
                    raise
        if self._world > 1:
            box = [str(path) if path else None, error]
            torch.distributed.broadcast_object_list(box, src=0)
            if box[1] is not None:
                raise InputError(f"finish failed on rank 0: {box[1]}")
            path = Path(box[0])
            torch.distributed.barrier()  # every rank has its answer before the files go
        if self._rank == 0:
            shutil.rmtree(self._space.parent, ignore_errors=True)
            with contextlib.suppress(OSError):  # the last recording: no empty folder left
                self._space.parent.parent.rmdir()
        self._finished = path
        return path  # type: ignore[return-value]

    # -- positions -----------------------------------------------------------------------

    def _positions(self, ids: Any) -> np.ndarray:
        """Row of each id in the run's (sorted) order; InputError for an id never given."""
        batch = _int_vector(ids, "ids")
        if self._direct:
            if batch.size and (batch.min() < 0 or batch.max() >= self.n):
                bad = batch[(batch < 0) | (batch >= self.n)][0]
                raise InputError(f"ids: id {bad} is not among the Recorder's ids (0..{self.n - 1})")
            return batch
        pos = np.searchsorted(self.ids, batch)
        pos = np.minimum(pos, self.n - 1)
        wrong = self.ids[pos] != batch
        if wrong.any():
            raise InputError(f"ids: id {batch[wrong][0]} is not among the Recorder's ids")
        return pos

    def _order_positions(self) -> np.ndarray:
        """Rows of the ids in the order the user gave them."""
        pos = np.empty(self.n, dtype=np.int64)
        pos[self._order] = np.arange(self.n)
        return pos

    def _test_ids(self, test_ids: Any, m: int) -> np.ndarray:
        if test_ids is not None:
            ids = _int_vector(test_ids, "test_ids")
            if ids.shape[0] != m:
                raise InputError(f"test_ids: expected {m} ids (one per test row), got {ids.size}")
            if np.unique(ids).shape[0] != m:
                raise InputError("test_ids: expected unique ids")
            if self.data_config is not None:
                known = np.asarray(self._link["test_ids"])
                if not np.isin(ids, known).all():
                    raise InputError(
                        "test_ids: expected ids of the dataset's held-out split "
                        f"({len(known):,} rows)"
                    )
            return ids
        if self.data_config is not None:
            known = np.asarray(self._link["test_ids"], dtype=np.int64)
            if known.shape[0] != m:
                raise InputError(
                    f"end_run: {m} test rows, but the dataset's held-out split has "
                    f"{known.shape[0]:,}; give test_ids"
                )
            return known
        return np.arange(m, dtype=np.int64)

    def _flush_eval(self) -> None:
        """Write the eval pass logged after epoch `_eval_epoch` (softmax, float32)."""
        pos = np.flatnonzero(self._eval_seen)
        if self._world == 1 and pos.shape[0] < self.n:
            raise InputError(
                f"log_eval: the eval pass after epoch {self._eval_epoch} covered "
                f"{pos.shape[0]:,} of {self.n:,} examples; evaluate every training example"
            )
        assert self._eval is not None  # set with _eval_epoch
        probs = softmax(self._eval if pos.shape[0] == self.n else self._eval[pos])
        _scratch(self._space / f"r{self._run}v{self._eval_epoch}.npz", pos=pos, probs=probs)
        self._eval_seen[:] = False
        self._eval_epoch = None

    # -- the run folder ------------------------------------------------------------------

    def _write_run(self) -> Path:
        """Merge every rank's recording and write the run folder (rank 0)."""
        space = self._space.parent
        ranks = sorted(space.glob(f"rank*/{_RANK_FILE}"))
        records = [store.read_json(f) for f in ranks]
        folders = [f.parent for f in ranks]
        epochs = records[0]["epochs"]
        if any(r["epochs"] != epochs for r in records):
            raise InputError(
                "finish: the ranks recorded different runs or epochs "
                f"({[r['epochs'] for r in records]}); every rank logs every epoch"
            )
        has_oof = any(r["oof"] for r in records)
        if not epochs and not has_oof:
            raise InputError("finish: nothing was recorded; log epochs and call end_run()")
        if len(set(epochs)) > 1:
            raise InputError(f"finish: every run needs the same number of epochs, got {epochs}")
        n_epochs = epochs[0] if epochs else 0
        early = self.early_epoch or max(1, round(0.1 * n_epochs))
        if epochs and early > n_epochs:
            raise InputError(f"early_epoch {early} is beyond the {n_epochs} recorded epochs")
        extras = [
            {k: any(r["extras"][i][k] for r in records) for k in ("test", "features")}
            for i in range(len(epochs))
        ]
        ds = self._dataset()
        fingerprint = ds.fingerprint
        key = self.key
        rd = store.RunDir(store.run_dir(self.cache_dir, fingerprint, key))
        if rd.path.exists():
            shutil.rmtree(rd.path)
        rd.path.mkdir(parents=True)
        store.write_status(rd.path, "running", progress=0.0, message="writing the recording")
        try:
            return self._write_files(rd, folders, epochs, extras, early, ds, has_oof)
        except Exception as err:
            message = str(err) if isinstance(err, InputError) else f"{type(err).__name__}: {err}"
            store.write_status(rd.path, "failed", message=message)
            raise

    def _write_files(
        self,
        rd: store.RunDir,
        folders: list[Path],
        epochs: list[int],
        extras: list[dict[str, bool]],
        early: int,
        ds: data.Dataset,
        has_oof: bool,
    ) -> Path:
        """Everything in the run folder, `done` last (`_write_run` made the folder)."""
        n_epochs = epochs[0] if epochs else 0
        t0 = time.perf_counter()
        test_rows = _merge_test(folders, len(epochs)) if any(e["test"] for e in extras) else None
        if test_rows is not None:
            test_ids, test_labels = test_rows
            ds = _with_test(ds, test_ids, test_labels, self.data_config is not None)
        recording: dict[str, Any] = {
            "ranks": len(folders),
            "runs": len(epochs),
            "epochs": n_epochs,
            "early_epoch": early if epochs else None,
            "logged_per_epoch": [],
        }
        light: list[dict[str, np.ndarray]] = []
        for r in range(len(epochs)):
            light.append(self._assemble_run(rd, folders, r, n_epochs, early, ds, recording))
        oof = _merge_rows(folders, "oof.npz", self.n, self.n_classes) if has_oof else None
        if has_oof and oof is None:
            raise InputError("log_oof: the out-of-fold probabilities do not cover every id")
        available = set(_ALWAYS) if epochs else {"labels", "label_prior", "n_prototypes"}
        if oof is not None:
            available.add("oof_probs")
        features_note = None
        if epochs and extras[0]["features"]:
            feats = store.load_arrays(rd.run_file(0)).get("features")
            if feats is not None:
                store.save_arrays(rd.features_free_file, features=feats.astype(np.float32))
                available.add("features_free")
                features_note = (
                    "run 0's penultimate features (trained on the given labels, so not label-free)"
                )
                test_feats = _merge_test_features(folders, ds.test.ids)
                if test_feats is not None:
                    store.save_arrays(rd.features_free_test_file, features=test_feats)
                    available.add("features_free_test")
        keys = [k for k, s in REGISTRY.items() if set(s.needs) <= available]
        absent = {
            k: "needs " + ", ".join(n for n in s.needs if n not in available)
            for k, s in REGISTRY.items()
            if k not in keys
        }
        recording.update(
            probs_early=recording.get("probs_early"),
            features_free=features_note,
            oof=oof is not None,
            absent_scores=absent,
        )
        prep = self._prepared(rd, ds, keys, len(epochs), n_epochs, early)
        store.write_json(rd.config_file, self._config_record(prep, recording))
        rd.write_split(
            store.RunSplit(
                train_ids=self.ids,
                test_ids=np.asarray(ds.test.ids, dtype=np.int64),
                labels=self.labels,
                true_labels=np.asarray(ds.train.labels, dtype=np.int64),
                test_labels=np.asarray(ds.test.labels, dtype=np.int64),
            )
        )
        store.write_status(rd.path, "running", progress=0.9, message="scoring the recording")
        scores = results.compute_scores(prep, oof)
        if "features_free_test" in available:
            frame, per_run = results.score_frames(prep, scores)
        else:  # no held-out features: which rows leak is unknown, so `leak_of` is left out
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
        if self.data_config is not None or self.inputs is not None:
            results.write_examples(prep)
        summary = results.summarize(prep, light, scores, {"scoring": time.perf_counter() - t0})
        if not light or not all(e["test"] for e in extras):  # no held-out logits: unknown
            summary.update(test_accuracy=[], test_accuracy_mean=None, test_accuracy_std=None)
        summary["absent_scores"] = absent
        store.write_json(rd.summary_file, summary)
        rd.write_meta(name=self.name)
        store.write_status(rd.path, "done", progress=1.0, message="done", files=rd.digest())
        return rd.path

    def _dataset(self) -> data.Dataset:
        """The run's examples as a `data.Dataset`: the linked source's rows, or the ids."""
        if self.data_config is not None:
            full = data.load(self.data_config, hf_cache_dir=str(store.hf_cache_dir(self.cache_dir)))
            at = np.searchsorted(full.train.ids, self.ids)  # ids were checked at construction
            inputs = full.train.inputs
            train_inputs = inputs[at] if isinstance(inputs, np.ndarray) else [inputs[i] for i in at]
            return dataclasses.replace(
                full, train=data.Split(self.ids, train_inputs, full.train.labels[at])
            )
        content = hashlib.sha256(b"recorded\0")
        content.update(self.ids.tobytes())
        content.update(self.labels.tobytes())
        content.update(json.dumps(self.label_names).encode())
        if self.inputs is not None:
            modality, inputs = self.inputs
        else:
            # Nothing to show; unique placeholders so no two rows count as exact copies.
            modality, inputs = "none", [f"\x00id {i}" for i in self.ids]
        return data.Dataset(
            train=data.Split(self.ids, inputs, self.labels),
            test=data.Split(np.zeros(0, np.int64), [], np.zeros(0, np.int64)),
            label_names=self.label_names,
            modality=modality,
            input_cols=(),
            label_col="label",
            fingerprint=content.hexdigest()[:16],
            test_origin="given",
            description="own data",
        )

    def _assemble_run(
        self,
        rd: store.RunDir,
        folders: list[Path],
        r: int,
        n_epochs: int,
        early: int,
        ds: data.Dataset,
        recording: dict[str, Any],
    ) -> dict[str, np.ndarray]:
        """Merge run r's epochs over the ranks into `runs/run_r.npz`; return its light part.

        The (T, N) statistics are assembled row by row in memory-mapped files and packed from
        there (`store.save_npz_files`), so memory stays one epoch's worth.
        """
        n, k = self.n, self.n_classes
        work = self._space.parent / f"assemble{r}"
        work.mkdir(exist_ok=True)
        stats = {
            name: np.lib.format.open_memmap(
                work / f"{name}32.npy", mode="w+", dtype=np.float32, shape=(n_epochs, n)
            )
            for name in STATS
        }
        correct = np.lib.format.open_memmap(
            work / "correct.npy", mode="w+", dtype=np.bool_, shape=(n_epochs, n)
        )
        top = dict.fromkeys(STATS, 0.0)
        per_epoch = []
        for t in range(n_epochs):
            row = np.zeros((len(STATS), n), dtype=np.float32)
            count = np.zeros(n, dtype=np.int64)
            for folder in reversed(folders):  # lowest rank last: its values win
                got = store.load_arrays(folder / f"r{r}e{t + 1}.npz")
                row[:, got["pos"]] = got["stats"]
                count[got["pos"]] += 1
            if (count == 0).any():
                raise InputError(
                    f"finish: epoch {t + 1} of run {r + 1}: no rank logged id "
                    f"{self.ids[count == 0][0]} ({int((count == 0).sum()):,} ids missing)"
                )
            per_epoch.append([int(count.min()), int(count.max())])
            for i, name in enumerate(STATS):
                stats[name][t] = row[i]
                if name in COMPACT:
                    top[name] = max(top[name], float(np.abs(row[i]).max()))
            correct[t] = row[1] > row[2]  # the given label's logit beats every other one
        recording["logged_per_epoch"].append(per_epoch)
        files: dict[str, Path] = {}
        for name in STATS:
            # float16 where the values fit, as `steps.compact` stores a built-in run's.
            if name in COMPACT and top[name] < _F16_MAX:
                small = np.lib.format.open_memmap(
                    work / f"{name}.npy", mode="w+", dtype=np.float16, shape=(n_epochs, n)
                )
                for t in range(n_epochs):
                    small[t] = stats[name][t]
                small.flush()
                files[name] = work / f"{name}.npy"
            else:
                stats[name].flush()
                files[name] = work / f"{name}32.npy"
        correct.flush()
        files["correct"] = work / "correct.npy"
        del stats, correct
        # EL2N's probabilities: the eval pass after epoch t when logged, else its training pass.
        source = "eval pass"
        early_probs = _merge_rows(folders, f"r{r}v{early}.npz", n, k)
        if early_probs is None:
            source = "training pass"
            early_probs = _merge_rows(folders, f"r{r}e{early}.npz", n, k)
        if early_probs is None:
            raise InputError(f"finish: EL2N's epoch {early} of run {r + 1} misses ids")
        recording["probs_early"] = source
        end = _merge_rows(folders, f"r{r}end.npz", n, k, key="probs_final")
        final = _merge_rows(folders, f"r{r}v{n_epochs}.npz", n, k)
        probs_final = final if final is not None else end
        if probs_final is None:
            raise InputError(f"finish: the last epoch of run {r + 1} misses ids")
        arrays: dict[str, np.ndarray] = {
            "probs_early": early_probs.astype(np.float16),
            "probs_final": probs_final.astype(np.float32),
        }
        feats = _merge_features(folders, r, n)
        if feats is not None:
            arrays["features"] = feats
        test_probs = _merge_test_probs(folders, r, np.asarray(ds.test.ids), k)
        if test_probs is not None:
            labels = np.asarray(ds.test.labels)
            arrays["test_probs"] = test_probs
            acc = float((test_probs.argmax(1) == labels).mean()) if labels.size else np.nan
            arrays["test_accuracy"] = np.float64(acc)
        else:
            arrays["test_accuracy"] = np.float64(np.nan)
        for name, value in results_compact(arrays).items():
            np.save(work / f"{name}.npy", value)
            files[name] = work / f"{name}.npy"
        store.save_npz_files(rd.run_file(r), files)
        shutil.rmtree(work)
        light = {"test_accuracy": arrays["test_accuracy"], "probs_final": arrays["probs_final"]}
        if "test_probs" in arrays:
            light["test_probs"] = arrays["test_probs"]
        return light

    def _prepared(
        self,
        rd: store.RunDir,
        ds: data.Dataset,
        keys: list[str],
        n_runs: int,
        n_epochs: int,
        early: int,
    ) -> Prepared:
        """What `training.results` reads of a run, for this recording."""
        config = ScoreConfig(
            data=self.data_config or DataConfig(source=""),
            train=TrainConfig(
                recipe=self.kind, runs=n_runs, epochs=n_epochs or None, early_epoch=early
            ),
            scores=tuple(keys),
        )
        recipe = Recipe(self.kind, n_epochs, 0, "", 0.0, 0.0, early)
        return Prepared(
            config=config,
            dataset=ds,
            recipe=recipe,
            labels=self.labels,
            noisy=None,
            score_keys=keys,
            device=torch.device("cpu"),
            path=rd.path,
            grad_plan=GradPlan((), None, "all", ()),
        )

    def _config_record(self, prep: Prepared, recording: dict[str, Any]) -> dict[str, Any]:
        """`config.json` of a recorded run: what a scored one holds, plus `source` and
        `recording`; the recipe's training settings are unknown (None)."""
        ds = prep.dataset
        recipe = {
            "name": self.kind,
            "epochs": prep.recipe.epochs,
            "batch_size": None,
            "optimizer": None,
            "lr": None,
            "weight_decay": None,
            "early_epoch": recording["early_epoch"],
        }
        return {
            "scoring_version": SCORING_VERSION,
            "key": self.key,
            "source": self.kind,
            "config": prep.config.to_dict(),
            "recipe": recipe,
            "dataset": dataset_record(ds),
            "score_keys": prep.score_keys,
            "recording": recording,
            "device": None,  # the user's own
            "git_revision": _git_revision(),  # Winnow's, which scored the recording
            "created": time.time(),
        }


# -- arithmetic ------------------------------------------------------------------------------


def epoch_stats(
    logits: np.ndarray, labels: np.ndarray, *, probs: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-example statistics of one epoch's training pass, as `loop._epoch_stats`.

    Parameters
    ----------
    logits : ndarray of shape (n_examples, n_classes), float32
    labels : ndarray of shape (n_examples,)
    probs : bool
        Also return the softmax (sharing the exponentials).

    Returns
    -------
    stats : ndarray of shape (4, n_examples), float32
        Rows `STATS`: cross-entropy loss, logit of the given label, largest other logit,
        softmax probability of the given label.
    probs : ndarray of shape (n_examples, n_classes), float32, or None
    """
    rows = np.arange(logits.shape[0])
    top = logits.max(axis=1, keepdims=True)  # (N, 1)
    shifted = logits - top  # (N, K)
    out = np.empty((len(STATS), logits.shape[0]), dtype=np.float32)
    out[0] = -shifted[rows, labels]
    np.exp(shifted, out=shifted)  # reuse the buffer: exp(logit - max)
    total = shifted.sum(axis=1)  # (N,)
    out[0] += np.log(total)  # loss = logsumexp - logit_y
    p = None
    if probs:
        p = shifted
        p /= total[:, None]
    out[1] = logits[rows, labels]
    other = logits.copy()  # the other classes' logits, exactly (no shift and back)
    other[rows, labels] = -np.inf
    out[2] = other.max(axis=1)
    out[3] = np.exp(-out[0])
    return out, p


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, float32: (n, K) -> (n, K)."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def results_compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of a run as stored: `steps.COMPACT` ones in float16 when they fit."""
    out = dict(arrays)
    for name in COMPACT:
        a = out.get(name)
        if a is not None and a.dtype == np.float32 and np.abs(a).max() < _F16_MAX:
            out[name] = a.astype(np.float16)
    return out


# -- merging ranks ---------------------------------------------------------------------------


def _merge_rows(
    folders: list[Path], file: str, n: int, k: int, *, key: str = "probs"
) -> np.ndarray | None:
    """(N, K) rows keyed by `pos` over the ranks' `file`; None when absent or incomplete."""
    out = None
    seen = np.zeros(n, dtype=bool)
    for folder in reversed(folders):  # lowest rank last: its values win
        path = folder / file
        if not path.exists():
            continue
        got = store.load_arrays(path)
        if out is None:
            out = np.zeros((n, k), dtype=got[key].dtype)
        out[got["pos"]] = got[key]
        seen[got["pos"]] = True
    return out if out is not None and seen.all() else None


def _merge_features(folders: list[Path], r: int, n: int) -> np.ndarray | None:
    """Run r's penultimate features (N, D) float32, merged over the ranks by id."""
    out, seen = None, np.zeros(n, dtype=bool)
    for folder in reversed(folders):
        got = store.load_arrays(folder / f"r{r}end.npz")
        if "features" not in got:
            continue
        if out is None:
            out = np.zeros((n, got["features"].shape[1]), dtype=np.float32)
        elif got["features"].shape[1] != out.shape[1]:
            raise InputError("features: the ranks gave features of different widths")
        out[got["feature_pos"]] = got["features"]
        seen[got["feature_pos"]] = True
    if out is None:
        return None
    if not seen.all():
        raise InputError(
            f"features: given for {int(seen.sum()):,} of {n:,} examples; give every example's"
        )
    return out


def _merge_test(folders: list[Path], n_runs: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The held-out ids (sorted) and labels, the union over ranks and runs."""
    labels: dict[int, int] = {}
    for folder in folders:
        for r in range(n_runs):
            got = store.load_arrays(folder / f"r{r}end.npz")
            if "test_ids" not in got:
                continue
            for i, y in zip(got["test_ids"].tolist(), got["test_labels"].tolist(), strict=True):
                if labels.setdefault(i, y) != y:
                    raise InputError(
                        f"test_labels: test id {i} was given two labels ({labels[i]}, {y})"
                    )
    if not labels:
        return None
    ids = np.array(sorted(labels), dtype=np.int64)
    return ids, np.array([labels[i] for i in ids.tolist()], dtype=np.int64)


def _merge_test_probs(
    folders: list[Path], r: int, test_ids: np.ndarray, k: int
) -> np.ndarray | None:
    """Run r's held-out probabilities (M, K) in `test_ids` order; None when not given."""
    if test_ids.size == 0:
        return None
    out = np.zeros((test_ids.shape[0], k), dtype=np.float32)
    seen = np.zeros(test_ids.shape[0], dtype=bool)
    found = False
    for folder in reversed(folders):
        got = store.load_arrays(folder / f"r{r}end.npz")
        if "test_probs" not in got:
            continue
        found = True
        at = np.searchsorted(test_ids, got["test_ids"])
        out[at] = got["test_probs"]
        seen[at] = True
    if not found:
        return None
    if not seen.all():
        raise InputError(
            f"test_logits: run {r + 1} gave {int(seen.sum()):,} of the {seen.size:,} held-out "
            "rows the runs name; give every run the same held-out rows"
        )
    return out


def _merge_test_features(folders: list[Path], test_ids: np.ndarray) -> np.ndarray | None:
    """Run 0's held-out features (M, D) float32 in `test_ids` order; None when not given."""
    out = None
    for folder in reversed(folders):
        got = store.load_arrays(folder / "r0end.npz")
        if "test_features" not in got:
            continue
        if out is None:
            out = np.zeros((test_ids.shape[0], got["test_features"].shape[1]), np.float32)
        out[np.searchsorted(test_ids, got["test_ids"])] = got["test_features"]
    return out


def _with_test(
    ds: data.Dataset, test_ids: np.ndarray, test_labels: np.ndarray, linked: bool
) -> data.Dataset:
    """`ds` whose held-out split is the rows the runs gave logits for."""
    if linked:  # the source's held-out rows: keep their inputs (and the source's labels)
        at = np.searchsorted(ds.test.ids, test_ids)
        inputs = ds.test.inputs
        taken = inputs[at] if isinstance(inputs, np.ndarray) else [inputs[i] for i in at]
        test = data.Split(test_ids, taken, test_labels)
    else:
        test = data.Split(test_ids, [f"\x00test id {i}" for i in test_ids], test_labels)
    return dataclasses.replace(ds, test=test)


def _predictions(prep: Prepared, light: list[dict[str, np.ndarray]], oof: np.ndarray | None) -> Any:
    """`predictions.parquet`: the runs' final predictions (`results.predictions`); with no
    recorded epochs (out-of-fold probabilities only), the out-of-fold ones stand in."""
    if light:
        return results.predictions(prep, light, oof)
    assert oof is not None  # `_write_run` refuses a recording with neither
    return results.predictions(prep, [{"probs_final": oof}], oof)


# -- input checks ----------------------------------------------------------------------------


def _scratch(path: Path, **arrays: np.ndarray) -> None:
    """A recording's own flush: a plain `.npz`, without the fsync of the store's atomic
    writes (a flush that dies with its process is lost with the rest of the recording;
    `finish` writes the run folder through the store)."""
    np.savez(path, **arrays)


def _host(x: Any) -> np.ndarray:
    """A tensor or array on the host as float32 numpy (one device-to-host copy for a tensor)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype != torch.float32:
            x = x.float()
        return x.cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"expected numbers (a tensor or an array), got {type(x).__name__}"
        ) from err
    return arr


def _int_vector(x: Any, what: str) -> np.ndarray:
    """A 1-D int64 array from a tensor, an array or a list; InputError otherwise."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise InputError(f"{what}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
            return arr.astype(np.int64)
        raise InputError(
            f"{what}: expected integers, got dtype {arr.dtype}; map your ids or labels to "
            "integers (e.g. row numbers, class indices)"
        )
    return arr.astype(np.int64, copy=False)


def _label_names(names: Sequence[str] | None, k: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(k)]
    names = [str(n) for n in names]
    if len(names) != k:
        raise InputError(f"label_names: expected {k} names (one per class), got {len(names)}")
    if len(set(names)) != k:
        raise InputError("label_names: expected distinct names")
    return names


def _data_config(dataset: str | DataConfig | None) -> DataConfig | None:
    if dataset is None:
        return None
    if isinstance(dataset, str):
        dataset = DataConfig(source=dataset)
    if not isinstance(dataset, DataConfig):
        raise InputError(
            f"dataset: expected a source (e.g. 'digits', a file) or a DataConfig, got {dataset!r}"
        )
    ScoreConfig(data=dataset).validate()
    return dataset


def _check_link(cfg: DataConfig, ids: np.ndarray, k: int, cache_dir: Path) -> dict[str, Any]:
    """Load the linked source once, before training: the ids must be its training rows."""
    ds = data.load(cfg, hf_cache_dir=str(store.hf_cache_dir(cache_dir)))
    if len(ds.label_names) != k:
        raise InputError(
            f"num_classes is {k} but {ds.description} has {len(ds.label_names)} classes "
            f"({', '.join(ds.label_names[:10])})"
        )
    known = np.isin(ids, ds.train.ids)
    if not known.all():
        raise InputError(
            f"ids: id {ids[~known][0]} is not a training row of {ds.description} "
            f"({len(ds.train.ids):,} training rows after its held-out split); with dataset=, "
            "ids are the source's row ids of its training split. A source without a test "
            "split has a share carved off (test_fraction); if you trained on every row, "
            "link your held-out file too (DataConfig(test=...), `--test FILE`) so nothing is "
            "carved, or record without a data source"
        )
    order = np.argsort(ds.train.ids, kind="stable")
    rows = order[np.searchsorted(ds.train.ids[order], ids)]
    return {
        "label_names": list(ds.label_names),
        "test_ids": ds.test.ids.tolist(),
        "labels": np.asarray(ds.train.labels[rows], dtype=np.int64),  # (N,) in `ids` order
    }


def _check_inputs(inputs: Any, n: int, order: np.ndarray) -> tuple[str, Any]:
    """Display inputs in the run's order: ("image", (N, C, H, W) float32) or ("text", list)."""
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "uif" and inputs.ndim >= 3:
        if inputs.shape[0] != n:
            raise InputError(f"inputs: expected {n} images (one per id), got {inputs.shape[0]}")
        x = inputs[order]
        if x.ndim == 3:  # (N, H, W) grey
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise InputError(
                f"inputs: expected images (N, H, W), (N, H, W, C) or (N, C, H, W) with 1 or 3 "
                f"channels, got shape {inputs.shape}"
            )
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / np.float32(255)
        elif x.min() < 0 or x.max() > 1:
            raise InputError("inputs: float images must lie in [0, 1] (or give uint8 pixels)")
        return "image", np.ascontiguousarray(x, dtype=np.float32)
    if isinstance(inputs, np.ndarray | list | tuple):
        items = list(inputs)
        if len(items) != n:
            raise InputError(f"inputs: expected {n} texts (one per id), got {len(items)}")
        ok = all(
            isinstance(t, str)
            or (isinstance(t, tuple) and len(t) == 2 and all(isinstance(p, str) for p in t))
            for t in items
        )
        if ok:
            return "text", [items[i] for i in order]
    raise InputError(
        "inputs: expected images as an array (N, H, W[, C]) or texts as a list of str "
        "(or (str, str) pairs), one per id"
    )


def _distributed() -> tuple[int, int]:
    """(rank, world size) of `torch.distributed` when initialized, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _shared_key(name: str, rank: int, world: int) -> str:
    """A new run key; rank 0's, broadcast, under distributed training."""
    key = hashlib.sha256(
        f"{name}\0{time.time_ns()}\0{os.getpid()}\0{secrets.token_hex(8)}".encode()
    ).hexdigest()[:16]
    if world > 1:
        box = [key]
        torch.distributed.broadcast_object_list(box, src=0)
        key = box[0]
    return key
