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

import numpy as np
import pandas as pd

from scoring import store
from scoring.errors import InputError
from scoring.prune.select import PARAMETERS, RULES, SelectionConfig

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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepConfig:
        """The inverse of `to_dict` (a job's `--config` file); unknown keys are an InputError."""
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InputError(f"sweep config: unknown field(s) {', '.join(unknown)}")
        if not isinstance(d.get("selection"), dict):
            raise InputError("sweep config: 'selection' (an object) is required")
        try:
            return cls(
                selection=SelectionConfig.from_dict(d["selection"]),
                fractions=tuple(float(f) for f in d.get("fractions", cls.fractions)),
                seeds=int(d.get("seeds", cls.seeds)),
                schedule=str(d.get("schedule", cls.schedule)),
                apply_decisions=bool(d.get("apply_decisions", cls.apply_decisions)),
            )
        except (TypeError, ValueError) as err:
            raise InputError(f"sweep config: {err}") from None

    def key(self, run_key: str) -> str:
        return _hash({"run": run_key, **self.to_dict()})

    def cli_args(self, run: Path | str) -> list[str]:
        """The `python -m scoring sweep` flags equal to this config (for a terminal hint)."""
        args = ["--run", str(run), *self.selection.cli_args()]
        args += ["--fractions", ",".join(repr(float(f)) for f in self.fractions)]
        args += ["--seeds", str(self.seeds), "--schedule", self.schedule]
        return [*args, "--apply-decisions"] if self.apply_decisions else args


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


def canonical(sel: SelectionConfig) -> SelectionConfig:
    """`sel` with the parameters its rule ignores (`RULES[rule].uses`) set to their defaults.

    Trial keys hash the canonical form, so two sweeps that would select the same rows share
    their cached trials. An unknown rule is left as it is (`check_config` refuses it).
    """
    rule = RULES.get(sel.rule)
    uses = rule.uses if rule is not None else frozenset(PARAMETERS)
    defaults = SelectionConfig(rule=sel.rule, fraction=sel.fraction)
    unused = {name: getattr(defaults, name) for name in PARAMETERS if name not in uses}
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


def cached_trials(run: Path, label_names: Sequence[str]) -> pd.DataFrame:
    """Every finished trial of a run (from any sweep), one row each, with its selection.

    Columns as `trials_frame` plus the selection's parameters (`normalization`, `offset`,
    `class_balanced`, `temperature`, `beta`, `bins`) and `apply_decisions`, so a page can
    pick the points that match what the user set.
    """
    records = []
    for path in store.RunDir(run).trial_files():
        try:
            records.append(store.read_json(path))
        except (OSError, json.JSONDecodeError):
            continue  # a trial being written right now shows up on the next read
    frame = trials_frame(records, label_names)
    for name in ("normalization", "offset", "class_balanced", "temperature", "beta", "bins"):
        frame[name] = [r["selection"].get(name) for r in records]
    frame["apply_decisions"] = [bool(r.get("apply_decisions", False)) for r in records]
    return frame


def matching_trials(
    trials: pd.DataFrame, sel: SelectionConfig, *, schedule: str, apply_decisions: bool
) -> pd.DataFrame:
    """The rows of `cached_trials` that `sel`'s rule and parameters made (any fraction, seed).

    Parameters the rule ignores are compared in their canonical (default) form, as the trial
    keys store them; floats match within 1e-9.
    """
    if trials.empty:
        return trials
    c = canonical(sel)

    def close(column: str, value: float) -> np.ndarray:
        return np.isclose(trials[column].astype(float), float(value), atol=1e-9)

    score = trials["score"].isna() if c.score is None else trials["score"] == c.score
    mask = (
        (trials["rule"] == c.rule)
        & score
        & (trials["normalization"] == c.normalization)
        & close("offset", c.offset)
        & (trials["class_balanced"].astype(bool) == c.class_balanced)
        & close("temperature", c.temperature)
        & close("beta", c.beta)
        & (trials["bins"] == c.bins)
        & (trials["schedule"] == schedule)
        & (trials["apply_decisions"] == apply_decisions)
    )
    return trials[mask]


def accuracy_points(trials: pd.DataFrame) -> pd.DataFrame:
    """Per fraction: mean, std (ddof 0), min and max accuracy over seeds, seeds, mean kept.

    Returns
    -------
    DataFrame with columns fraction, mean, std, min, max, seeds, kept; one row per fraction,
    ascending.
    """
    grouped = trials.groupby("fraction")
    return pd.DataFrame(
        {
            "mean": grouped["accuracy"].mean(),
            "std": grouped["accuracy"].std(ddof=0),
            "min": grouped["accuracy"].min(),
            "max": grouped["accuracy"].max(),
            "seeds": grouped["seed"].nunique(),
            "kept": grouped["n_kept"].mean(),
        }
    ).reset_index()


def n_finished(trials: pd.DataFrame, config: SweepConfig) -> int:
    """How many of `config`'s trials (`trials_of`) are among `trials` already."""
    done = 0
    for sel in trials_of(config):
        found = matching_trials(
            trials, sel, schedule=config.schedule, apply_decisions=config.apply_decisions
        )
        if found.empty:  # also: no trial at all yet, a frame without columns
            continue
        same_fraction = np.isclose(found["fraction"].astype(float), sel.fraction)
        done += int((same_fraction & (found["seed"] == sel.seed)).any())
    return done
