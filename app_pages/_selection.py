"""The selection widgets that the Pruning and Export pages share (one implementation, one state).

Both pages read and write the same `ui().choices` keys (`prune_*`), so a selection set on one
page is the selection on the other; each page gives its own widget-key prefix. Which controls
show for a rule comes from the rule registry (`scoring.prune.rules.RULES`): a rule's `uses`
names the parameters whose widgets appear, its `label` and `help` are what the menu and the
caption say, and `seeded` decides whether a seed is offered. The pre-steps the planner runs
before any rule (`SelectionConfig.drop_duplicates` / `drop_leaks`) are two switches
(`pre_step_switches`), shared the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app_pages._shared import escape_md, noun, page_header, pick, read_decisions, remembered
from scoring.errors import InputError
from scoring.prune.rules import (
    PARAMETERS,
    RULES,
    Rule,
    parameter_help,
    rules_using,
    scale_sensitive,
)
from scoring.prune.select import (
    PRE_STEPS,
    SelectionConfig,
    auto_offset,
    check_config,
    lost_classes,
    rule_meaning,
)
from scoring.read import neighbours
from scoring.read.views import NORMALIZATIONS, RunView

AUTO_OFFSET_HELP = (
    "Data Diet found the best offset equals the label-noise rate; this uses the share of "
    "examples cleanlab flags as that rate."
)


@dataclass(frozen=True)
class Selection:
    """What the selection widgets describe."""

    config: SelectionConfig | None  # None when refused; `refusal` then says why
    use_decisions: bool  # apply the Mislabeled page's decisions first
    refusal: str | None  # the engine's message for a selection that cannot be made
    score: str  # the score chosen, also for a rule that reads none (pages still draw it)


def scored_page_header(title: str, *, purpose: str) -> RunView:
    """`page_header`, and a way forward (then stop) when the run holds no scores to use."""
    run = page_header(title)
    if not run.score_keys:
        st.info(
            f"This run holds no scores to {purpose}. Score a run on the **Home** page first.",
            icon=":material/info:",
        )
        st.stop()
    return run


def selection_controls(
    run: RunView,
    *,
    prefix: str,
    decisions_help: str,
    seed: bool = False,
    use_decisions: bool | None = None,
    pre_steps: dict[str, bool] | None = None,
) -> Selection:
    """Score, rule, normalization, fraction, the rule's own parameters, balance, decisions.

    Parameters
    ----------
    run : RunView
    prefix : str
        Widget-key prefix of the page ("w_prune_", "export_"); the remembered choices are
        shared (`prune_*`) whatever the prefix.
    decisions_help : str
        What applying the decisions means on this page.
    seed : bool
        Offer a seed for seeded rules (the Pruning preview always shows seed 0).
    use_decisions : bool or None
        Whether to apply the decisions, when the page draws that switch itself (Export shows
        it up front); None draws it here.
    pre_steps : dict or None
        `pre_step_switches`' values, when the page draws them itself; None draws them here.
    """
    score, name, normalization = _rule_row(run.score_keys, prefix)
    rule = RULES[name]
    st.caption(f"{rule.label[0].upper()}{rule.label[1:]}: {rule.help}.")
    meaning = rule_meaning(name, score) if rule.ranks else None
    if meaning:  # a data value (knn_shapley): "easiest" is the most valuable
        st.caption(meaning)
    fraction, params = _fraction_row(run, rule, prefix)
    c1, c2, c3 = st.columns([1, 1, 2])
    with c1:
        balanced = _balanced_control(prefix)
    with c2:
        chosen_seed = _seed_control(prefix) if seed and rule.seeded else 0
    if use_decisions is None:
        with c3:
            use_decisions = _decisions_control(run, key=f"{prefix}decisions", help=decisions_help)
    if pre_steps is None:
        pre_steps = pre_step_switches(run, prefix=prefix)

    config = SelectionConfig(
        rule=name,
        fraction=round(float(fraction), 2),  # the slider's float steps carry round-off
        score=score if rule.ranks else None,
        normalization=normalization,
        class_balanced=bool(balanced),
        seed=int(chosen_seed),
        **params,
        **pre_steps,
    )
    try:
        check_config(config)
    except InputError as err:
        return Selection(None, use_decisions, str(err), score)
    return Selection(config, use_decisions, None, score)


def _rule_row(keys: list[str], prefix: str) -> tuple[str, str, str]:
    """The first row, score, rule and normalization: (score, rule name, normalization)."""
    c1, c2, c3 = st.columns(3)
    with c1:
        score = pick("Score", keys, key="score", index=keys.index("el2n") if "el2n" in keys else 0)
    with c2:
        name = pick(
            "Rule",
            [n for n, r in RULES.items() if not r.keeps_all],  # pruning rules only
            "prune_rule",
            widget_key=f"{prefix}rule",
            format_func=lambda r: RULES[r].label,
        )
    with c3:
        # A dataset-wide z-score changes only softmax's pick: offered there alone.
        offered = [n for n in NORMALIZATIONS if n != "dataset" or scale_sensitive(RULES[name])]
        normalization = pick(
            "Normalization",
            offered,
            "prune_norm",
            widget_key=f"{prefix}norm",
            format_func=lambda n: f"{n}: {NORMALIZATIONS[n]}",
        )
    return score, name, normalization


def _fraction_row(run: RunView, rule: Rule, prefix: str) -> tuple[float, dict[str, float | int]]:
    """The fraction kept, and beside it the rule's own parameters: (fraction, parameters)."""
    c1, c2 = st.columns(2)
    with c1:
        fraction = remembered(
            st.slider,
            "Fraction kept",
            "prune_fraction",
            0.5,
            key=f"{prefix}fraction",
            min_value=0.05,
            max_value=1.0,
            step=0.05,
        )
    with c2:  # score and normalization are always shown: the pages draw the score anyway
        params = {
            param: _parameter(run, param, prefix)
            for param in PARAMETERS
            if param in rule.uses and param not in ("score", "normalization")
        }
    return fraction, params


def _balanced_control(prefix: str) -> bool:
    """Whether the fraction is kept within each class (remembered as `prune_balanced`)."""
    return remembered(
        st.checkbox,
        "Class-balanced",
        "prune_balanced",
        False,
        key=f"{prefix}balanced",
        help="Keep the fraction within each class (at least one example per class).",
    )


def _seed_control(prefix: str) -> int:
    """The seed of a seeded rule (remembered as `prune_seed`)."""
    return remembered(
        st.number_input,
        "Seed",
        "prune_seed",
        0,
        key=f"{prefix}seed",
        min_value=0,
        max_value=2**31 - 1,
        step=1,
        help="The Pruning preview shows seed 0; the manifest records the seed used.",
    )


def pre_step_switches(run: RunView, *, prefix: str) -> dict[str, bool]:
    """The switches "Drop duplicates first" and "Drop leaked rows first" (`PRE_STEPS`).

    Remembered as `prune_drop_duplicates` / `prune_drop_leaks` (Pruning and Export share
    them); disabled, with how to get the column, on a run without `dup_group` / `leak_of`.
    """
    table = run.table
    counts = {
        "drop_duplicates": _redundant(table["dup_group"]) if "dup_group" in table else None,
        "drop_leaks": int((table["leak_of"] >= 0).sum()) if "leak_of" in table else None,
    }
    words = {
        "drop_duplicates": (
            "Drop duplicates first",
            "{n:,} {rows} beyond one per group",
            "Before the rule, keep one row per duplicate group (exact copies and near "
            "duplicates; the lowest id stays). Groups are on the Duplicates & outliers page.",
        ),
        "drop_leaks": (
            "Drop leaked rows first",
            "{n:,} training {rows} that copy a held-out/test row",
            "Before the rule, leave out training rows that copy a held-out/test row: they "
            "inflate test accuracy. Pairs are on the Duplicates & outliers page.",
        ),
    }
    out = {}
    for column, name in zip(st.columns(len(PRE_STEPS)), PRE_STEPS, strict=True):
        label, count, help_text = words[name]
        n = counts[name]
        missing = neighbours.missing_message(run, PRE_STEPS[name])
        with column:
            value = remembered(
                st.checkbox,
                f"{label} ({count.format(n=n, rows=noun(n, 'row'))})" if n is not None else label,
                f"prune_{name}",
                False,
                key=f"{prefix}{name}",
                disabled=missing is not None,
                help=help_text if missing is None else escape_md(missing),
            )
        out[name] = bool(value) and missing is None
    return out


def _redundant(groups) -> int:
    """Rows a dedup drops: rows in groups minus one per group."""
    groups = np.asarray(groups, dtype=np.int64)
    return int((groups >= 0).sum()) - int(np.unique(groups[groups >= 0]).size)


def _offset_control(run: RunView, prefix: str) -> float:
    """The offset slider, or the run's own noise estimate (cl_issue share) when auto is on."""
    auto = False
    if "cl_issue" in run.table.columns:
        auto = remembered(
            st.checkbox,
            "auto (noise estimate from cl_issue)",
            "prune_auto_offset",
            False,
            key=f"{prefix}auto_offset",
            help=AUTO_OFFSET_HELP,
        )
    offset = remembered(
        st.slider,
        "Offset: hardest share dropped first",
        "prune_offset",
        0.1,
        key=f"{prefix}offset",
        min_value=0.0,
        max_value=0.5,
        step=0.01,
        disabled=bool(auto),
        help=parameter_help("offset"),
    )
    offset = round(float(offset), 2)
    if not auto:
        return offset
    try:
        estimate = auto_offset(run)
    except InputError as err:
        st.warning(f"{escape_md(err)}. Using the slider's offset instead.")
        return offset
    st.caption(
        f"Auto offset: **{estimate:.3f}**, the share of examples cl_issue flags as "
        "likely mislabeled."
    )
    return float(estimate)


@dataclass(frozen=True)
class _Number:
    """A number input for one rule parameter."""

    label: str
    default: float | int
    min_value: float | int
    max_value: float | int
    step: float | int
    cast: Callable[[float], float | int]  # the config's type (and rounding of float steps)


_NUMBERS = {
    "temperature": _Number("Temperature", 1.0, 0.01, 100.0, 0.1, float),
    "beta": _Number("Beta: hardest share dropped", 0.1, 0.0, 0.95, 0.05, lambda v: round(v, 4)),
    "bins": _Number("Bins", 50, 1, 1000, 1, int),
}


def _parameter(run: RunView, name: str, prefix: str) -> float | int:
    """The widget of one rule parameter beyond score and normalization (`PARAMETERS`)."""
    if name == "offset":
        return _offset_control(run, prefix)
    spec = _NUMBERS[name]
    value = remembered(
        st.number_input,
        f"{spec.label} ({', '.join(rules_using(name))})",
        f"prune_{name}",
        spec.default,
        key=f"{prefix}{name}",
        min_value=spec.min_value,
        max_value=spec.max_value,
        step=spec.step,
        help=parameter_help(name),
    )
    return spec.cast(float(value))


def _decisions_control(run: RunView, *, help: str, key: str) -> bool:
    """Whether to apply the Mislabeled page's decisions (disabled while there are none)."""
    made = read_decisions(run)
    n = len(made)
    drops = int((made["action"] == "drop").sum()) if n else 0
    relabels = int((made["action"] == "relabel").sum()) if n else 0
    label = (
        f"Apply Mislabeled decisions ({n}: {drops} {noun(drops, 'drop')}, "
        f"{relabels} {noun(relabels, 'relabel')})"
        if n
        else "Apply Mislabeled decisions (none made yet)"
    )
    applied = remembered(
        st.checkbox, label, "prune_decisions", False, key=key, disabled=n == 0, help=help
    )
    return bool(applied) and n > 0


def warn_lost_classes(run: RunView, labels: np.ndarray, kept: np.ndarray) -> None:
    """Warn when the kept rows hold no example of a class the rows in play have.

    `labels` and `kept` are of shape (N',): the labels that matter on the page (trained on,
    or written) and the kept mask of a `SelectionPlan`.
    """
    lost = lost_classes(labels, np.flatnonzero(kept))
    if lost:
        names = run.label_names
        st.warning(
            f"This selection keeps no example of {len(lost)} class(es): "
            f"{', '.join(escape_md(names[c]) for c in lost)}. A model trained on it can never "
            "predict them; turn on **Class-balanced** or keep a larger fraction.",
            icon=":material/warning:",
        )
