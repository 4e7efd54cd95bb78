"""Record a Hugging Face `Trainer`'s training: `WinnowTrainer`.

The stock callbacks never see per-example outputs, so this is a `Trainer` subclass: its
`compute_loss` takes the batch's ids out of the inputs (the dataset's id column, kept past
`remove_unused_columns`; the row index when the dataset has none), runs the model as the
Trainer would, and logs the training pass's logits to a `Recorder`. Epoch ends close the
Recorder's epochs; EL2N's epoch gets an eval pass over the training set (`predict`, fixed
weights); the end of training closes the run, with the held-out logits of `test_dataset`
when one is given. One `train()` is one run: several seeds are several trainers sharing the
Recorder, then `recorder.finish()` (or `finish_recording()`) writes the run folder.
Under distributed training each rank logs its own batches and `finish` merges them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from scoring.errors import InputError
from scoring.training.record import Recorder


class WinnowTrainer(Trainer):
    """A `transformers.Trainer` that records every training example's logits.

    Parameters
    ----------
    *args, **kwargs
        As for `Trainer`; `train_dataset` is required (a `datasets.Dataset`).
    recorder : Recorder
        Its `ids` are the dataset's ids (`id_column`, or the row index).
    id_column : str
        The dataset column holding the example ids (default "id"). A dataset without it
        gets one holding the row index (0..N-1), also added to `test_dataset`.
    test_dataset : datasets.Dataset, optional
        Held-out rows with labels: their final logits close each run (test accuracy,
        held-out label quality).
    el2n_eval : bool
        An eval pass over the training set after EL2N's epoch (default True): EL2N at fixed
        weights, as Data Diet defines it; without it EL2N reads that epoch's training pass.
    """

    def __init__(
        self,
        *args: Any,
        recorder: Recorder,
        id_column: str = "id",
        test_dataset: Any = None,
        el2n_eval: bool = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(recorder, Recorder):
            raise InputError(f"recorder must be a scoring.record.Recorder, got {recorder!r}")
        train = kwargs.get("train_dataset")
        if train is None:
            raise InputError("WinnowTrainer needs train_dataset= (a datasets.Dataset)")
        kwargs["train_dataset"] = _with_ids(train, id_column, "train_dataset")
        self.recorder, self.id_column, self.el2n_eval = recorder, id_column, el2n_eval
        self.test_dataset = (
            None if test_dataset is None else _with_ids(test_dataset, id_column, "test_dataset")
        )
        super().__init__(*args, **kwargs)
        self.add_callback(_EpochEnds(self))

    def _set_signature_columns_if_needed(self) -> None:
        # Keep the id column through `remove_unused_columns`: compute_loss takes it out.
        super()._set_signature_columns_if_needed()
        if self.id_column not in self._signature_columns:
            self._signature_columns.append(self.id_column)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """The Trainer's loss; in training, the batch's logits go to the Recorder."""
        ids = inputs.pop(self.id_column, None)
        if ids is None or not model.training:  # an eval or predict step: nothing recorded
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[1]
        self.recorder.log(ids, logits)
        return (loss, outputs) if return_outputs else loss

    def early_epoch(self) -> int:
        """EL2N's epoch: the Recorder's, else about 10% of the training epochs."""
        if self.recorder.early_epoch is not None:
            return self.recorder.early_epoch
        return max(1, round(0.1 * float(self.args.num_train_epochs)))

    def eval_pass(self, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
        """Ids and logits of an eval-mode pass over `dataset` (in its row order)."""
        out = self.predict(dataset.remove_columns([self.id_column]))
        logits = out.predictions[0] if isinstance(out.predictions, tuple) else out.predictions
        return np.asarray(dataset[self.id_column]), np.asarray(logits, dtype=np.float32)

    def finish_recording(self) -> Path:
        """`recorder.finish()`: write the run folder (after the last run's `train()`)."""
        return self.recorder.finish()


class _EpochEnds(TrainerCallback):
    """Closes the Recorder's epochs and runs as the Trainer's epochs and training end."""

    def __init__(self, trainer: WinnowTrainer) -> None:
        self.trainer = trainer
        self.epoch = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.epoch = 0
        rec = self.trainer.recorder
        if rec.early_epoch is None:  # fixed now, so only that epoch's probabilities are kept
            rec.early_epoch = self.trainer.early_epoch()

    def on_epoch_end(self, args, state, control, **kwargs):
        t = self.trainer
        t.recorder.end_epoch()
        self.epoch += 1
        if t.el2n_eval and self.epoch == t.early_epoch():
            ids, logits = t.eval_pass(t.train_dataset)
            t.recorder.log_eval(ids, logits)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        t = self.trainer
        extra: dict[str, Any] = {}
        if t.test_dataset is not None:
            label = "label" if "label" in t.test_dataset.column_names else "labels"
            ids, logits = t.eval_pass(t.test_dataset)
            labels = np.asarray(t.test_dataset[label])
            extra = {"test_logits": logits, "test_labels": labels, "test_ids": ids}
        t.recorder.end_run(**extra)
        return control


def _with_ids(dataset: Any, column: str, what: str) -> Any:
    """`dataset` with an id column: its own, or the row index added."""
    names = getattr(dataset, "column_names", None)
    if names is None:
        raise InputError(
            f"{what}: expected a datasets.Dataset (with an {column!r} column, or the row index "
            "is used)"
        )
    if column in names:
        return dataset
    return dataset.add_column(column, list(range(len(dataset))))
