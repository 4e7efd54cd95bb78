"""Sweep descriptions and their cached trials, readable without torch (the app uses this).

`scoring.training.retrain` runs sweeps; this module says what a sweep is, names its trials' cache
entries, and reads what finished trials left under `<run>/sweeps/`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scoring import store
from scoring.errors import InputError
from scoring.prune.select import SelectionConfig

SCHEDULES = ("steps", "epochs")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: one selection rule (its fraction/seed are overridden per trial) vs random."""

    selection: SelectionConfig
    fractions: tuple[float, ...] = (0.3, 0.5, 0.7)
    seeds: int = 3
    schedule: str = "steps"  # steps (Data Diet) | epochs
    apply_decisions: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "selection": self.selection.to_dict(),
            "fractions": list(self.fractions),
            "seeds": self.seeds,
            "schedule": self.schedule,
            "apply_decisions": self.apply_decisions,
        }

    def key(self, run_key: str) -> str:
        return _hash({"run": run_key, **self.to_dict()})


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def check_sweep(config: SweepConfig) -> None:
    """Refuse a sweep that cannot run, with a message that says how to fix it."""
    if config.schedule not in SCHEDULES:
        raise InputError(
            f"--schedule must be one of {', '.join(SCHEDULES)}, got {config.schedule!r}"
        )
    if config.seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {config.seeds}")
    if not config.fractions:
        raise InputError("give at least one fraction, e.g. --fractions 0.3,0.5,0.7")
    bad = [f for f in config.fractions if not 0 < f <= 1]
    if bad:
        raise InputError(f"fractions must lie in (0, 1], got {bad}")


# The parameters each rule reads; the others are reset to their defaults in trial keys, so
# two sweeps that would select the same rows share their cached trials.
_USES = {
    "hardest": {"score", "normalization"},
    "easiest": {"score", "normalization"},
    "random": set(),
    "offset": {"score", "normalization", "offset"},
    "stratified": {"score", "normalization", "beta", "bins"},
    "softmax": {"score", "normalization", "temperature"},
    "linear": {"score", "normalization"},
}
_TUNABLE = ("score", "normalization", "offset", "temperature", "beta", "bins")


def canonical(sel: SelectionConfig) -> SelectionConfig:
    """`sel` with the parameters its rule ignores set to their defaults."""
    defaults = SelectionConfig(rule=sel.rule, fraction=sel.fraction)
    unused = {
        name: getattr(defaults, name)
        for name in _TUNABLE
        if name not in _USES.get(sel.rule, set(_TUNABLE))
    }
    return dataclasses.replace(sel, **unused)


def trials_of(config: SweepConfig) -> list[SelectionConfig]:
    """Every trial's selection: the rule and random, at each fraction and seed."""
    rules = [config.selection]
    if config.selection.rule != "random":
        rules.append(dataclasses.replace(config.selection, rule="random", score=None))
    return [
        canonical(dataclasses.replace(sel, fraction=float(f), seed=s))
        for sel in rules
        for f in config.fractions
        for s in range(config.seeds)
    ]


def trial_key(run_key: str, sel: SelectionConfig, config: SweepConfig) -> str:
    return _hash(
        {
            "run": run_key,
            "selection": sel.to_dict(),
            "schedule": config.schedule,
            "apply_decisions": config.apply_decisions,
        }
    )


def trials_frame(records: Sequence[dict[str, Any]], label_names: Sequence[str]) -> pd.DataFrame:
    """One row per trial: rule, score, fraction, seed, accuracy, n_kept, acc_<class>..."""
    rows = []
    for rec in records:
        row = {
            k: rec[k]
            for k in (
                "rule",
                "score",
                "fraction",
                "seed",
                "accuracy",
                "n_kept",
                "steps",
                "schedule",
            )
        }
        for name, acc in zip(label_names, rec["per_class_accuracy"], strict=True):
            row[f"acc_{name}"] = acc
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_folder(run: Path, config: SweepConfig) -> Path:
    """Where a sweep keeps its status and trials.parquet."""
    return Path(run) / "sweeps" / config.key(store.read_json(Path(run) / "config.json")["key"])


def cached_trials(run: Path, label_names: Sequence[str]) -> pd.DataFrame:
    """Every finished trial of a run (from any sweep), one row each, with its selection.

    Columns as `trials_frame` plus the selection's parameters (`normalization`, `offset`,
    `class_balanced`, `temperature`, `beta`, `bins`) and `apply_decisions`, so a page can
    pick the points that match what the user set.
    """
    folder = Path(run) / "sweeps" / "trials"
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(store.read_json(path))
        except (OSError, json.JSONDecodeError):
            continue  # a trial being written right now shows up on the next read
    frame = trials_frame(records, label_names)
    for name in ("normalization", "offset", "class_balanced", "temperature", "beta", "bins"):
        frame[name] = [r["selection"].get(name) for r in records]
    frame["apply_decisions"] = [bool(r.get("apply_decisions", False)) for r in records]
    return frame
