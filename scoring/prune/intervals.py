"""The confidence interval of a sweep's paired accuracy difference (rule minus random).

A sweep trains S seeds of each rule and measures every model on the same M evaluation
examples, so the difference d[s, m] (1 where only the rule's model of seed s got example m
right, −1 where only the other one did) is a crossed seed x example design. Its mean has
three sources of noise: which seeds were drawn, which M examples the evaluation split happens
to hold (shared by every model), and each model pair's own luck on each example. A crossed
bootstrap over both (what sweeps reported before) under-covers with few seeds: its seed
variance is the plug-in (ddof 0) one and its quantiles are normal, so at 3 seeds it covers a
true zero difference 82-91% of the time instead of 95%, the less the more the seeds dominate
the noise (simulated in `tests/prune/test_intervals.py`; this interval: 95-96%).
Here the seed part gets S − 1 degrees of freedom (a t-interval), and the evaluation set's
shared noise is added as a second variance component with its own quantile.
"""

from __future__ import annotations

import numpy as np

from scoring.errors import InputError

CI_LEVEL = 0.95
MIN_SEEDS = 2  # fewer: one seed says nothing about the seed-to-seed spread
TOO_FEW_SEEDS = "too few seeds for an interval"


def paired_interval(
    rule: np.ndarray, baseline: np.ndarray, *, level: float = CI_LEVEL
) -> tuple[float, float, float]:
    """Mean accuracy difference of paired trials, with a t-interval over seeds and examples.

    With D_s the mean difference of seed s and d̄_m that of example m (over seeds), D the grand
    mean, and the two-way residual mean square
    MS_e = sum_sm (d[s, m] − D_s − d̄_m + D)² / ((S − 1)(M − 1)):

    - v_seed = var(D_s, ddof=1) / S: seed-to-seed spread of the paired differences. Each D_s
      already carries its own model pair's luck on the M examples, so this term holds that
      noise too, with S − 1 degrees of freedom.
    - v_test = max(0, var(d̄_m, ddof=1) − MS_e / S) / M: the evaluation set's own sampling
      noise, shared by every seed (an example the rule tends to get right and random tends to
      miss), which D_s cannot show because every seed sees the same examples. Subtracting
      MS_e / S removes the pair noise that var(d̄_m) also holds, which v_seed already counts.
      M − 1 degrees of freedom.

    With q = (1 + level) / 2, the interval is D ± sqrt(t_{S−1}(q)² v_seed + t_{M−1}(q)² v_test):
    each part's half-width at its own degrees of freedom, added in quadrature, so a pure seed
    spread gives the plain t-interval of the D_s and a pure test-set spread the usual interval
    of a paired mean. (A single t with Satterthwaite's pooled df covered only ~92% at 3
    seeds in `tests/prune/test_intervals.py`'s simulations: its df grows exactly when the
    2-df seed variance happens to come out small.) It estimates the difference a new draw of
    seeds would show on new examples from the same distribution, as the bootstrap it replaces
    meant to.

    Parameters
    ----------
    rule, baseline : ndarray of shape (n_seeds, n_examples), bool
        Per-example correctness; row s of both comes from seed s (paired by seed), column m
        of both from example m (paired by example).
    level : float
        Coverage of the interval.

    Returns
    -------
    (difference, ci_low, ci_high) : floats
        difference = mean(rule) − mean(baseline). With fewer than `MIN_SEEDS` seeds the bounds
        are NaN (no interval: say `TOO_FEW_SEEDS`); when every difference is equal they are
        the difference itself.
    """
    d = _differences(rule, baseline, level)  # (S, M)
    diff = float(d.mean())
    if d.shape[0] < MIN_SEEDS:
        return diff, np.nan, np.nan
    v_seed, v_test = _variance_components(d)
    if v_seed + v_test <= 0:  # identical differences everywhere: nothing varies
        return diff, diff, diff
    from scipy.stats import t  # lazy: scipy.stats costs a few tenths of a second to import

    n_seeds, n = d.shape
    q = (1 + level) / 2
    half_test = float(t.ppf(q, n - 1)) ** 2 * v_test if n > 1 else 0.0
    half = np.sqrt(float(t.ppf(q, n_seeds - 1)) ** 2 * v_seed + half_test)
    return diff, diff - half, diff + half


def _differences(rule: np.ndarray, baseline: np.ndarray, level: float) -> np.ndarray:
    """(S, M) float64 rule − baseline, after checking the shapes and the level."""
    rule, baseline = np.asarray(rule), np.asarray(baseline)
    if rule.shape != baseline.shape or rule.ndim != 2 or rule.size == 0:
        raise InputError(
            "paired correctness must be two equal arrays of shape (seeds, examples), got "
            f"{rule.shape} and {baseline.shape}"
        )
    if not 0 < level < 1:
        raise InputError(f"level must lie in (0, 1), got {level}")
    return rule.astype(np.float64) - baseline.astype(np.float64)


def _variance_components(d: np.ndarray) -> tuple[float, float]:
    """(v_seed, v_test) of `paired_interval` for d of shape (S ≥ 2, M)."""
    n_seeds, n = d.shape
    per_seed = d.mean(axis=1)  # (S,)
    v_seed = float(per_seed.var(ddof=1)) / n_seeds
    v_test = 0.0
    if n > 1:  # one example: no spread over examples to measure
        per_example = d.mean(axis=0)  # (M,)
        residual = d - per_seed[:, None] - per_example[None, :] + d.mean()  # (S, M)
        ms_error = float((residual**2).sum()) / ((n_seeds - 1) * (n - 1))
        v_test = max(0.0, float(per_example.var(ddof=1)) - ms_error / n_seeds) / n
    return v_seed, v_test


def few_seeds_note(seeds: int) -> str | None:
    """What `seeds` seeds per point mean for the 95% CI, or None from 5 seeds on."""
    if seeds < MIN_SEEDS:
        return (
            f"{seeds} seed: {TOO_FEW_SEEDS} of the difference to random (an interval needs "
            f"at least {MIN_SEEDS} seeds to measure the seed-to-seed spread)."
        )
    if seeds < 5:
        from scipy.stats import t

        quantile = float(t.ppf((1 + CI_LEVEL) / 2, seeds - 1))
        return (
            f"With {seeds} seeds the 95% CI uses a t quantile with {seeds - 1} degree(s) of "
            f"freedom ({quantile:.1f}, against 2.0 for many seeds), so it is wide: 5 or more "
            "seeds give intervals that can tell a rule from random."
        )
    return None
