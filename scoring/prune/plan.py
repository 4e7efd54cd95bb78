"""The one selection planner: which examples of a run a selection keeps, decisions first.

`plan_selection` is what the Pruning preview draws, what the Export page counts, what the
export writer writes and what retraining trains on. The order is fixed here and nowhere else:
the rows a caller holds out (retraining's validation split) leave the pool, the user's
decisions are applied (drops leave the pool, relabels change the labels the rule sees), the
selection's pre-steps run (`drop_leaks`: training rows that copy a held-out/test row leave;
`drop_duplicates`, or a rule that `dedups`: one row per duplicate group stays, the lowest id
among its rows still in play, `scoring.read.neighbours.keep_one_per_group`), then the rule
keeps its `fraction` of what is left. For the rule `all` (the cleaned dataset) the
plan also holds the held-out rows carved from the same source (`suspects.heldout_rows`), with
the same decisions applied, so an export writes every row of the user's data but the drops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scoring.errors import InputError
from scoring.prune.select import (
    RULES,
    SelectionConfig,
    apply_decisions,
    check_config,
    select_indices,
)
from scoring.read import neighbours
from scoring.read.decisions import CLEAR
from scoring.read.views import RunView, normalize


@dataclass(frozen=True)
class SelectionPlan:
    """A selection over one run, with the decisions applied. N' = examples left in play.

    Attributes
    ----------
    rows : ndarray of shape (N',), int64
        Positions into `view.table` of the examples in play (not held out, not dropped by a
        decision), ascending.
    labels : ndarray of shape (N',), int64
        The labels the rule ranks with and a retrained model learns: the run's `label`
        column with relabels applied.
    kept : ndarray of shape (N',), bool
        Kept by the rule.
    original_labels : ndarray of shape (N',), int64
        The source's own labels before any decision (`true_label` where a run's `--noise`
        check permuted `label`: injected labels are not data).
    final_labels : ndarray of shape (N',), int64
        `original_labels` with relabels applied: what an export writes.
    n_dropped : int
        Examples the decisions dropped (not in `rows`; held-out rows not counted).
    n_decisions : int
        Current decisions in the run (0 when they are not applied).
    n_excluded : int
        Examples held out by the caller (`exclude`), never in `rows`.
    heldout_ids : ndarray of shape (H,), int64
        Rule `all` only (else empty): ids of the carved held-out rows written besides the
        training rows (not dropped by a decision), in `heldout.parquet` order. They are not
        in `view.table`, so they have no position; an export writes them with split heldout.
    heldout_original : ndarray of shape (H,), int64
        Their source labels.
    heldout_final : ndarray of shape (H,), int64
        With relabels applied.
    n_heldout_dropped : int
        Carved held-out rows the decisions dropped (rule `all` only).
    n_leaks_dropped : int
        Training rows `drop_leaks` took out (in play after the decisions, `leak_of` != -1).
    n_duplicates_dropped : int
        Training rows dropping duplicates took out (after the leaks): the group members left
        in play beside each group's survivor.
    """

    rows: np.ndarray
    labels: np.ndarray
    kept: np.ndarray
    original_labels: np.ndarray
    final_labels: np.ndarray
    n_dropped: int
    n_decisions: int
    n_excluded: int = 0
    heldout_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    heldout_original: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    heldout_final: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_heldout_dropped: int = 0
    n_leaks_dropped: int = 0
    n_duplicates_dropped: int = 0

    @property
    def positions(self) -> np.ndarray:
        """(n_kept,) positions into `view.table` of the kept examples, ascending."""
        return self.rows[self.kept]

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())

    @property
    def n_heldout(self) -> int:
        """Held-out rows written besides the kept training rows (rule `all` only)."""
        return int(self.heldout_ids.shape[0])

    @property
    def n_written(self) -> int:
        """Rows an export writes: kept training rows plus held-out rows (the page's count)."""
        return self.n_kept + self.n_heldout

    @property
    def relabelled(self) -> np.ndarray:
        """(N',) bool: a decision changed the example's label from the source's."""
        return self.final_labels != self.original_labels

    @property
    def n_relabelled(self) -> int:
        """Written examples (kept training rows and held-out rows) whose label a decision
        changed."""
        held = int((self.heldout_final != self.heldout_original).sum())
        return int((self.relabelled & self.kept).sum()) + held

    @property
    def n_dropped_all(self) -> int:
        """Drops of training and (rule `all`) held-out rows together."""
        return self.n_dropped + self.n_heldout_dropped

    def written_per_class(self, n_classes: int) -> np.ndarray:
        """(n_classes,) written examples per class of the final labels: what an export writes
        (held-out rows included for rule `all`)."""
        final = np.concatenate([self.final_labels[self.kept], self.heldout_final])
        return np.bincount(final.astype(np.int64), minlength=n_classes)[:n_classes]


def plan_selection(
    view: RunView,
    config: SelectionConfig,
    decisions: pd.DataFrame | None = None,
    *,
    exclude: np.ndarray | None = None,
) -> SelectionPlan:
    """Hold out `exclude`, apply `decisions`, then `config`'s rule, to a finished run.

    Parameters
    ----------
    view : RunView
        The run; values come from `view.table[config.score]`, their direction from its summary.
    config : SelectionConfig
    decisions : DataFrame with columns id, action, new_label, or None
        As from `scoring.read.decisions.latest`; None selects among every example.
    exclude : ndarray of shape (E,), int, or None
        Positions into `view.table` that are never in play (retraining's validation split,
        `sweeps.validation_rows`): the rule's fraction is of the rows left.

    Returns
    -------
    SelectionPlan

    Raises
    ------
    InputError
        A bad config, a score the run lacks, decisions that drop every example, or a
        selection that keeps none (see `select.select_indices`).
    """
    _check_plannable(config)
    pool = _pool(view, decisions, exclude)
    in_play, n_leaks, n_dups = _pre_steps(view, config, pool.in_play)
    rows = np.flatnonzero(in_play)
    labels = pool.labels[rows]  # (N',)
    values, higher = _rule_values(view, config, rows)
    picked = select_indices(values, labels, config, higher_is_harder=higher)
    kept = np.zeros(rows.shape[0], dtype=bool)
    kept[picked] = True
    held = _heldout(view, decisions) if RULES[config.rule].keeps_all else {}
    return SelectionPlan(
        rows=rows.astype(np.int64),
        labels=labels,
        kept=kept,
        original_labels=pool.original[rows],
        final_labels=pool.final[rows],
        n_dropped=pool.n_dropped,
        n_decisions=0 if decisions is None else _n_current(decisions),
        n_excluded=pool.n_excluded,
        n_leaks_dropped=n_leaks,
        n_duplicates_dropped=n_dups,
        **held,
    )


def select_run(
    view: RunView, config: SelectionConfig, *, decisions: pd.DataFrame | None = None
) -> np.ndarray:
    """Row positions into `view.table` that `config` keeps: `plan_selection(...).positions`.

    Kept for callers that only need the rows; the plan (decisions first, then the rule) is
    computed by `plan_selection`, the one planner.
    """
    return plan_selection(view, config, decisions).positions


def _check_plannable(config: SelectionConfig) -> None:
    """`check_config`, and rule `all` (the cleaned dataset) only at fraction 1."""
    check_config(config)
    if RULES[config.rule].keeps_all and config.fraction != 1:
        raise InputError(
            f"rule 'all' keeps every row, so its fraction is 1, got {config.fraction:g} "
            "(pick another rule to keep a share)"
        )


@dataclass(frozen=True)
class _Pool:
    """A run's rows after the held-out split and the decisions, before the pre-steps.

    `in_play`, `labels`, `original` and `final` are of shape (N,): every row of `view.table`.
    """

    in_play: np.ndarray  # bool: not held out by the caller, not dropped by a decision
    labels: np.ndarray  # int64: the run's `label`, relabels applied (what the rule sees)
    original: np.ndarray  # int64: the source's own labels (`source_labels`)
    final: np.ndarray  # int64: `original` with relabels applied (what an export writes)
    n_excluded: int
    n_dropped: int


def _pool(view: RunView, decisions: pd.DataFrame | None, exclude: np.ndarray | None) -> _Pool:
    """Hold out `exclude`, then apply `decisions` (InputError when they drop every row left)."""
    ids = view.table["id"].to_numpy()
    labels = view.table["label"].to_numpy(np.int64)  # (N,)
    original = source_labels(view)  # (N,)
    in_play = np.ones(labels.shape[0], dtype=bool)
    if exclude is not None:
        in_play[np.asarray(exclude, dtype=np.int64)] = False
    n_excluded = int((~in_play).sum())
    if decisions is None:
        return _Pool(in_play, labels, original, original, n_excluded, n_dropped=0)
    keep, labels = apply_decisions(ids, labels, decisions)
    _, final = apply_decisions(ids, original, decisions)
    n_in, n_dropped = int(in_play.sum()), int((in_play & ~keep).sum())
    in_play &= keep
    if not in_play.any():
        held = f" not held out ({n_excluded:,} are)" if n_excluded else ""
        raise InputError(
            f"your decisions drop all {n_in:,} examples{held}, so there are no examples "
            "left to select from (withdraw some drops, or do not apply the decisions)"
        )
    return _Pool(in_play, labels, original, final, n_excluded, n_dropped)


def _rule_values(
    view: RunView, config: SelectionConfig, rows: np.ndarray
) -> tuple[np.ndarray | None, bool]:
    """The score the rule ranks `rows` by, shape (N',), and its direction; (None, True) when
    the rule reads no score."""
    if not RULES[config.rule].ranks:
        return None, True  # the direction is unused: the rule reads no score
    key = str(config.score)  # check_config: a rule that ranks has a score
    _check_score(view, key)
    return view.table[key].to_numpy(np.float64)[rows], view.higher_is_harder(key)


def _pre_steps(
    view: RunView, config: SelectionConfig, in_play: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """Leaks out, then one row per duplicate group: (in_play (N,), n leaks, n duplicates)."""
    n_leaks = n_dups = 0
    if config.drop_leaks:
        leaked = neighbours.require(view, "leak_of") >= 0  # (N,)
        n_leaks = int((in_play & leaked).sum())
        in_play = in_play & ~leaked
    if config.drop_duplicates or RULES[config.rule].dedups:
        groups = neighbours.require(view, "dup_group")  # (N,)
        ids = view.table["id"].to_numpy(np.int64)
        kept = neighbours.keep_one_per_group(groups, ids, in_play)
        n_dups = int((in_play & ~kept).sum())
        in_play = kept
    if n_leaks and not in_play.any():
        raise InputError(
            "dropping leaked rows leaves no examples to select from (every row left copies "
            "a held-out/test row); select without drop_leaks"
        )
    return in_play, n_leaks, n_dups


def _heldout(view: RunView, decisions: pd.DataFrame | None) -> dict:
    """The carved held-out rows rule `all` writes, decisions applied (SelectionPlan fields)."""
    from scoring.read.suspects import heldout_rows  # suspects builds on views, as we do

    held = heldout_rows(view)
    if held is None:
        return {}
    ids = held["id"].to_numpy(np.int64)
    original = held["label"].to_numpy(np.int64)
    keep, final = np.ones(ids.shape[0], dtype=bool), original
    if decisions is not None:
        keep, final = apply_decisions(ids, original, decisions)
    return {
        "heldout_ids": ids[keep],
        "heldout_original": original[keep],
        "heldout_final": np.asarray(final, np.int64)[keep],
        "n_heldout_dropped": int((~keep).sum()),
    }


def _n_current(decisions: pd.DataFrame) -> int:
    """Decisions in force: the last per id, `clear` withdrawn (as `decisions.latest`)."""
    current = decisions.drop_duplicates("id", keep="last")
    return int((current["action"] != CLEAR).sum())


def source_labels(view: RunView) -> np.ndarray:
    """(n_examples,) int64: the source's own labels, not those a `--noise` check injected."""
    column = "true_label" if "true_label" in view.table.columns else "label"
    return view.table[column].to_numpy(np.int64)


def shown_values(view: RunView, plan: SelectionPlan, key: str, normalization: str) -> np.ndarray:
    """The score `key` of the examples in play, normalized as the rule ranks them.

    Returns
    -------
    ndarray of shape (N',), float64
        For drawing kept vs dropped; NaN where the run has no value.
    """
    _check_score(view, key)
    values = view.table[key].to_numpy(np.float64)[plan.rows]  # (N',)
    return normalize(values, plan.labels, normalization)


def _check_score(view: RunView, key: str) -> None:
    if key not in view.score_keys:
        have = ", ".join(view.score_keys) or "none"
        raise InputError(f"this run has no score {key!r}; it has: {have}")
