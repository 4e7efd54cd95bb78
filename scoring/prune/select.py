"""Which examples to keep: selection rules over any score, and the user's decisions applied.

Every rule ranks by *hardness*: the score after optional normalization (`views.normalize`),
oriented so that larger always means harder (`noise.hardness`). Rules are pure functions of
arrays, so the pruning page, the retraining sweep and the export all select the same rows for
the same config and seed.

Rules
-----
hardest, easiest
    The top / bottom `fraction` by hardness; ties go to the earlier row.
random
    Seeded uniform sample without replacement; ignores the score.
offset
    Data Diet's rule for noisy data: drop the hardest `offset` share (likely mislabeled),
    keep the next `fraction`.
stratified
    Coverage-centric selection (Zheng et al., ICLR 2023, "CCS"): drop the hardest `beta`
    share, split the rest into `bins` equal-width hardness bins and fill the budget evenly
    across them, smallest bin first, sampling uniformly within a bin.
softmax, linear
    Sampling without replacement with weights softmax(hardness / T) or hardness - min + eps
    (Influence Scores at Scale, 2023).

`class_balanced` applies any rule within each class with that class's quota.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from scoring.errors import InputError
from scoring.read.decisions import ACTIONS, CLEAR
from scoring.read.views import NORMALIZATIONS, RunView, normalize
from scoring.scores.registry import hardness

RULES = ("hardest", "easiest", "random", "offset", "stratified", "softmax", "linear")
LINEAR_EPS = 1e-12  # keeps the easiest example's linear weight above zero
_TOL = 1e-9  # float slack when checking that shares add up to at most 1


@dataclass(frozen=True)
class SelectionConfig:
    """How to pick the examples kept; validated by `check_config` (also run by `select_indices`)."""

    rule: str  # one of RULES
    fraction: float  # share of examples kept, in (0, 1]
    score: str | None = None  # score key; None only for rule "random"
    normalization: str = "none"  # none | class | dataset, applied before ranking
    offset: float = 0.0  # "offset": drop the hardest `offset` share first, keep the next `fraction`
    class_balanced: bool = False  # keep `fraction` of EACH class (at least 1 per class)
    temperature: float = 1.0  # "softmax": weights softmax(hardness / T)
    beta: float = 0.1  # "stratified": drop the hardest beta share as likely noise
    bins: int = 50  # "stratified": equal-width hardness bins over the remaining examples
    seed: int = 0  # the only source of randomness (random, stratified, softmax, linear)

    def to_dict(self) -> dict:
        """Every field as plain JSON types, for manifests and cache keys."""
        return {k: v.item() if isinstance(v, np.generic) else v for k, v in asdict(self).items()}


def check_config(config: SelectionConfig) -> None:
    """Refuse a config no data set could satisfy (InputError saying what was expected)."""
    c = config
    if c.rule not in RULES:
        raise InputError(f"rule must be one of {', '.join(RULES)}, got {c.rule!r}")
    if not 0 < c.fraction <= 1:
        raise InputError(f"fraction kept must be in (0, 1], got {c.fraction}")
    if c.score is None and c.rule != "random":
        raise InputError(f"rule {c.rule!r} ranks by a score: name one (only 'random' needs none)")
    if c.normalization not in NORMALIZATIONS:
        raise InputError(
            f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {c.normalization!r}"
        )
    if not 0 <= c.offset < 1:
        raise InputError(f"offset must be a share in [0, 1), got {c.offset}")
    if c.rule == "offset" and c.offset + c.fraction > 1 + _TOL:
        raise InputError(
            f"offset {c.offset:g} + fraction {c.fraction:g} exceeds 1: with offset {c.offset:g} "
            f"at most fraction {1 - c.offset:g} fits (or lower the offset to {1 - c.fraction:g})"
        )
    if not c.temperature > 0:
        raise InputError(f"temperature must be > 0, got {c.temperature}")
    if not 0 <= c.beta < 1:
        raise InputError(f"beta must be a share in [0, 1), got {c.beta}")
    if c.rule == "stratified" and c.beta + c.fraction > 1 + _TOL:
        raise InputError(
            f"stratified drops the hardest beta {c.beta:g} first, so at most fraction "
            f"{1 - c.beta:g} fits; got fraction {c.fraction:g} (or lower beta to "
            f"{1 - c.fraction:g})"
        )
    if isinstance(c.bins, bool) or not isinstance(c.bins, int | np.integer) or c.bins < 1:
        raise InputError(f"bins must be an integer >= 1, got {c.bins!r}")


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
    values : ndarray of shape (n_examples,), or None for rule "random"
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
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"labels must have shape (n_examples,), got {labels.shape}")
    n = labels.shape[0]
    if n == 0:
        raise InputError("there are no examples to select from")
    if config.rule == "random":
        h = np.zeros(n)  # unused by the rule
    else:
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
        h = hardness(normalize(values, labels, config.normalization), higher_is_harder)  # (N,)

    rule = _RULES[config.rule]
    rng = np.random.default_rng(config.seed)
    if not config.class_balanced:
        m = round(config.fraction * n)
        if m == 0:
            raise InputError(
                f"fraction {config.fraction:g} of {n} examples keeps none; keep at least one "
                f"(fraction >= {1 / n:.2g}) or use class_balanced"
            )
        kept = rule(h, m, config, rng)
    else:
        parts = []
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            quota = max(1, round(config.fraction * rows.shape[0]))
            parts.append(rows[rule(h[rows], quota, config, rng)])
        kept = np.concatenate(parts)
    return np.sort(kept).astype(np.int64)


def lost_classes(labels: np.ndarray, kept: np.ndarray) -> list[int]:
    """Classes present in `labels` with no example among the rows `kept` (sorted)."""
    labels = np.asarray(labels)
    missing = np.setdiff1d(np.unique(labels), np.unique(labels[np.asarray(kept, dtype=np.int64)]))
    return [c.item() for c in missing]


def select_run(
    view: RunView, config: SelectionConfig, *, decisions: pd.DataFrame | None = None
) -> np.ndarray:
    """`select_indices` on a finished run: row positions into `view.table`, sorted ascending.

    Values come from `view.table[config.score]` and their direction from the run's summary;
    rule "random" needs no score. With `decisions` (`scoring.read.decisions.latest`), dropped
    rows are removed first and relabels applied, then the rule picks among what is left, so
    the fraction is a share of the examples the user kept — the same order the Pruning page,
    the sweeps and the export use. Map rows to ids with `view.table["id"].to_numpy()[rows]`.
    """
    check_config(config)
    labels = view.table["label"].to_numpy()
    rows = np.arange(labels.shape[0])
    if decisions is not None:
        keep, labels = apply_decisions(view.table["id"].to_numpy(), labels, decisions)
        rows, labels = rows[keep], labels[keep]
    if config.rule == "random":
        return rows[select_indices(None, labels, config)]
    key = str(config.score)  # check_config: only "random" goes without a score
    if key not in view.score_keys:
        have = ", ".join(view.score_keys) or "none"
        raise InputError(f"this run has no score {key!r}; it has: {have}")
    values = view.table[key].to_numpy(dtype=np.float64)[rows]
    picked = select_indices(values, labels, config, higher_is_harder=view.higher_is_harder(key))
    return rows[picked]


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


# --- rules: (hardness (n,), budget m with 1 <= m <= n, config, rng) -> local row indices -------

Rule = Callable[[np.ndarray, int, SelectionConfig, np.random.Generator], np.ndarray]


def _hardest_first(h: np.ndarray) -> np.ndarray:
    """Rows by hardness, hardest first; ties keep row order."""
    return np.argsort(-h, kind="stable")


def _hardest(
    h: np.ndarray, m: int, config: SelectionConfig, rng: np.random.Generator
) -> np.ndarray:
    return _hardest_first(h)[:m]


def _easiest(
    h: np.ndarray, m: int, config: SelectionConfig, rng: np.random.Generator
) -> np.ndarray:
    return np.argsort(h, kind="stable")[:m]


def _random(h: np.ndarray, m: int, config: SelectionConfig, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(h.shape[0], size=m, replace=False)


def _skip(share: float, n: int, m: int) -> int:
    """How many hardest rows to drop first; shifted back when rounding would overrun n."""
    return min(round(share * n), n - m)


def _offset(h: np.ndarray, m: int, config: SelectionConfig, rng: np.random.Generator) -> np.ndarray:
    skip = _skip(config.offset, h.shape[0], m)
    return _hardest_first(h)[skip : skip + m]


def _stratified(
    h: np.ndarray, m: int, config: SelectionConfig, rng: np.random.Generator
) -> np.ndarray:
    rest = np.sort(_hardest_first(h)[_skip(config.beta, h.shape[0], m) :])  # rows kept in play
    hr = h[rest]
    lo, hi = hr.min(), hr.max()
    if hi > lo:
        which = np.floor((hr - lo) / (hi - lo) * config.bins).astype(np.int64)
        which = np.minimum(which, config.bins - 1)  # the maximum closes the last bin
    else:
        which = np.zeros(hr.shape[0], dtype=np.int64)
    strata = [rest[which == b] for b in range(config.bins)]
    strata = sorted((s for s in strata if s.shape[0]), key=len)  # stable: ties keep bin order
    picked, budget = [], m
    for left, stratum in zip(range(len(strata), 0, -1), strata, strict=True):
        take = min(stratum.shape[0], math.ceil(budget / left))
        picked.append(rng.choice(stratum, size=take, replace=False))
        budget -= take
    return np.concatenate(picked)


def _sample(weights: np.ndarray, h: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m rows without replacement, P proportional to weights; zero-weight rows fill by hardness."""
    nonzero = np.flatnonzero(weights > 0)
    if nonzero.shape[0] <= m:
        zero = np.flatnonzero(weights <= 0)
        fill = zero[np.argsort(-h[zero], kind="stable")][: m - nonzero.shape[0]]
        return np.concatenate([nonzero, fill])
    return rng.choice(h.shape[0], size=m, replace=False, p=weights / weights.sum())


def _softmax(
    h: np.ndarray, m: int, config: SelectionConfig, rng: np.random.Generator
) -> np.ndarray:
    return _sample(np.exp((h - h.max()) / config.temperature), h, m, rng)


def _linear(h: np.ndarray, m: int, config: SelectionConfig, rng: np.random.Generator) -> np.ndarray:
    return _sample(h - h.min() + LINEAR_EPS, h, m, rng)


_RULES: dict[str, Rule] = {
    "hardest": _hardest,
    "easiest": _easiest,
    "random": _random,
    "offset": _offset,
    "stratified": _stratified,
    "softmax": _softmax,
    "linear": _linear,
}
