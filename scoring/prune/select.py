"""Which examples to keep: a selection config, checked, and its rule applied to arrays.

Every rule ranks by *hardness*: the score after optional normalization (`views.normalize`),
oriented so that larger always means harder (`registry.hardness`). The rules themselves are
declared once, in `scoring.prune.rules.RULES` (re-exported here); `select_indices` prepares
the hardness, applies class-balanced quotas and calls the rule. Everything is a pure function
of arrays, so the pruning page, the retraining sweep and the export select the same rows for
the same config and seed. `scoring.prune.plan` builds on this module (imports run one way:
rules -> select -> plan): it applies the decisions first, then the rule, to a whole run.

`class_balanced` applies any rule within each class with that class's quota.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import InputError
from scoring.prune.rules import PARAMETERS, RULES, Rule, rules_using  # noqa: F401 (re-exported)
from scoring.read.decisions import ACTIONS, CLEAR
from scoring.read.views import NORMALIZATIONS, RunView, normalize
from scoring.scores.data_value import DATA_VALUES
from scoring.scores.registry import hardness

_TOL = 1e-9  # float slack when checking that shares add up to at most 1
# Switches the planner applies before any rule, with the run column each reads.
PRE_STEPS = {"drop_duplicates": "dup_group", "drop_leaks": "leak_of"}


@dataclass(frozen=True)
class SelectionConfig:
    """How to pick the examples kept; validated by `check_config` (also run by `select_indices`)."""

    rule: str  # a key of RULES
    fraction: float  # share of examples kept, in (0, 1]
    score: str | None = None  # score key; None only for a rule that reads none ("random")
    normalization: str = "none"  # none | class | dataset, applied before ranking
    offset: float = 0.0  # "offset": drop the hardest `offset` share first, keep the next `fraction`
    class_balanced: bool = False  # keep `fraction` of EACH class (at least 1 per class)
    temperature: float = 1.0  # "softmax": weights softmax(hardness / T)
    beta: float = 0.1  # "stratified": drop the hardest beta share as likely noise
    bins: int = 50  # "stratified": equal-width hardness bins over the remaining examples
    seed: int = 0  # the only source of randomness (random, stratified, softmax, linear)
    # Applied by the planner before the rule, after the decisions (`scoring.prune.plan`):
    drop_duplicates: bool = False  # keep one row per duplicate group (`dup_group`)
    drop_leaks: bool = False  # drop training rows that copy a held-out/test row (`leak_of`)

    def to_dict(self) -> dict:
        """Every field as plain JSON types, for manifests and cache keys.

        The pre-steps added after trial keys existed (`PRE_STEPS`) are left out while off, so
        every trial key and sweep key made before them stays the same.
        """
        d = {k: v.item() if isinstance(v, np.generic) else v for k, v in asdict(self).items()}
        return {k: v for k, v in d.items() if not (k in PRE_STEPS and v is False)}

    def cli_args(self) -> list[str]:
        """The `export` / `sweep` flags that give this selection, fraction and seed aside.

        Only the parameters the rule reads are spelled (plus `--class-balanced`), floats as
        `repr` so they parse back to the same value; the two commands add `--fraction`/`--seed`
        or `--fractions`/`--seeds` themselves.
        """
        rule = RULES[self.rule]
        args = ["--score", str(self.score)] if rule.ranks else []
        args += ["--rule", self.rule]
        for name in PARAMETERS:
            if name in rule.uses and name != "score":
                value = getattr(self, name)
                text = repr(float(value)) if isinstance(value, float) else str(value)
                args += [f"--{name}", text]
        if self.class_balanced:
            args.append("--class-balanced")
        args += [f"--{name.replace('_', '-')}" for name in PRE_STEPS if getattr(self, name)]
        return args

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SelectionConfig:
        """The inverse of `to_dict`; unknown keys are refused (InputError), values checked later."""
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"selection: unknown field(s) {', '.join(unknown)}")
        if "rule" not in d or "fraction" not in d:
            raise InputError("selection: 'rule' and 'fraction' are required")
        return cls(**d)


def check_config(config: SelectionConfig) -> None:
    """Refuse a config no data set could satisfy (InputError saying what was expected)."""
    c = config
    if c.rule not in RULES:
        raise InputError(f"rule must be one of {', '.join(RULES)}, got {c.rule!r}")
    rule = RULES[c.rule]
    if not 0 < c.fraction <= 1:
        raise InputError(f"fraction kept must be in (0, 1], got {c.fraction}")
    if c.score is None and rule.ranks:
        scoreless = ", ".join(repr(n) for n, r in RULES.items() if not r.ranks) or "none"
        raise InputError(
            f"rule {c.rule!r} ranks by a score: name one (rules that need none: {scoreless})"
        )
    if c.normalization not in NORMALIZATIONS:
        raise InputError(
            f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {c.normalization!r}"
        )
    if not 0 <= c.offset < 1:
        raise InputError(f"offset must be a share in [0, 1), got {c.offset}")
    if not c.temperature > 0:
        raise InputError(f"temperature must be > 0, got {c.temperature}")
    if not 0 <= c.beta < 1:
        raise InputError(f"beta must be a share in [0, 1), got {c.beta}")
    if rule.drops_first is not None:
        name, share = rule.drops_first, getattr(c, rule.drops_first)
        if share + c.fraction > 1 + _TOL:
            raise InputError(
                f"{name} {share:g} + fraction {c.fraction:g} exceeds 1: {c.rule} drops the "
                f"hardest {name} share first, so at most fraction {1 - share:g} fits (or "
                f"lower {name} to {1 - c.fraction:g})"
            )
    if isinstance(c.bins, bool) or not isinstance(c.bins, int | np.integer) or c.bins < 1:
        raise InputError(f"bins must be an integer >= 1, got {c.bins!r}")
    for name in PRE_STEPS:
        if not isinstance(getattr(c, name), bool | np.bool_):
            raise InputError(f"{name} must be true or false, got {getattr(c, name)!r}")


def select_indices(
    values: np.ndarray | None,
    labels: np.ndarray,
    config: SelectionConfig,
    *,
    higher_is_harder: bool = True,
) -> np.ndarray:
    """Row indices of the examples kept by `config`.

    Parameters
    ----------
    values : ndarray of shape (n_examples,), or None for a rule that reads no score
        One score per example; must be finite (ignored by "random").
    labels : ndarray of shape (n_examples,)
        Class per example (for class normalization and class-balanced quotas).
    config : SelectionConfig
    higher_is_harder : bool
        The score's direction; rules rank by hardness, so a "lower = harder" score works too.

    Returns
    -------
    ndarray of shape (n_kept,), int64, sorted ascending
        n_kept = round(fraction * n_examples); with `class_balanced`, the sum over classes of
        max(1, round(fraction * n_class)). Deterministic for a given seed.

    Raises
    ------
    InputError
        A bad config (see `check_config`), shapes that disagree, non-finite values, or a
        selection that would be empty. A selection that loses a whole class is *not* refused:
        check it with `lost_classes` and warn.

    Notes
    -----
    softmax / linear: when fewer rows have a nonzero weight than the budget (softmax with a
    tiny T underflows), every nonzero-weight row is kept and the rest of the budget is filled
    deterministically by hardness, hardest first (the T -> 0 limit of softmax).
    stratified: a bin's share is ceil(remaining budget / remaining bins), smallest bin first
    (ties by bin order), so the budget is filled exactly whenever the kept range holds enough.
    """
    check_config(config)
    labels = _checked_labels(labels)
    rule = RULES[config.rule]
    h = _hardness(values, labels, config, higher_is_harder)  # (N,)
    rng = np.random.default_rng(config.seed)
    if config.class_balanced:
        kept = _pick_per_class(rule, h, labels, config, rng)
    else:
        kept = rule.pick(h, _budget(config.fraction, labels.shape[0]), config, rng)
    return np.sort(kept).astype(np.int64)


def _checked_labels(labels: np.ndarray) -> np.ndarray:
    """`labels` as an array of shape (N,) with N >= 1 (else InputError)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"labels must have shape (n_examples,), got {labels.shape}")
    if labels.shape[0] == 0:
        raise InputError("there are no examples to select from")
    return labels


def _hardness(
    values: np.ndarray | None,
    labels: np.ndarray,
    config: SelectionConfig,
    higher_is_harder: bool,
) -> np.ndarray:
    """(N,) float64 hardness the rule ranks by: checked, normalized, oriented harder-is-larger."""
    n = labels.shape[0]
    if not RULES[config.rule].ranks:
        return np.zeros(n)  # unused by the rule
    if values is None:
        raise InputError(f"rule {config.rule!r} needs score values, got None")
    values = np.asarray(values, dtype=np.float64)
    if values.shape != labels.shape:
        raise InputError(
            f"values and labels must both have shape (n_examples,); got values "
            f"{values.shape} and labels {labels.shape}"
        )
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise InputError(
            f"{bad} of {n} score values are NaN or infinite; every example needs a score "
            "(drop those rows or score them first)"
        )
    return hardness(normalize(values, labels, config.normalization), higher_is_harder)


def _budget(fraction: float, n: int) -> int:
    """Rows kept of `n` without class balance: round(fraction * n), refused when that is 0."""
    m = round(fraction * n)
    if m == 0:
        raise InputError(
            f"fraction {fraction:g} of {n} examples keeps none; keep at least one "
            f"(fraction >= {1 / n:.2g}) or use class_balanced"
        )
    return m


def _pick_per_class(
    rule: Rule,
    h: np.ndarray,
    labels: np.ndarray,
    config: SelectionConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """The rule applied within each class (ascending), with quota max(1, round(fraction * n_c)).

    One `rng` serves every class in turn, so the draws (and the rows) follow the class order.
    """
    parts = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        quota = max(1, round(config.fraction * rows.shape[0]))
        parts.append(rows[rule.pick(h[rows], quota, config, rng)])
    return np.concatenate(parts)


def lost_classes(labels: np.ndarray, kept: np.ndarray) -> list[int]:
    """Classes present in `labels` with no example among the rows `kept` (sorted)."""
    labels = np.asarray(labels)
    missing = np.setdiff1d(np.unique(labels), np.unique(labels[np.asarray(kept, dtype=np.int64)]))
    return [c.item() for c in missing]


def auto_offset(view: RunView) -> float:
    """The run's own estimate of its label-noise rate: the share of examples cl_issue flags.

    Data Diet's offset rule works best with the offset equal to the noise rate, so "auto"
    uses this. InputError when the run did not compute `cl_issue`.
    """
    if "cl_issue" not in view.table.columns:
        raise InputError(
            "auto offset needs the run's label-noise estimate: score cl_issue "
            "(`python -m scoring score ... --scores all`, or include cl_issue in --scores)"
        )
    flags = view.table["cl_issue"].to_numpy(dtype=np.float64)
    flags = flags[np.isfinite(flags)]
    if flags.shape[0] == 0:
        raise InputError("cl_issue has no values in this run; score it again")
    rate = float((flags > 0.5).mean())
    if rate >= 1:
        raise InputError("cl_issue flags every example, so it gives no usable offset")
    return rate


def apply_decisions(
    ids: np.ndarray, labels: np.ndarray, decisions: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Apply keep / relabel / drop decisions (as from `decisions.latest`) to a set of examples.

    Parameters
    ----------
    ids : ndarray of shape (n_examples,)
        Stable example ids (unique).
    labels : ndarray of shape (n_examples,)
    decisions : DataFrame with columns id, action, new_label
        If an id appears more than once the last row wins and `clear` withdraws it, so
        `decisions.history` works too. Ids not in `ids` are ignored (a subset may be passed).

    Returns
    -------
    keep : ndarray of shape (n_examples,), bool
        False for dropped examples; keep, relabel and undecided examples stay.
    labels : ndarray of shape (n_examples,)
        A copy with relabels applied.
    """
    ids, labels = np.asarray(ids), np.asarray(labels)
    if ids.ndim != 1 or ids.shape != labels.shape:
        raise InputError(
            f"ids and labels must both have shape (n_examples,); got {ids.shape} and {labels.shape}"
        )
    missing = {"id", "action", "new_label"} - set(decisions.columns)
    if missing:
        raise InputError(f"decisions lack column(s) {', '.join(sorted(missing))}")
    index = pd.Index(ids)
    if not index.is_unique:
        raise InputError("ids must be unique to apply decisions")
    current = decisions.drop_duplicates("id", keep="last")
    unknown = sorted(set(current["action"]) - {*ACTIONS, CLEAR})
    if unknown:
        raise InputError(f"decision actions must be one of {', '.join(ACTIONS)}, got {unknown}")
    pos = index.get_indexer(current["id"].to_numpy())  # (D,), -1 for ids not here
    action = current["action"].to_numpy()
    here = pos >= 0
    keep = np.ones(ids.shape[0], dtype=bool)
    keep[pos[here & (action == "drop")]] = False
    relabel = here & (action == "relabel")
    new = current["new_label"].to_numpy()[relabel]
    if pd.isna(new).any():
        raise InputError("a relabel decision has no new_label")
    out = labels.copy()
    out[pos[relabel]] = np.asarray(new, dtype=np.int64).astype(labels.dtype)
    return keep, out


def rule_meaning(rule: str, score: str | None) -> str | None:
    """What a rule keeps in the words of a data-value score, or None for any other score.

    `knn_shapley` is higher = more valuable, so its hardness is the negated value: "keep
    easiest" keeps the most valuable rows and "keep hardest" the least valuable ones.

    Parameters
    ----------
    rule : str
        A `RULES` key.
    score : str or None
        The score the rule ranks by.

    Returns
    -------
    str or None
    """
    if score not in DATA_VALUES:
        return None
    if rule == "easiest":
        return f"By {score}, keep easiest keeps the most valuable rows (highest data value)."
    if rule == "hardest":
        return f"By {score}, keep hardest keeps the least valuable rows (lowest data value)."
    return None
