"""Read-side helpers for the app: a finished run as tables, score orientation, normalization.

Pure pandas/numpy (no Streamlit, no torch), so pages stay thin and every number they show is
computed here and tested here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring import store
from scoring.errors import InputError
from scoring.scores.registry import hardness  # noqa: F401  (re-exported: pages orient scores with it)

NORMALIZATIONS = {
    "none": "raw values",
    "class": "z-score within each class",
    "dataset": "z-score over the whole dataset (changes only softmax sampling)",
}


@dataclass
class RunView:
    """One finished run, as the pages read it.

    Attributes
    ----------
    table : DataFrame with one row per training example
        `id`, `label`, optional `true_label`/`noisy`, one column per score, and from the
        final models `pred`, `pred_prob`, `given_prob`.
    """

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    table: pd.DataFrame

    @property
    def label_names(self) -> list[str]:
        return list(self.config["dataset"]["label_names"])

    @property
    def modality(self) -> str:
        return self.config["dataset"]["modality"]

    @property
    def score_keys(self) -> list[str]:
        """Scores this run holds, in the order they were computed; not the label-valued ones
        (`consensus_label`: class ids, which nothing ranks)."""
        scores = self.summary["scores"]
        return [
            k
            for k in scores
            if k in self.table.columns
            and not (isinstance(scores[k], dict) and scores[k].get("label_valued"))
        ]

    @property
    def has_noise(self) -> bool:
        return "noisy" in self.table.columns

    def higher_is_harder(self, key: str) -> bool:
        return bool(self.summary["scores"][key]["higher_is_harder"])

    @property
    def dataset_name(self) -> str:
        """The data as the run's title names it (`RunInfo.dataset`): an uploaded file's own
        name, not the content hash it is stored under; else its description."""
        return store.run_info(self.path).dataset

    def title(self) -> str:
        """The run's one-line label (`store.run_title`: name, dataset, recipe, runs × epochs,
        preset, noise, date), as the runs table and the picker spell it."""
        return store.run_title(store.run_info(self.path))


def no_examples_reason(view: RunView) -> str:
    """Why a run has no rendered examples (images or texts) to show, and what to do.

    A scored run from before they were kept is scored again; a run recorded from the user's
    own training (`store.run_source`) shows them once recorded with its data.
    """
    source = store.run_source(view.config)
    if source != "scored":
        return (
            f"This run was {source} from your own training without its inputs or a data "
            "source, so its examples cannot be shown: pass `dataset=` or `inputs=` to the "
            "Recorder (or `--dataset` to `winnow import`) to see them"
        )
    return (
        "This run has no rendered examples (it was scored before Winnow kept them); score "
        "the dataset again from Home to see them"
    )


def load_run(path: Path | str) -> RunView:
    """Read a finished run; InputError (with a way forward) for anything else.

    A damaged run raises `store.DamagedRun` (an InputError) naming the file, why and the fix:
    the cheap checks of `RunDir.check` first, then whatever fails while the tables are read.
    """
    path = Path(path)
    rd = store.RunDir(path)
    rd.require_finished()
    store.check_version(path)
    config, summary = rd.read_config(), rd.read_summary()
    table = rd.read_scores()
    _require(rd, rd.scores_file, table, ("id", "label"))
    preds = rd.read_predictions()
    if preds is not None:  # runs from before predictions were written still open
        _require(rd, rd.predictions_file, preds, ("id", "pred", "pred_prob", "given_prob"))
        table = table.merge(preds, on="id", how="left")
    # The display files are opened (a header, not the data) so a garbled one is reported
    # here, with the run, rather than by the page that shows examples.
    if config["dataset"].get("modality") == "image":
        rd.open_images()
    else:
        rd.read_texts(columns=["id"])
    return RunView(path, config, summary, table)


def _require(rd: store.RunDir, file: Path, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise store.DamagedRun(rd.path, rd.relative(file), f"lacks column(s) {', '.join(missing)}")


def normalize(values: np.ndarray, labels: np.ndarray, mode: str) -> np.ndarray:
    """Raw values, or z-scores within each class / over the whole dataset.

    Parameters
    ----------
    values : ndarray of shape (n_examples,)
    labels : ndarray of shape (n_examples,)
    mode : "none" | "class" | "dataset"

    Returns
    -------
    ndarray of shape (n_examples,), float64. A group with zero spread maps to 0.
    """
    if mode not in NORMALIZATIONS:
        raise InputError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {mode!r}")
    values = np.asarray(values, dtype=np.float64)
    if mode == "none":
        return values
    if mode == "dataset":
        return _zscore(values)
    out = np.empty_like(values)
    for c in np.unique(labels):
        mask = labels == c
        out[mask] = _zscore(values[mask])
    return out


def _zscore(values: np.ndarray) -> np.ndarray:
    # nan-aware: a missing value stays missing instead of blanking its whole group
    finite = np.isfinite(values)
    if not finite.any():
        return values.copy()
    std = values[finite].std()
    centred = values - values[finite].mean()
    return centred / std if std > 0 else np.where(finite, 0.0, values)
