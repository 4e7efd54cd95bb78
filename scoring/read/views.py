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
    "dataset": "z-score over the whole dataset",
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
        """Scores this run holds, in the order they were computed."""
        return [k for k in self.summary["scores"] if k in self.table.columns]

    @property
    def has_noise(self) -> bool:
        return "noisy" in self.table.columns

    def higher_is_harder(self, key: str) -> bool:
        return bool(self.summary["scores"][key]["higher_is_harder"])

    def title(self) -> str:
        d, r = self.config["dataset"], self.config["recipe"]
        return f"{d['description']} · {r['name']} · {d['n_train']:,} examples"


def load_run(path: Path | str) -> RunView:
    """Read a finished run; InputError (with a way forward) for anything else."""
    path = Path(path)
    rd = store.RunDir(path)
    status = rd.read_status()
    if status is None or not rd.config_file.exists():
        raise InputError(f"{path} is not a Winnow run folder")
    if status["state"] != "done":
        raise InputError(
            f"this run is {status['state']} ({status.get('message', '')}); "
            "pick a finished run or wait for it"
        )
    store.check_version(path)
    table = rd.read_scores()
    preds = rd.read_predictions()
    if preds is not None:  # runs from before predictions were written still open
        table = table.merge(preds, on="id", how="left")
    return RunView(path, rd.read_config(), rd.read_summary(), table)


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
