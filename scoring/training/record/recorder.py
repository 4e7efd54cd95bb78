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
examples it trained on; `end_epoch` checks that the ranks together logged every id (one
all-reduce of an (N,) count), so a sampler that drops examples fails at the first epoch;
`finish` merges the ranks by id (a barrier, then rank 0 writes the run). Ranks share the
cache folder (one machine, or a shared file system). An id logged more than once in an epoch
is recorded once: within a rank its last logging, across ranks the lowest rank's. That is
`DistributedSampler`'s padding when N is not a multiple of the world size: it repeats the
first few ids of the epoch's order on other ranks, so rank 0's (or the lowest rank's) copy
is kept, and `config.json`'s ``logged_per_epoch`` says [1, 2] for that epoch.

What is recorded, and the scores it gives (scores whose inputs were not given are left
out, and `summary.json`'s ``absent_scores`` says what each would need):

- the training pass (`log`, every epoch): forgetting, AUM, data-map confidence /
  variability / correctness, loss, and EL2N from the training pass at EL2N's epoch;
- an eval pass (`log_eval`, after `end_epoch`): EL2N at fixed weights, as Data Diet defines
  it, when one is logged after EL2N's epoch (else EL2N comes from that epoch's training
  pass, and `summary.json`'s ``definitions`` says so, per run); the final predictions when
  one follows the last epoch;
- held-out logits (`end_run(test_logits=..., test_labels=...)`): test accuracy, held-out
  label quality;
- features (`end_run(features=...)`): the map; and, only when the user states they are
  label-free (`features_label_free=True`: a model that never saw the labels made them), run
  1's are the embeddings of prototype and the neighbourhood scores. Penultimate features of
  the trained model have seen the labels: without that statement those scores are absent,
  and `summary.json` says why;
- out-of-fold probabilities from the user's own cross-validation (`log_oof`): cl_quality,
  cl_issue, pvi;
- a data source (`dataset=`) or the inputs (`inputs=`): the rows Examples, Mislabeled and
  export show and write.

The Recorder keeps the order of the calls and the counters of runs and epochs; the work is
its package's: `examples` (checking the arguments, ids to rows), `buffer`, `epochs`,
`evidence`, `scratch` (the flushes), `ddp`, and at `finish` `write` (with `merge`,
`assemble`, `describe`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scoring.config import DataConfig
from scoring.errors import InputError
from scoring.training.record.buffer import EpochBuffer, PassBuffer
from scoring.training.record.ddp import (
    barrier,
    rank_and_world,
    ranks_coverage,
    share_outcome,
    shared_key,
)
from scoring.training.record.epochs import epoch_arrays, softmax
from scoring.training.record.evidence import feature_arrays, held_out_arrays
from scoring.training.record.examples import Examples, check_examples
from scoring.training.record.inputs import host
from scoring.training.record.merge import write_rank_record
from scoring.training.record.scratch import (
    OOF_FILE,
    end_file,
    epoch_file,
    eval_file,
    rank_folder,
    remove,
    save,
)
from scoring.training.record.write import write_run


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
        self.examples: Examples = check_examples(
            cache_dir,
            name,
            ids,
            labels,
            num_classes,
            label_names,
            dataset=dataset,
            inputs=inputs,
            early_epoch=early_epoch,
            kind=kind,
        )
        n, k = self.n, self.n_classes
        self._rank, self._world = rank_and_world()
        self.key = shared_key(self.name, self._rank, self._world)
        self._space = rank_folder(self.cache_dir, self.key, self._rank)
        self._train = EpochBuffer(n, k)  # by `log`; flushed by `end_epoch`
        self._eval = PassBuffer(n, k)  # by `log_eval`; flushed by next `log`, `end_run`
        self._eval_epoch: int | None = None  # the epoch the pending eval pass follows
        self._oof = PassBuffer(n, k, zeros=True)  # out-of-fold probabilities
        self._run = 0  # runs ended
        self._epoch = 0  # epochs ended in the current run
        self._epochs: list[int] = []  # epochs of each ended run
        self._extras: list[dict[str, bool]] = []  # per ended run: test, features given
        self._finished: Path | None = None
        self._discarded = False

    # -- what the recording is of (`Examples`) -------------------------------------------

    @property
    def cache_dir(self) -> Path:
        """The cache the run is written to."""
        return self.examples.cache_dir

    @property
    def name(self) -> str:
        """The run's name in lists and captions."""
        return self.examples.name

    @property
    def kind(self) -> str:
        """What the runs table calls the run: "recorded" or "imported"."""
        return self.examples.kind

    @property
    def n_classes(self) -> int:
        """K, the number of classes."""
        return self.examples.n_classes

    @property
    def early_epoch(self) -> int | None:
        """EL2N's epoch (1-based) as given; None: about 10% of the epochs."""
        return self.examples.early_epoch

    @property
    def ids(self) -> np.ndarray:
        """(n_examples,) the ids, sorted: the row order of every file of the run."""
        return self.examples.ids

    @property
    def n(self) -> int:
        """N, the number of examples."""
        return self.examples.n

    @property
    def labels(self) -> np.ndarray:
        """(n_examples,) the labels trained on, in `ids` order."""
        return self.examples.labels

    @property
    def label_names(self) -> list[str]:
        """The K class names."""
        return self.examples.label_names

    @property
    def data_config(self) -> DataConfig | None:
        """The linked data source, if any."""
        return self.examples.data_config

    @property
    def inputs(self) -> tuple[str, Any] | None:
        """Display inputs in `ids` order: ("image", (N, C, H, W)) or ("text", list); or None."""
        return self.examples.inputs

    # -- logging -------------------------------------------------------------------------

    def log(self, ids: Any, logits: Any) -> None:
        """Record one training step's logits for the ids of its batch.

        Parameters
        ----------
        ids : array-like or tensor of shape (batch,), int
        logits : tensor or array-like of shape (batch, n_classes)
            The training pass's outputs (before softmax), as the loss saw them.
        """
        self._check_open("log")
        if self._eval_epoch is not None:
            self._flush_eval()
        pos = self.examples.rows(ids)
        values = host(logits)  # (B, K) float32 on the host
        if values.shape != (pos.shape[0], self.n_classes):
            raise InputError(
                f"logits: expected shape ({pos.shape[0]}, {self.n_classes}) for "
                f"{pos.shape[0]} ids and {self.n_classes} classes, got {tuple(values.shape)}"
            )
        _check_finite(values, "log", pos, self.examples)
        self._train.put(pos, values)

    def log_eval(self, ids: Any, logits: Any) -> None:
        """Record an eval pass (fixed weights, no augmentation) made after `end_epoch()`.

        The pass belongs to the weights after the epoch just ended. One after EL2N's epoch
        gives EL2N at fixed weights (Data Diet); one after the last epoch gives the final
        predictions. Call it between `end_epoch()` and the next epoch's first `log`.
        """
        self._check_open("log_eval")
        if self._train.seen.any():
            raise InputError(
                "log_eval: call it after end_epoch(), before the next epoch's first log(): "
                "an eval pass is taken with the weights after a whole epoch"
            )
        if self._epoch == 0:
            raise InputError("log_eval: no epoch has ended in this run yet; call end_epoch() first")
        pos = self.examples.rows(ids)
        values = host(logits)
        if values.shape != (pos.shape[0], self.n_classes):
            raise InputError(
                f"eval logits: expected shape ({pos.shape[0]}, {self.n_classes}), "
                f"got {tuple(values.shape)}"
            )
        _check_finite(values, "log_eval", pos, self.examples)
        self._eval.put(pos, values)
        self._eval_epoch = self._epoch

    def log_oof(self, ids: Any, probs: Any) -> None:
        """Record out-of-fold probabilities from the user's own cross-validation.

        Parameters
        ----------
        ids : array-like of shape (n,), int
        probs : array-like of shape (n, n_classes)
            Row i from a model that never trained on example ids[i] (softmax outputs).
        """
        self._check_open("log_oof")
        pos = self.examples.rows(ids)
        values = host(probs)
        if values.shape != (pos.shape[0], self.n_classes):
            raise InputError(
                f"oof probs: expected shape ({pos.shape[0]}, {self.n_classes}), "
                f"got {tuple(values.shape)}"
            )
        if not np.isfinite(values).all() or values.min() < -1e-6 or values.max() > 1 + 1e-6:
            raise InputError("oof probs: expected probabilities in [0, 1] (softmax outputs)")
        self._oof.put(pos, values)

    def end_epoch(self) -> None:
        """Close the epoch: check every id was logged (by some rank), derive the epoch's
        per-example statistics and flush them to disk."""
        self._check_open("end_epoch")
        # Under DDP, a collective every rank reaches before any check can raise: the ranks
        # fail together, at this epoch, not at `finish` after all the training.
        self._check_coverage(ranks_coverage(self._train.seen, self._world))
        pos, logits = self._train.logged()  # (n,), (n, K)
        self._epoch += 1
        # Every epoch is a candidate for EL2N's while its epoch is unknown (the run's length
        # decides it); the candidates keep their softmax.
        candidate = self.early_epoch is None or self.early_epoch == self._epoch
        arrays = epoch_arrays(pos, logits, self.labels[pos], probs=candidate)
        save(self._space / epoch_file(self._run, self._epoch), **arrays)
        self._train.close()

    def end_run(
        self,
        *,
        test_logits: Any = None,
        test_labels: Any = None,
        test_ids: Any = None,
        features: Any = None,
        feature_ids: Any = None,
        test_features: Any = None,
        features_label_free: bool = False,
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
        features_label_free : bool
            True only when `features` (and `test_features`) come from a model that never saw
            the labels (e.g. a frozen pretrained or self-supervised encoder under a probe):
            then run 1's are the label-free embeddings of prototype, near_dup, outlier and
            leakage. Default False: penultimate features of the trained model have seen the
            labels, so those scores are left out (`summary.json`'s ``absent_scores``).
        """
        self._check_open("end_run")
        self._check_end_run(features is not None, features_label_free)
        if self._eval_epoch is not None:
            self._flush_eval()
        pos, logits = self._train.logged_last()
        arrays: dict[str, np.ndarray] = {"pos": pos, "probs_final": softmax(logits)}
        arrays.update(
            held_out_arrays(self.examples, test_logits, test_labels, test_ids, test_features)
        )
        arrays.update(feature_arrays(self.examples, features, feature_ids))
        save(self._space / end_file(self._run), **arrays)
        self._extras.append(
            {
                "test": test_logits is not None,
                "features": features is not None,
                "features_free": features_label_free,
            }
        )
        self._epochs.append(self._epoch)
        self._run += 1
        self._epoch = 0
        self._train.last[:] = False

    def finish(self) -> Path:
        """Write the recording as a done run folder in the cache and return its path.

        Every rank calls it (distributed training); rank 0 merges the ranks by id and writes
        the run, the others wait for it. Returns the same path on every rank.
        """
        if self._finished is not None:
            return self._finished
        if self._train.seen.any() or self._epoch:
            raise InputError("finish: a run is still open; call end_epoch() and end_run() first")
        if self._oof.values is not None:
            save(self._space / OOF_FILE, pos=np.flatnonzero(self._oof.seen), probs=self._oof.values)
        write_rank_record(self._space, self._epochs, self._extras, self._oof.values is not None)
        path: Path | None = None
        error: str | None = None
        barrier(self._world)
        if self._rank == 0:
            try:
                path = write_run(self.examples, self.key, self._space.parent)
            except Exception as err:
                # The recording stays on disk, so `finish()` can be called again.
                error = str(err) if isinstance(err, InputError) else f"{type(err).__name__}: {err}"
                if self._world == 1:
                    raise
        if self._world > 1:
            path = share_outcome(path, error)
        if self._rank == 0:
            remove(self._space.parent)
        self._finished = path
        return path  # type: ignore[return-value]

    def discard(self) -> None:
        """Remove the recording from disk (its scratch folder) without writing a run: after
        an error you will not retry. The Recorder cannot be used afterwards."""
        remove(self._space.parent)
        self._discarded = True  # every later call is refused by `_check_open`

    def _check_open(self, method: str) -> None:
        """InputError once `finish()` wrote the run or `discard()` dropped it: its scratch
        folder is gone."""
        if self._discarded:
            raise InputError(
                f"{method}: this Recorder's recording was discarded; make a new Recorder"
            )
        if self._finished is not None:
            raise InputError(
                f"{method}: this Recorder has finished (its run is {self._finished}); make a "
                "new Recorder to record another run"
            )

    def _check_end_run(self, features: bool, features_label_free: bool) -> None:
        """InputError unless the run can end: its last epoch closed, EL2N's epoch reached,
        and `features_label_free` a bool that comes with features."""
        if not isinstance(features_label_free, bool):
            raise InputError(
                f"end_run: features_label_free must be True or False, got {features_label_free!r}"
            )
        if features_label_free and not features:
            raise InputError("end_run: features_label_free=True needs features=")
        if self._train.seen.any():
            raise InputError("end_run: the last epoch is still open; call end_epoch() first")
        if self._epoch == 0:
            raise InputError("end_run: no epoch was recorded in this run; call end_epoch()")
        if self.early_epoch is not None and self._epoch < self.early_epoch:
            raise InputError(
                f"end_run: run {self._run + 1} recorded {self._epoch} epochs, fewer than "
                f"early_epoch={self.early_epoch} (EL2N's epoch); lower early_epoch"
            )

    def _check_coverage(self, count: np.ndarray) -> None:
        """InputError unless every id was logged in the epoch; `count` (n_examples,) is how
        many ranks logged each (`ddp.ranks_coverage`), the same on every rank."""
        covered = count > 0
        n_seen = int(np.count_nonzero(covered))
        if n_seen == 0:
            raise InputError("end_epoch: nothing was logged in this epoch; call log() per batch")
        if n_seen == self.n:
            return
        missing = self.ids[~covered]
        where = f"end_epoch: epoch {self._epoch + 1} of run {self._run + 1}"
        if self._world == 1:
            raise InputError(
                f"{where} logged {n_seen:,} of {self.n:,} examples (e.g. id {missing[0]} is "
                "missing); log every training batch, or give Recorder only the ids you train on"
            )
        raise InputError(
            f"{where}: the {self._world} ranks logged {n_seen:,} of {self.n:,} examples "
            f"({missing.size:,} missing, e.g. id {missing[0]}); a DistributedSampler with "
            "drop_last=True leaves examples out: use drop_last=False (its padding repeats a "
            "few ids, which the Recorder keeps once), or give Recorder only the ids you train on"
        )

    def _flush_eval(self) -> None:
        """Write the eval pass logged after epoch `_eval_epoch` (softmax, float32)."""
        pos, logits = self._eval.logged()
        if self._world == 1 and pos.shape[0] < self.n:
            raise InputError(
                f"log_eval: the eval pass after epoch {self._eval_epoch} covered "
                f"{pos.shape[0]:,} of {self.n:,} examples; evaluate every training example"
            )
        save(self._space / eval_file(self._run, self._eval_epoch), pos=pos, probs=softmax(logits))
        self._eval.clear()
        self._eval_epoch = None


def _check_finite(values: np.ndarray, method: str, pos: np.ndarray, examples: Any) -> None:
    """InputError at the step a NaN or infinite logit arrives, naming its example."""
    bad = ~np.isfinite(values).all(axis=1)  # (B,)
    if bad.any():
        first = int(examples.ids[pos[np.flatnonzero(bad)[0]]])
        raise InputError(
            f"{method}: {int(bad.sum())} row(s) of logits are NaN or infinite (first: id "
            f"{first}); the model diverged or the loss overflowed: lower the learning rate "
            "or check the inputs"
        )
