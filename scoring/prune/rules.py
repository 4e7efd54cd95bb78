"""The selection-rule registry: every rule declared once, with what the rest of Winnow reads.

A rule is a pure function of hardness (the score after normalization, oriented so that
larger means harder; `scoring.prune.select` prepares it) plus a `Rule` entry naming its
label, help, the parameters it reads and whether it is seeded. The CLI's `--rule` choices
and help, the Pruning and Export pages' widgets, the sweeps' trial keys and the contract test
over every rule all read `RULES`, so adding a rule is one entry here. This module imports
only numpy, so the CLI can build its parser from it without loading pandas.

Rules
-----
hardest, easiest
    The top / bottom `fraction` by hardness; ties go to the earlier row.
random
    Seeded uniform sample without replacement; ignores the score.
offset
    Data Diet's rule for noisy data: drop the hardest `offset` share (likely mislabeled),
    keep the next `fraction`.
offset_random
    Random among the rows left after dropping the same hardest `offset` share: the offset
    rule's honest baseline. offset_random vs random is the gain from denoising alone, offset
    vs offset_random the gain from selecting within what is left; sweeps of `offset` add it.
stratified
    Coverage-centric selection (Zheng et al., ICLR 2023, "CCS"): drop the hardest `beta`
    share, split the rest into `bins` equal-width hardness bins and fill the budget evenly
    across them, smallest bin first, sampling uniformly within a bin.
softmax, linear
    Sampling without replacement with weights softmax(hardness / T) or hardness - min + eps
    (Influence Scores at Scale, 2023).
all
    Every row: the cleaned dataset (the user's drops removed and relabels applied by the
    planner, which also adds the carved held-out rows for this rule). Its fraction is 1; a
    smaller budget, which only a direct `select_indices` call can ask for, takes the first
    rows in row order so the rule contract (exact size, deterministic) still holds.
dedup
    `all` with duplicates dropped: the planner keeps one row per duplicate group
    (`dup_group` of a run scored with near_dup or leakage) before the rule, the lowest id
    among the group's rows still in play (`scoring.read.neighbours.keep_one_per_group`),
    exactly as the `drop_duplicates` switch does before any other rule. At the array level
    (no groups) it is `all`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# The SelectionConfig fields a rule may read besides fraction, class_balanced and seed (which
# every rule honours), with what each means; `Rule.uses` names a subset.
PARAMETERS = {
    "score": "the score ranked by",
    "normalization": (
        "z-scores within each class (reorders rows across classes) or over the dataset (one "
        "scale and shift for every row: it changes only softmax sampling, no rank, bin or "
        "linear weight) before ranking"
    ),
    "offset": "share of hardest examples dropped before keeping the next ones",
    "temperature": "softmax temperature: low is close to keep-hardest, high to random",
    "beta": "share of hardest examples dropped first as likely noise",
    "bins": "equal-width hardness bins the budget is spread over",
}
LINEAR_EPS = 1e-12  # keeps the easiest example's linear weight above zero


def scale_sensitive(rule: Rule) -> bool:
    """Whether a dataset-wide z-score can change what `rule` keeps.

    That z-score is one affine map for every row: ranks (hardest, easiest, offset, beta),
    equal-width bins and linear weights ``h - min(h)`` (scaled alike, so the same sampling
    probabilities) are unchanged; only softmax, whose weights read the scale against its
    temperature, moves. Pages offer "dataset" normalization only where this is True.
    """
    return "temperature" in rule.uses


class RuleSettings(Protocol):
    """The settings a rule's pick may read; `scoring.prune.select.SelectionConfig` is one.

    A protocol rather than the config class, so this registry imports nothing of Winnow's:
    the config validates against `RULES` (`select.check_config`), and imports run one way.
    """

    @property
    def offset(self) -> float: ...

    @property
    def temperature(self) -> float: ...

    @property
    def beta(self) -> float: ...

    @property
    def bins(self) -> int: ...


# --- rules: (hardness (n,), budget m with 1 <= m <= n, config, rng) -> m local row indices ----

RuleFn = Callable[[np.ndarray, int, RuleSettings, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Rule:
    """One selection rule, as everything else sees it (the CLI, the pages, sweeps, tests).

    Attributes
    ----------
    pick : callable (hardness (m_in,), budget m, config, rng) -> ndarray of shape (m,)
        Distinct local row indices, 1 <= m <= m_in. Randomness only from `rng` (seeded by
        `config.seed`); `hardness` is all zeros for a rule that reads no score.
    label : str
        Short name in the pages' menus ("keep hardest").
    help : str
        What it keeps and when to use it, one clause (shown after the label).
    uses : frozenset of str
        The `PARAMETERS` it reads; the others are ignored, so sweeps reset them in trial keys
        and the pages hide their widgets. "score" in it means the rule ranks by a score.
    seeded : bool
        Whether its pick depends on `config.seed`.
    drops_first : str or None
        A share parameter (in `uses`) of hardest rows dropped before keeping, so fraction +
        that share must not exceed 1.
    keeps_all : bool
        Keeps every row (fraction 1): the cleaned dataset. Not a pruning rule, so it is not
        swept and the pages' pruning widgets leave it out.
    baseline : str or None
        Another rule every sweep of this one also runs, at the same parameters, fractions and
        seeds, besides random (which every sweep runs): its like-for-like baseline.
    dedups : bool
        The planner drops duplicates (one row kept per `dup_group`) before the pick, as the
        `drop_duplicates` switch does for any rule.
    """

    pick: RuleFn
    label: str
    help: str
    uses: frozenset[str]
    seeded: bool = False
    drops_first: str | None = None
    baseline: str | None = None
    keeps_all: bool = False
    dedups: bool = False

    def __post_init__(self) -> None:
        # A rule without words would crash the page that shows it; refuse it at import.
        if not self.label.strip() or not self.help.strip():
            raise ValueError("a selection rule needs a label and a help text")
        unknown = set(self.uses) - set(PARAMETERS)
        if unknown:
            raise ValueError(f"unknown rule parameter(s) {sorted(unknown)}; known: {PARAMETERS}")
        if self.drops_first is not None and self.drops_first not in self.uses:
            raise ValueError(f"drops_first {self.drops_first!r} must be one of the rule's uses")

    @property
    def ranks(self) -> bool:
        """Whether the rule ranks by a score (else it needs none)."""
        return "score" in self.uses


def rules_using(parameter: str) -> list[str]:
    """Names of the rules that read `parameter` (for help texts)."""
    return [name for name, rule in RULES.items() if parameter in rule.uses]


def parameter_help(parameter: str) -> str:
    """One line for a parameter's flag or widget: the rules that read it, and what it means."""
    return f"{PARAMETERS[parameter]} (read by: {', '.join(rules_using(parameter)) or 'no rule'})"


def rule_help() -> str:
    """Every rule with its label and help, for the CLI's `--rule`."""
    return "; ".join(
        f"{name}{'' if rule.label == name else f' ({rule.label})'}: {rule.help}"
        for name, rule in RULES.items()
    )


def _hardest_first(h: np.ndarray) -> np.ndarray:
    """Rows by hardness, hardest first; ties keep row order."""
    return np.argsort(-h, kind="stable")


def _hardest(h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator) -> np.ndarray:
    return _hardest_first(h)[:m]


def _easiest(h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator) -> np.ndarray:
    return np.argsort(h, kind="stable")[:m]


def _random(h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(h.shape[0], size=m, replace=False)


def _skip(share: float, n: int, m: int) -> int:
    """How many hardest rows to drop first; shifted back when rounding would overrun n."""
    return min(round(share * n), n - m)


def _offset(h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator) -> np.ndarray:
    skip = _skip(config.offset, h.shape[0], m)
    return _hardest_first(h)[skip : skip + m]


def _offset_random(
    h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator
) -> np.ndarray:
    rest = _hardest_first(h)[_skip(config.offset, h.shape[0], m) :]  # what offset keeps from
    return rng.choice(rest, size=m, replace=False)


def _stratified(
    h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator
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


def _softmax(h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator) -> np.ndarray:
    return _sample(np.exp((h - h.max()) / config.temperature), h, m, rng)


def _linear(h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator) -> np.ndarray:
    return _sample(h - h.min() + LINEAR_EPS, h, m, rng)


def _all(h: np.ndarray, m: int, config: RuleSettings, rng: np.random.Generator) -> np.ndarray:
    return np.arange(m)  # m == n at fraction 1: every row


_RANKED = frozenset({"score", "normalization"})

RULES: dict[str, Rule] = {
    "hardest": Rule(
        _hardest,
        label="keep hardest",
        help="the top share by the score (hard examples teach most when data is plentiful)",
        uses=_RANKED,
    ),
    "easiest": Rule(
        _easiest,
        label="keep easiest",
        help="the bottom share by the score (the safer bet when data is scarce)",
        uses=_RANKED,
    ),
    "random": Rule(
        _random,
        label="random",
        help="a seeded uniform sample, the baseline every rule must beat",
        uses=frozenset(),
        seeded=True,
    ),
    "offset": Rule(
        _offset,
        label="offset window",
        help="drop the hardest `offset` share first (likely mislabeled), keep the next ones "
        "(Data Diet for noisy data)",
        uses=_RANKED | {"offset"},
        drops_first="offset",
        baseline="offset_random",
    ),
    "offset_random": Rule(
        _offset_random,
        label="random after offset",
        help="drop the hardest `offset` share first, keep a random sample of the rest (the "
        "offset window's baseline: its gain over random is denoising alone)",
        uses=_RANKED | {"offset"},
        seeded=True,
        drops_first="offset",
    ),
    "stratified": Rule(
        _stratified,
        label="stratified coverage",
        help="drop the hardest beta share, then fill the budget evenly across score bins "
        "(CCS, Zheng et al. 2023: the remedy when data is scarce)",
        uses=_RANKED | {"beta", "bins"},
        seeded=True,
        drops_first="beta",
    ),
    "softmax": Rule(
        _softmax,
        label="softmax sampling",
        help="sample without replacement, weights softmax(hardness / T)",
        uses=_RANKED | {"temperature"},
        seeded=True,
    ),
    "linear": Rule(
        _linear,
        label="linear sampling",
        help="sample without replacement, weights linear in hardness",
        uses=_RANKED,
        seeded=True,
    ),
    "all": Rule(
        _all,
        label="every row (cleaned dataset)",
        help="every row, training and carved held-out, minus your drops, relabels applied "
        "(fraction 1)",
        uses=frozenset(),
        keeps_all=True,
    ),
    "dedup": Rule(
        _all,
        label="every row, one per duplicate group",
        help="the cleaned dataset (every row minus your drops) keeping one row, the lowest "
        "id, per duplicate group (dup_group; fraction 1)",
        uses=frozenset(),
        keeps_all=True,
        dedups=True,
    ),
}


def _check_baselines() -> None:
    """A baseline must be a rule that reads no parameter its rule lacks (same trial settings)."""
    for name, rule in RULES.items():
        if rule.baseline is None:
            continue
        base = RULES.get(rule.baseline)
        if base is None or base.baseline is not None or not base.uses <= rule.uses:
            raise ValueError(f"rule {name!r}: baseline {rule.baseline!r} is not a usable rule")


_check_baselines()
