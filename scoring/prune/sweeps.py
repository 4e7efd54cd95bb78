"""Sweep descriptions, their cached trials and what they show, readable without torch.

`scoring.training.retrain` runs sweeps; this module says what a sweep is (the rule, its
registry baseline and random, at every fraction and seed), carves the validation split every
trial is measured on, names the trials' cache entries, reads what finished trials left under
`<run>/sweeps/`, and summarizes them: per rule and fraction, the accuracy over seeds and the
paired difference to random with a 95% CI over seeds and evaluation examples
(`intervals.paired_interval`: a t-interval over seeds, none with a single seed).

Two splits measure every trial. *validation*: a seeded, stratified `VALIDATION_FRACTION` of the
run's training rows, held out of every selection and every trial's training set and scored
with the run's labels as given (so it carries any label noise the training labels carry);
the Pruning page's curves show it, because a person picks rule, fraction and offset there by
eye. *test*: the run's held-out split, shown for the chosen setting only; choosing on it
would make it a second validation split.

The validation rows are held out of retraining but not of scoring: the scoring runs trained
on every training row, so the scores that choose what a rule keeps came from models that saw
the validation rows (only the test split is unseen by them). Carving validation from the
held-out rows instead would shrink the test split the chosen setting is reported on, and
change every cached trial, so the split stays and the leak is measured instead: on digits
(5 seeds, keep-hardest by EL2N and by forgetting at 20-80%), the validation split favoured
the rule over random by +0.009 more than the test split did (conservative 95% CI ±0.025):
not distinguishable from 0, but a bias of that size cannot be excluded, so the test split
is the one to report (docs/benchmarks.md, "Pruning vs random").
"""

from __future__ import annotations

import base64
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
from scoring.prune.intervals import MIN_SEEDS, TOO_FEW_SEEDS, paired_interval
from scoring.prune.select import PARAMETERS, PRE_STEPS, RULES, SelectionConfig
from scoring.read import decisions

SCHEDULES = ("steps", "epochs")
# Version of a trial record: 2 = validation split held out, per-example correctness stored.
# It enters every trial and sweep key, so trials of an older format are never reused.
TRIAL_FORMAT = 2
VALIDATION_FRACTION = 0.1  # of the run's training rows, per class
VALIDATION_SEED = 0
SPLITS = ("validation", "test")
# Trial columns per split: accuracy, packed per-example correctness, number of examples.
_SPLIT_COLUMNS = {
    "validation": ("val_accuracy", "val_correct", "n_val"),
    "test": ("accuracy", "test_correct", "n_test"),
}


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: one selection rule (its fraction/seed are overridden per trial) vs random."""

    selection: SelectionConfig
    fractions: tuple[float, ...] = (0.3, 0.5, 0.7)
    seeds: int = 5  # the CI is a t-interval over seeds: 5 keep it usable (t_4 = 2.78)
    schedule: str = "steps"  # steps (Data Diet) | epochs
    apply_decisions: bool = False
    # Decisions made in evaluation mode (the injected noise's truth on the cards) are refused
    # unless this says the user wants a sweep of a review that knew the answers.
    allow_evaluation: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = {
            "selection": self.selection.to_dict(),
            "fractions": list(self.fractions),
            "seeds": self.seeds,
            "schedule": self.schedule,
            "apply_decisions": self.apply_decisions,
        }
        if self.allow_evaluation:  # only then: every earlier sweep keeps its key
            out["allow_evaluation"] = True
        return out

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
                allow_evaluation=bool(d.get("allow_evaluation", cls.allow_evaluation)),
            )
        except (TypeError, ValueError) as err:
            raise InputError(f"sweep config: {err}") from None

    def key(self, run_key: str) -> str:
        return _hash({"run": run_key, **self.to_dict(), **_TRIAL_SETUP})

    def cli_args(self, run: Path | str) -> list[str]:
        """The `python -m scoring sweep` flags equal to this config (for a terminal hint)."""
        args = ["--run", str(run), *self.selection.cli_args()]
        args += ["--fractions", ",".join(repr(float(f)) for f in self.fractions)]
        args += ["--seeds", str(self.seeds), "--schedule", self.schedule]
        if self.allow_evaluation:
            args.append("--allow-evaluation-decisions")
        return [*args, "--apply-decisions"] if self.apply_decisions else args

    def check_decisions(self, run: Path | str) -> None:
        """Refuse, before any work, decisions made in evaluation mode unless allowed.

        Raises
        ------
        InputError
            The sweep applies decisions, some of which were made in evaluation mode.
        """
        if self.apply_decisions:
            decisions.refuse_evaluation(
                decisions.latest(run), self.allow_evaluation, "--allow-evaluation-decisions"
            )


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def retrain_blocker(config: dict[str, Any]) -> str | None:
    """Why the run with `config.json` `config` cannot be retrained on, or None when it can.

    Retraining trains the run's recipe afresh on selected subsets, so it needs a built-in
    recipe and data Winnow can load; a run recorded from the user's own training
    (`scoring.record.Recorder`) or imported from files has neither. A run of several model
    families (`training.families`) has no one recipe: each family's own run (named here by
    its folder in the same cache) can be swept.
    """
    source = store.run_source(config)
    families = (config.get("recipe") or {}).get("families")
    if source == "scored" and isinstance(families, list):  # no one recipe, no inputs kept
        fingerprint = (config.get("dataset") or {}).get("fingerprint")
        names = ", ".join(f"{f.get('name')} ({fingerprint}/{f.get('run_key')})" for f in families)
        return (
            "This run trains several model families side by side, so no one recipe retrains "
            f"on a kept subset. Sweep one family's own run instead, in the same cache: {names}; "
            "this run's scores still select, preview and export."
        )
    if source == "scored":
        return None
    data = ((config.get("config") or {}).get("data") or {}).get("source")
    command = f"winnow score --dataset {data}" if data else "winnow score --dataset SOURCE"
    return (
        f"This run was {source} from your own training, so it cannot be retrained here: "
        "retraining needs a built-in recipe (mlp, cnn, cnn32, resnet18, probe, tfidf, finetune) on "
        f"a source Winnow can load. Score the data with `{command}` and sweep that run; this "
        "run's scores still select, preview and export."
    )


# What every trial of this version shares besides its selection: in every key.
_TRIAL_SETUP = {
    "format": TRIAL_FORMAT,
    "validation": {"fraction": VALIDATION_FRACTION, "seed": VALIDATION_SEED},
}


def validation_rows(
    labels: np.ndarray, fraction: float = VALIDATION_FRACTION, seed: int = VALIDATION_SEED
) -> np.ndarray:
    """The validation split retraining holds out: seeded, stratified by class.

    Parameters
    ----------
    labels : ndarray of shape (N,)
        The run's training labels (its `label` column).
    fraction : float
        Share of each class held out: round(fraction * n_class) rows, so a class with very
        few examples keeps them all for training.
    seed : int

    Returns
    -------
    ndarray of shape (V,), int64, ascending
        Positions into the run's table. Never selected, never trained on by a sweep's trials
        (the scoring runs did train on them: see the module docstring).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = [np.empty(0, dtype=np.int64)]
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        parts.append(rng.choice(rows, size=round(fraction * rows.shape[0]), replace=False))
    return np.sort(np.concatenate(parts)).astype(np.int64)


def pack_correct(correct: np.ndarray) -> str:
    """(M,) bool per-example correctness as base64 packed bits (M / 8 bytes in a record)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool))).decode("ascii")


def unpack_correct(text: str, n: int) -> np.ndarray:
    """The inverse of `pack_correct`: (n,) bool."""
    bits = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    return np.unpackbits(bits, count=n).astype(bool)


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
    """Every trial's selection: the rule, random and the rule's registry baseline (offset:
    `offset_random`), at each fraction and seed."""
    rules = [config.selection]
    if config.selection.rule != "random":
        rules.append(dataclasses.replace(config.selection, rule="random", score=None))
    rule = RULES.get(config.selection.rule)
    if rule is not None and rule.baseline is not None:
        rules.append(dataclasses.replace(config.selection, rule=rule.baseline))
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
            **_TRIAL_SETUP,
        }
    )


TRIAL_COLUMNS = (
    "rule",
    "score",
    "fraction",
    "seed",
    "accuracy",
    "val_accuracy",
    "n_kept",
    "steps",
    "schedule",
    "test_correct",
    "n_test",
    "val_correct",
    "n_val",
)


def trials_frame(records: Sequence[dict[str, Any]], label_names: Sequence[str]) -> pd.DataFrame:
    """One row per trial: `TRIAL_COLUMNS` then acc_<class> (test accuracy per class).

    `accuracy` is on the test split, `val_accuracy` on the validation split; `test_correct`
    and `val_correct` are the per-example correctness as `pack_correct` strings of `n_test`
    and `n_val` examples.
    """
    rows = []
    for rec in records:
        row = {k: rec[k] for k in TRIAL_COLUMNS}
        for name, acc in zip(label_names, rec["per_class_accuracy"], strict=True):
            row[f"acc_{name}"] = acc
        rows.append(row)
    return pd.DataFrame(rows)


def cached_trials(run: Path, label_names: Sequence[str]) -> pd.DataFrame:
    """Every finished trial of a run (from any sweep), one row each, with its selection.

    Columns as `trials_frame` plus the selection's parameters (`normalization`, `offset`,
    `class_balanced`, `temperature`, `beta`, `bins`) and `apply_decisions`, so a page can
    pick the points that match what the user set. Trials of another `TRIAL_FORMAT` (made
    before the validation split) are left out.
    """
    records = []
    for path in store.RunDir(run).trial_files():
        try:
            record = store.read_json(path)
        except (OSError, json.JSONDecodeError):
            continue  # a trial being written right now shows up on the next read
        if record.get("format") == TRIAL_FORMAT:  # older trials: no validation split
            records.append(record)
    frame = trials_frame(records, label_names)
    for name in ("normalization", "offset", "class_balanced", "temperature", "beta", "bins"):
        frame[name] = [r["selection"].get(name) for r in records]
    for name in PRE_STEPS:  # absent from trials made before the switches (or with them off)
        frame[name] = [bool(r["selection"].get(name, False)) for r in records]
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
    for name in PRE_STEPS:  # a frame without the column holds trials with the switch off
        on = trials[name].astype(bool) if name in trials else pd.Series(False, trials.index)
        mask &= on == bool(getattr(c, name))
    return trials[mask]


def correctness(trials: pd.DataFrame, split: str) -> np.ndarray:
    """(S, M) bool: the per-example correctness of each trial row on `split`, in row order."""
    _, bits, count = _SPLIT_COLUMNS[split]
    return np.stack(
        [unpack_correct(t, int(n)) for t, n in zip(trials[bits], trials[count], strict=True)]
    )


SUMMARY_COLUMNS = (
    "split",
    "rule",
    "score",
    "fraction",
    "n_kept",
    "seeds",
    "accuracy_mean",
    "accuracy_std",
    "accuracy_min",
    "accuracy_max",
    "diff_vs_random",
    "ci_low",
    "ci_high",
    "baseline",
    "diff_vs_baseline",
    "baseline_ci_low",
    "baseline_ci_high",
)


def sweep_summary(
    trials: pd.DataFrame,
    splits: Sequence[str] = SPLITS,
    *,
    fractions: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Per split, rule and fraction: accuracy over seeds and the paired difference to random.

    Parameters
    ----------
    trials : DataFrame, rows of `trials_frame` / `cached_trials`
        One selection per rule (a sweep's own trials, or the rows `matching_trials` found for
        a rule, its baseline and random); any fractions and seeds.
    splits : subset of SPLITS
    fractions : sequence of float, optional
        Only these fractions (e.g. the one a page shows the test split for).

    Returns
    -------
    DataFrame with `SUMMARY_COLUMNS`, one row per (split, rule, fraction); rules in their
    order of appearance, fractions ascending. `accuracy_std` is over seeds (ddof 1: NaN
    with one seed).
    `diff_vs_random`, `ci_low`, `ci_high`: mean accuracy difference to random over the seeds
    both ran at that fraction, with its 95% interval (`intervals.paired_interval`;
    `diff_vs_random` is NaN for random itself or when random has no trial there, the CI
    bounds are NaN also when fewer than `MIN_SEEDS` seeds pair up). `baseline` names the
    rule's registry baseline (offset: offset_random) and the three `baseline_*` columns
    compare with it likewise.
    """
    rows = []
    if trials.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    wanted = None if fractions is None else np.asarray(fractions, dtype=np.float64)
    for split in splits:
        for rule_name in pd.unique(trials["rule"]):
            of_rule = trials[trials["rule"] == rule_name]
            for fraction, group in of_rule.groupby("fraction", sort=True):
                if wanted is not None and not np.isclose(wanted, fraction, atol=1e-9).any():
                    continue
                rows.append(_summary_row(group, trials, split, rule_name, float(fraction)))
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _summary_row(
    group: pd.DataFrame,
    trials: pd.DataFrame,
    split: str,
    rule_name: Any,
    fraction: float,
) -> dict[str, Any]:
    """One `sweep_summary` row: `group` (one rule's trials at `fraction`) over its seeds, and
    its paired differences to random and to the rule's registry baseline among `trials`."""
    accuracy = _SPLIT_COLUMNS[split][0]
    rule = RULES.get(str(rule_name))
    baseline = rule.baseline if rule is not None else None
    row = {
        "split": split,
        "rule": rule_name,
        "score": group["score"].iloc[0],
        "fraction": fraction,
        "n_kept": float(group["n_kept"].mean()),
        "seeds": int(group["seed"].nunique()),
        "accuracy_mean": float(group[accuracy].mean()),
        "accuracy_std": float(group[accuracy].std(ddof=1)),  # NaN for one seed
        "accuracy_min": float(group[accuracy].min()),
        "accuracy_max": float(group[accuracy].max()),
        "baseline": baseline,
    }
    against = (("random", ""), (baseline, "baseline_"))
    for other, prefix in against:
        found = (np.nan, np.nan, np.nan)
        if other is not None and other != rule_name:
            found = _compare(group, trials, str(other), fraction, split)
        diff = "diff_vs_random" if not prefix else "diff_vs_baseline"
        row[diff], row[f"{prefix}ci_low"], row[f"{prefix}ci_high"] = found
    return row


def _compare(
    group: pd.DataFrame, trials: pd.DataFrame, other: str, fraction: float, split: str
) -> tuple[float, float, float]:
    """`paired_interval` of `group` (one rule at `fraction`) against rule `other` there."""
    there = trials[(trials["rule"] == other) & np.isclose(trials["fraction"], fraction, atol=1e-9)]
    mine = group.drop_duplicates("seed").set_index("seed")
    theirs = there.drop_duplicates("seed").set_index("seed")
    seeds = sorted(set(mine.index) & set(theirs.index))
    if not seeds:
        return (np.nan, np.nan, np.nan)
    a = correctness(mine.loc[seeds], split)
    b = correctness(theirs.loc[seeds], split)
    if a.shape != b.shape or a.shape[1] == 0:  # no evaluation examples on this split
        return (np.nan, np.nan, np.nan)
    return paired_interval(a, b)


def indistinguishable(low: float, high: float) -> bool:
    """The CI contains 0: the data cannot tell the rule from its baseline (False: no CI)."""
    return bool(low <= 0 <= high)


def difference_text(value: float, low: float, high: float) -> str:
    """`+0.0123 [-0.0040, +0.0290]`; `–` with no difference; `TOO_FEW_SEEDS` with no CI."""
    if not np.isfinite(value):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):  # fewer than MIN_SEEDS seeds paired
        return f"{value:+.4f} ({TOO_FEW_SEEDS})"
    return f"{value:+.4f} [{low:+.4f}, {high:+.4f}]"


def accuracy_text(mean: float, std: float) -> str:
    """`0.9512 ± 0.0040` (std over seeds); the mean alone when one seed has no std."""
    return f"{mean:.4f} ± {std:.4f}" if np.isfinite(std) else f"{mean:.4f}"


def format_summary(summary: pd.DataFrame) -> str:
    """A small text table of `sweep_summary` for a terminal (the `sweep` command's stderr)."""
    if summary.empty:
        return "no finished trials"

    def diffs(value: str, low: str, high: str) -> list[str]:
        columns = (summary[value], summary[low], summary[high])
        return [
            difference_text(*v) + (" ~" if indistinguishable(*v[1:]) else "")
            for v in zip(*columns, strict=True)
        ]

    table = pd.DataFrame(
        {
            "split": summary["split"],
            "rule": [
                r if pd.isna(s) else f"{r} ({s})"
                for r, s in zip(summary["rule"], summary["score"], strict=True)
            ],
            "fraction": summary["fraction"].map("{:g}".format),
            "kept": summary["n_kept"].round().astype(int),
            "seeds": summary["seeds"],
            "accuracy": [
                accuracy_text(m, s)
                for m, s in zip(summary["accuracy_mean"], summary["accuracy_std"], strict=True)
            ],
            "vs random [95% CI]": diffs("diff_vs_random", "ci_low", "ci_high"),
        }
    )
    if summary["baseline"].notna().any():
        name = summary["baseline"].dropna().iloc[0]
        table[f"vs {name} [95% CI]"] = diffs(
            "diff_vs_baseline", "baseline_ci_low", "baseline_ci_high"
        )
    note = (
        "~: the CI contains 0, indistinguishable from its baseline. CI: t-interval over seeds "
        f"plus the evaluation set's sampling noise; it needs at least {MIN_SEEDS} seeds"
    )
    return table.to_string(index=False) + "\n" + note


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
