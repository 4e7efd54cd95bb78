"""Pruning: choose what to keep by a score, see it at once, and prove it by retraining.

The preview (examples kept per class, score distribution kept vs dropped) comes from the one
selection planner (`scoring.prune.plan`: decisions first, then the rule) that the export and
the retraining sweep call too, so what is shown is what gets trained on. Retraining never runs
in this process: a sweep is a background job started with its typed config
(`jobs.start_sweep`) whose trials land one by one in `<run>/sweeps/trials/`; the chart reads
them back and fills in while the job runs.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app_pages._selection import (
    Selection,
    scored_page_header,
    selection_controls,
    warn_lost_classes,
)
from app_pages._shared import (
    cache_dir,
    code_md,
    escape_md,
    mtime,
    noun,
    pick,
    read_decisions,
    remembered,
    ui,
)
from scoring import jobs, store
from scoring.errors import InputError
from scoring.prune.intervals import TOO_FEW_SEEDS, few_seeds_note
from scoring.prune.plan import SelectionPlan, plan_selection, shown_values
from scoring.prune.rules import RULES
from scoring.prune.select import SelectionConfig, check_config
from scoring.prune.sweeps import (
    VALIDATION_FRACTION,
    SweepConfig,
    accuracy_text,
    cached_trials,
    difference_text,
    indistinguishable,
    matching_trials,
    n_finished,
    retrain_blocker,
    sweep_summary,
    trials_of,
)
from scoring.read.stats import bin_edges
from scoring.read.suspects import default_detector
from scoring.read.views import RunView

SCHEDULE_HELP = {
    "steps": "same optimizer steps (Data Diet)",
    "epochs": "same epochs",
}
DEFAULT_FRACTIONS = "0.2,0.4,0.6,0.8"
HIST_BINS = 40
KEPT_COLOR, DROPPED_COLOR, RANDOM_COLOR = "#1f77b4", "#c7c7c7", "#7f7f7f"
BASELINE_COLOR = "#ff7f0e"
SPLIT_NAMES = {"validation": "validation", "test": "test"}
SPLIT_HELP = {
    "validation": "validation split (choose here)",
    "test": "test split (report, do not tune)",
}


@st.cache_data(show_spinner=False, max_entries=4)
def _trials_cached(run: str, stamp: tuple[float, int], label_names: tuple[str, ...]):
    return cached_trials(Path(run), list(label_names))


def _trials(run: RunView) -> pd.DataFrame:
    """Every finished trial of the run; re-read whenever a trial file is added."""
    rd = store.RunDir(run.path)
    count = len(rd.trial_files())
    return _trials_cached(str(run.path), (mtime(rd.trials_dir), count), tuple(run.label_names))


# --- preview -------------------------------------------------------------------------------


def _class_figure(plan: SelectionPlan, names: list[str]) -> go.Figure:
    k = len(names)
    total = np.bincount(plan.labels, minlength=k)[:k]  # (K,)
    kept = np.bincount(plan.labels[plan.kept], minlength=k)[:k]  # (K,)
    fig = go.Figure(
        [
            go.Bar(name="total", x=names, y=total, marker_color=DROPPED_COLOR),
            go.Bar(name="kept", x=names, y=kept, marker_color=KEPT_COLOR),
        ]
    )
    fig.update_layout(
        barmode="overlay",
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "Examples kept per class", "font": {"size": 14}},
        legend={"orientation": "h", "y": -0.2},
        xaxis={"type": "category", "title": None},
        yaxis={"title": "examples"},
    )
    return fig


def _distribution_figure(plan: SelectionPlan, values: np.ndarray, what: str) -> go.Figure:
    """Overlaid histograms from binned counts: the figure carries bins, never examples.

    `values` (N',) is the score of the examples in play as ranked; `what` names it.
    """
    edges = bin_edges(values, HIST_BINS)  # (B+1,)
    finite = np.isfinite(values)
    kept_counts, _ = np.histogram(values[plan.kept & finite], bins=edges)
    dropped_counts, _ = np.histogram(values[~plan.kept & finite], bins=edges)
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    bars = (("dropped", dropped_counts, DROPPED_COLOR, 0.8), ("kept", kept_counts, KEPT_COLOR, 0.7))
    fig = go.Figure(
        [
            go.Bar(name=name, x=centers, y=y, width=widths, marker_color=color, opacity=opacity)
            for name, y, color, opacity in bars
        ]
    )
    fig.update_layout(
        barmode="overlay",
        bargap=0,
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "Score distribution, kept vs dropped", "font": {"size": 14}},
        legend={"orientation": "h", "y": -0.2},
        xaxis={"title": what},
        yaxis={"title": "examples"},
    )
    return fig


def _show_preview(run: RunView, selection: Selection) -> bool:
    """Draw the preview; False when the selection is refused (nothing to retrain)."""
    sel = selection.config
    assert sel is not None  # the caller shows the refusal otherwise
    try:
        plan = plan_selection(run, sel, read_decisions(run) if selection.use_decisions else None)
        values = shown_values(run, plan, selection.score, sel.normalization)  # (N',)
    except InputError as err:
        st.warning(escape_md(err))
        return False
    n_kept, n_all = plan.n_kept, plan.rows.shape[0]
    note = f"Keeps **{n_kept:,}** of {n_all:,} examples ({n_kept / n_all:.0%})"
    if selection.use_decisions:
        note += f", after {plan.n_dropped:,} dropped by your decisions"
    if sel.drop_leaks or sel.drop_duplicates:
        note += (
            f", after {plan.n_leaks_dropped:,} leaked and {plan.n_duplicates_dropped:,} "
            "duplicate rows dropped"
        )
    if RULES[sel.rule].seeded:
        note += "; the preview shows seed 0, each retraining seed draws its own subset"
    if "cl_issue" in run.table.columns:  # what the rule does with the likely label errors
        flagged = run.table["cl_issue"].to_numpy(np.float64)[plan.rows] > 0.5  # (N',)
        n_flagged = int(flagged.sum())
        note += (
            f". It keeps **{int((flagged & plan.kept).sum()):,}** of the {n_flagged:,} "
            f"training {noun(n_flagged, 'row')} cleanlab flags as likely mislabeled (pruning "
            "ranks training rows only; Mislabeled counts held-out rows too)"
        )
    st.markdown(note + ".")
    warn_lost_classes(run, plan.labels, plan.kept)
    norm = sel.normalization
    what = selection.score if norm == "none" else f"{selection.score} ({norm} z)"
    left, right = st.columns(2)
    left.plotly_chart(_class_figure(plan, run.label_names), width="stretch")
    right.plotly_chart(_distribution_figure(plan, values, what), width="stretch")
    return True


OFFSET_SUGGESTION = 0.02  # cleanlab flag share from which the offset rule is suggested


def _use_offset_auto(detector: str) -> None:
    """Button callback: the offset rule with auto offset, ranked by the run's default
    detector (`consensus` when the run holds it); the widgets re-read the choices."""
    choices = ui().choices
    choices["prune_rule"], choices["prune_auto_offset"] = "offset", True
    choices["score"] = detector
    for key in ("w_prune_rule", "w_prune_auto_offset", "w_score"):
        st.session_state.pop(key, None)


def _offset_suggestion(run: RunView, selection: Selection) -> None:
    """On a run whose cleanlab flags reach 2%, suggest Data Diet's offset rule with `auto`."""
    if "cl_issue" not in run.table.columns:
        return
    share = float((run.table["cl_issue"].to_numpy(np.float64) > 0.5).mean())
    auto = bool(ui().choices.get("prune_auto_offset"))
    on_offset = selection.config is not None and selection.config.rule == "offset"
    if share < OFFSET_SUGGESTION or (on_offset and auto):
        return
    detector = default_detector(run)
    st.info(
        f"cleanlab flags **{share:.1%}** of this run's training rows as likely mislabeled. Rules "
        "that keep the hardest examples keep those labels too; the **offset** rule with "
        "**auto** first drops the hardest share equal to that estimate (Data Diet's rule for "
        f"noisy data), ranked by this run's default detector, `{detector}`.",
        icon=":material/lightbulb:",
    )
    st.button(
        "Use offset with auto",
        key="prune_use_offset",
        icon=":material/filter_alt:",
        on_click=_use_offset_auto,
        args=(detector,),
    )


# --- retraining ----------------------------------------------------------------------------


def _parse_fractions(text: str) -> tuple[list[float] | None, str | None]:
    """Comma-separated fractions in (0, 1], sorted and deduplicated; or why not."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        return None, "Give at least one fraction for the sweep, e.g. 0.2,0.4,0.6,0.8."
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            return None, f"{part!r} is not a number: write fractions like 0.2,0.4,0.6,0.8."
        if not 0 < value <= 1:
            return None, f"Fractions kept must lie in (0, 1]; {part} does not."
        values.append(round(value, 4))
    return sorted(set(values)), None


def _job_key(run: RunView) -> str:
    return f"prune_job:{run.path}"


def _known_job(run: RunView) -> jobs.JobStatus | None:
    """This session's last sweep job for the run, or one running on it from elsewhere."""
    known = ui().choices.get(_job_key(run))
    if isinstance(known, dict):
        status = jobs.status(str(known["id"]), cache_dir())
        if status is not None:
            return status
    for job in jobs.running(cache_dir()):
        if job.kind == "sweep" and job.run and Path(job.run) == run.path:
            return job
    return None


def _start_sweep(run: RunView, sweep: SweepConfig) -> None:
    job_id = jobs.start_sweep(run.path, sweep, cache_dir())
    ui().choices[_job_key(run)] = {
        "id": job_id,
        "n_trials": len(trials_of(sweep)),
        "sweep": sweep.to_dict(),
    }
    st.rerun()  # show the live status (and start polling) at once


def _series_name(sel: SelectionConfig) -> str:
    if not RULES[sel.rule].ranks:
        return sel.rule
    return f"{sel.rule} by {sel.score}"


def _wanted(sel: SelectionConfig) -> list[tuple[SelectionConfig, str]]:
    """The series a sweep of `sel` draws: the rule, its registry baseline, random; colours."""
    wanted = [(sel, KEPT_COLOR)]
    baseline = RULES[sel.rule].baseline
    if baseline is not None:
        wanted.append((dataclasses.replace(sel, rule=baseline), BASELINE_COLOR))
    if sel.rule != "random":
        random_sel = SelectionConfig(rule="random", fraction=1.0, class_balanced=sel.class_balanced)
        wanted.append((random_sel, RANDOM_COLOR))
    return wanted


@st.cache_data(show_spinner=False, max_entries=16)
def _summary_cached(
    run: str,
    stamp: tuple[float, int],
    label_names: tuple[str, ...],
    sweep: dict,
    split: str,
    fractions: tuple[float, ...] | None,
) -> pd.DataFrame:
    """`sweep_summary` of the trials that `sweep`'s rule, baseline and random left, one split.

    Cached on the trials' stamp: the bootstrap runs once per new trial, not once per click.
    """
    config = SweepConfig.from_dict(sweep)
    trials = _trials_cached(run, stamp, label_names)
    found = [
        matching_trials(
            trials, which, schedule=config.schedule, apply_decisions=config.apply_decisions
        )
        for which, _ in _wanted(config.selection)
    ]
    found = [f for f in found if not f.empty]
    if not found:
        return pd.DataFrame()
    return sweep_summary(pd.concat(found, ignore_index=True), [split], fractions=fractions)


def _summary(
    run: RunView, sweep: SweepConfig, split: str, fractions: tuple[float, ...] | None = None
) -> pd.DataFrame:
    rd = store.RunDir(run.path)
    stamp = (mtime(rd.trials_dir), len(rd.trial_files()))
    return _summary_cached(
        str(run.path), stamp, tuple(run.label_names), sweep.to_dict(), split, fractions
    )


def _names(summary: pd.DataFrame) -> list[str]:
    """The series name of each summary row (as the legend shows it)."""
    return [
        rule if pd.isna(score) else f"{rule} by {score}"
        for rule, score in zip(summary["rule"], summary["score"], strict=True)
    ]


def _accuracy_figure(
    summary: pd.DataFrame, colors: dict[str, str], split: str, full: float | None
) -> go.Figure:
    """Accuracy vs fraction kept per series (top) and each one's paired difference to random
    with its bootstrap CI band (bottom); from `sweep_summary` rows of one split."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.06
    )
    names = np.array(_names(summary))
    for name in dict.fromkeys(names):
        points = summary[names == name].sort_values("fraction")
        color = colors.get(name, RANDOM_COLOR)
        _add_accuracy_traces(fig, points, name, color)
        _add_difference_traces(fig, points, name, color)
    fig.add_hline(y=0, line_color="#7f7f7f", line_width=1, row=2, col=1)
    if full is not None:
        fig.add_hline(
            y=full,
            line_dash="dash",
            line_color="#2ca02c",
            annotation_text=f"all data {full:.3f}",
            annotation_position="bottom right",
            row=1,
            col=1,
        )
    fig.update_layout(
        height=560,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.12},
    )
    fig.update_xaxes(range=[0, 1.02])
    fig.update_xaxes(title="fraction kept", row=2, col=1)
    fig.update_yaxes(title=f"{SPLIT_NAMES[split]} accuracy", row=1, col=1)
    fig.update_yaxes(title="− random", row=2, col=1)
    return fig


def _add_accuracy_traces(fig: go.Figure, points: pd.DataFrame, name: str, color: str) -> None:
    """One series' mean accuracy over seeds and its min–max band, in the top panel."""
    x = points["fraction"].to_numpy()
    # The band: min-max over seeds, drawn as one closed polygon under the mean line.
    fig.add_trace(
        _band(x, points["accuracy_min"], points["accuracy_max"], color, f"{name} (min–max)"),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=points["accuracy_mean"].to_numpy(),
            mode="lines+markers",
            name=name,
            legendgroup=name,
            line={"color": color, "width": 2},
            customdata=np.stack([points["accuracy_std"], points["seeds"]], axis=1),
            hovertemplate="kept %{x:.2f}: %{y:.4f} ± %{customdata[0]:.4f} "
            "(%{customdata[1]} seeds)<extra>" + name + "</extra>",
        ),
        row=1,
        col=1,
    )


def _add_difference_traces(fig: go.Figure, points: pd.DataFrame, name: str, color: str) -> None:
    """One series minus random with its 95% CI band, in the bottom panel (random has none)."""
    diff = points[np.isfinite(points["diff_vs_random"].to_numpy(dtype=np.float64))]
    if diff.empty:
        return
    dx = diff["fraction"].to_numpy()
    fig.add_trace(
        _band(dx, diff["ci_low"], diff["ci_high"], color, f"{name} − random (95% CI)"),
        row=2,
        col=1,
    )
    same = [
        indistinguishable(lo, hi) for lo, hi in zip(diff["ci_low"], diff["ci_high"], strict=True)
    ]
    fig.add_trace(
        go.Scatter(
            x=dx,
            y=diff["diff_vs_random"].to_numpy(),
            mode="lines+markers+text",
            name=f"{name} − random",
            legendgroup=name,
            showlegend=False,
            line={"color": color, "width": 2, "dash": "dot"},
            marker={"symbol": ["circle-open" if s else "circle" for s in same], "size": 9},
            text=["indistinguishable from random" if s else "" for s in same],
            textposition="top center",
            textfont={"size": 10, "color": color},
            customdata=np.stack([diff["ci_low"], diff["ci_high"]], axis=1),
            hovertemplate="kept %{x:.2f}: %{y:+.4f} [%{customdata[0]:+.4f}, "
            "%{customdata[1]:+.4f}]<extra>" + name + " − random</extra>",
        ),
        row=2,
        col=1,
    )


def _band(x: np.ndarray, low: pd.Series, high: pd.Series, color: str, name: str) -> go.Scatter:
    """A closed polygon from `low` to `high` over `x` (no legend, no hover)."""
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([high.to_numpy(), low.to_numpy()[::-1]]),
        fill="toself",
        mode="lines",
        fillcolor=color,
        opacity=0.2,
        line={"width": 0},
        hoverinfo="skip",
        showlegend=False,
        name=name,
    )


def _full_accuracy(run: RunView) -> float | None:
    acc = run.summary.get("test_accuracy_mean")
    if acc is None and run.summary.get("test_accuracy"):
        acc = float(np.mean(run.summary["test_accuracy"]))
    return None if acc is None else float(acc)


def _summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per series and fraction, as the page shows it."""
    table = pd.DataFrame(
        {
            "fraction": summary["fraction"].to_numpy(),
            "rule": _names(summary),
            "accuracy (mean ± std)": [
                accuracy_text(m, s)
                for m, s in zip(summary["accuracy_mean"], summary["accuracy_std"], strict=True)
            ],
            "− random [95% CI]": [
                difference_text(*v)
                for v in zip(
                    summary["diff_vs_random"], summary["ci_low"], summary["ci_high"], strict=True
                )
            ],
            "seeds": summary["seeds"].to_numpy(),
            "examples kept": summary["n_kept"].round().astype(int).to_numpy(),
        }
    )
    baseline = summary["baseline"].dropna()
    if not baseline.empty:
        table[f"− {baseline.iloc[0]} [95% CI]"] = [
            difference_text(*v)
            for v in zip(
                summary["diff_vs_baseline"],
                summary["baseline_ci_low"],
                summary["baseline_ci_high"],
                strict=True,
            )
        ]
    return table.sort_values(["fraction", "rule"], kind="stable").reset_index(drop=True)


def _verdicts(summary: pd.DataFrame) -> str:
    """Which points cannot be told from random (CI contains 0), and which have no CI (1 seed)."""
    rule = summary[np.isfinite(summary["diff_vs_random"].to_numpy(dtype=np.float64))]
    parts = []
    for name in dict.fromkeys(_names(rule)):
        points = rule[np.array(_names(rule)) == name]
        same = [
            f"{f:g}"
            for f, lo, hi in zip(
                points["fraction"], points["ci_low"], points["ci_high"], strict=True
            )
            if indistinguishable(lo, hi)
        ]
        if same:
            parts.append(f"**{name}** is indistinguishable from random at {', '.join(same)}")
    if parts:
        parts[-1] += " (the 95% CI of the difference contains 0)"
    for name in dict.fromkeys(_names(rule)):  # one seed paired: a difference but no interval
        points = rule[np.array(_names(rule)) == name]
        lone = [f"{f:g}" for f in points.loc[points["ci_low"].isna(), "fraction"]]
        if lone:
            parts.append(f"**{name}**: {TOO_FEW_SEEDS} at {', '.join(lone)} (sweep 2+ seeds)")
    return "; ".join(parts) + "." if parts else ""


def _show_results(run: RunView, sweep: SweepConfig, chosen: float) -> None:
    """Curves on the validation split (or test) for the rule, its baseline and random; the
    test split at the chosen fraction."""
    sel = sweep.selection
    split = pick(
        "Curves on",
        list(SPLIT_NAMES),
        "prune_split",
        widget=st.radio,
        format_func=SPLIT_HELP.get,
        horizontal=True,
        help="Pick rule, fraction and offset on the validation split; the test split judges "
        "the setting you picked. Tuning on the test curves makes the test a second "
        "validation split.",
    )
    summary = _summary(run, sweep, split)
    if summary.empty:
        st.info(
            f"No retraining results yet for **{_series_name(sel)}** with these settings. "
            f"**Run the sweep** trains a fresh model with the run's recipe on the examples "
            f"this rule keeps at each fraction of the sweep, and on random subsets of the same "
            f"sizes, {sweep.seeds} seed(s) each, then measures each model on a validation "
            "split held out of training and on the test split. The points appear here one by "
            "one as they finish.",
            icon=":material/info:",
        )
        return
    colors = {_series_name(which): color for which, color in _wanted(sel)}
    full = _full_accuracy(run) if split == "test" else None
    st.plotly_chart(_accuracy_figure(summary, colors, split, full), width="stretch")
    st.caption(
        (
            f"Top: mean {SPLIT_NAMES[split]} accuracy over seeds; bands: min–max over seeds. "
            if split == "test"
            else "Top: mean accuracy over seeds on the validation split "
            f"({VALIDATION_FRACTION:.0%} of each class's training rows, seeded, never selected "
            "nor trained on, scored "
            "with the labels as given); bands: min–max over seeds. "
        )
        + ("Dashed: the run's test accuracy with all the data, same recipe. " if full else "")
        + "Bottom: each rule minus random at the same size and seeds, with its 95% CI (a "
        "t-interval over seeds plus the evaluation examples' sampling noise; none with one "
        "seed); open markers: indistinguishable from random. "
        "Keeping only the hardest examples often loses to random when data is scarce "
        "(Sorscher et al. 2022): a score earns its keep only above the random line."
    )
    verdict = _verdicts(summary)
    if verdict:
        st.markdown(verdict)
    st.dataframe(_summary_table(summary), hide_index=True, width="stretch")
    _show_test_point(run, sweep, chosen)


def _show_test_point(run: RunView, sweep: SweepConfig, chosen: float) -> None:
    """The test split at the chosen fraction: the figure to report, not to tune on."""
    st.subheader(f"Test split at the chosen fraction ({chosen:g})")
    point = _summary(run, sweep, "test", (chosen,))
    if point.empty:
        st.caption(
            f"No trial at fraction {chosen:g} yet: **Retrain at this fraction** to measure the "
            "chosen setting on the test split."
        )
        return
    st.dataframe(_summary_table(point), hide_index=True, width="stretch")
    st.caption(
        "Test accuracy of the setting chosen above, with the paired difference to random "
        "(95% CI: a t-interval over seeds plus the test examples' sampling noise). "
        + (_verdicts(point) or "The CI excludes 0: the difference is more than seed noise.")
    )


@st.fragment(run_every=2)
def _live(
    run: RunView, job_id: str, sweep: SweepConfig, n_trials: int | None, chosen: float
) -> None:
    """Redrawn every 2 s while the job runs, chart included; the page reruns once it stops."""
    status = jobs.status(job_id, cache_dir())
    if status is None or status.state != "running":
        st.rerun()
    done = _done_trials(run, job_id, n_trials)
    text = f"Retraining in the background (job `{job_id}`)"
    if done is not None and n_trials:
        text += f": {done} of {n_trials} trials done"
        st.progress(min(done / n_trials, 1.0), text=text)
    else:
        st.progress(0.0, text=text + "…")
    # SIGTERM to the job: it records itself cancelled; the trials already written stay.
    if st.button("Cancel", key=f"prune_cancel_{job_id}"):
        if jobs.cancel(job_id, cache_dir()):
            st.toast("Cancelling the sweep…")
        else:
            st.toast("The sweep had already stopped.")
    _show_results(run, sweep, chosen)


def _done_trials(run: RunView, job_id: str, n_trials: int | None) -> int | None:
    """Trials of this session's job already on disk (None when the job was not ours)."""
    known = ui().choices.get(_job_key(run))
    if not isinstance(known, dict) or known.get("id") != job_id or not n_trials:
        return None
    return n_finished(_trials(run), SweepConfig.from_dict(known["sweep"]))


def _show_retraining(run: RunView, sel: SelectionConfig | None, use_decisions: bool) -> None:
    """Sweep settings, the two retrain buttons, then the job's progress or its results."""
    st.header("Retraining")
    st.caption(
        "Does the selection train a better model than a random subset of the same size? "
        "Each trial trains a fresh model with the run's recipe on the kept examples and "
        f"measures it on a validation split ({VALIDATION_FRACTION:.0%} of each class's "
        "training rows, held out of every selection, so the fraction is of the rest) and on "
        "the test split. The offset window also runs its honest baseline, random after the "
        "same offset, which splits its gain into denoising and selection."
    )
    blocker = retrain_blocker(run.config)
    if blocker:  # a recorded or imported run: no recipe to retrain with
        st.info(escape_md(blocker), icon=":material/info:")
        return
    seeds, schedule, text = _sweep_settings()
    note = few_seeds_note(int(seeds))  # the CI is a t-interval over seeds: none with one
    if note:
        st.caption(note)
    fractions, problem = _parse_fractions(str(text))
    if sel is None:
        st.info("Fix the selection above to retrain or see its results.")
        return
    if fractions is not None:
        refused = _refused_fraction(sel, fractions)
        if refused:
            fractions, problem = None, refused
    if problem:  # it quotes what was typed in the fractions box
        st.warning(escape_md(problem))

    base = dataclasses.replace(sel, fraction=1.0, seed=0)
    allow, refused = _evaluation_consent(run, use_decisions)
    sweep = SweepConfig(
        base, tuple(fractions or ()), int(seeds), schedule, use_decisions, allow_evaluation=allow
    )
    job = _known_job(run)
    running = job is not None and job.state == "running"
    can_sweep = fractions is not None and not refused
    _sweep_buttons(run, sweep, sel.fraction, running=running, can_sweep=can_sweep)

    if running:
        known = ui().choices.get(_job_key(run))
        n_trials = known.get("n_trials") if isinstance(known, dict) else None
        _live(run, job.job_id, sweep, n_trials, sel.fraction)
        return
    if job is not None and job.state in ("failed", "cancelled"):
        st.error(
            f"The retraining job {job.state}: {escape_md(job.message)}. Check the settings and "
            "start it again, or run "
            f"{code_md('python -m scoring sweep ' + shlex.join(sweep.cli_args(run.path)))} "
            "in a terminal to see the details.",
            icon=":material/error:",
        )
    _show_results(run, sweep, sel.fraction)


def _evaluation_consent(run: RunView, use_decisions: bool) -> tuple[bool, bool]:
    """Whether the sweep may apply decisions made in evaluation mode: (allowed, refused).

    Such decisions were made with the injected noise's truth on the cards, so a sweep of
    them measures a review that knew the answers: off unless the user ticks the box (and
    the sweep buttons wait until then).
    """
    if not use_decisions:
        return False, False
    latest = read_decisions(run)
    made = int(latest["evaluation"].sum()) if "evaluation" in latest else 0
    if not made:
        return False, False
    allow = st.checkbox(
        f"Apply the {made} decision{'' if made == 1 else 's'} made in evaluation mode too",
        value=False,
        key=f"prune_allow_eval_{run.path}",
        help="They were made with the injected noise's truth on the cards: a sweep of them "
        "measures a review that knew the answers. Redo them without evaluation mode instead.",
    )
    if not allow:
        st.warning(
            f"{made} of the decisions in force were made in evaluation mode; the sweep "
            "refuses them unless you tick the box above."
        )
    return allow, not allow


def _sweep_settings() -> tuple[int, str, str]:
    """Seeds, schedule and the fractions box, one row: (seeds, schedule, fractions as typed)."""
    c1, c2, c3 = st.columns([1, 2, 2])
    with c1:
        seeds = remembered(
            st.number_input, "Seeds", "prune_seeds", 5, min_value=1, max_value=10, step=1
        )
    with c2:
        schedule = pick(
            "Schedule",
            list(SCHEDULE_HELP),
            "prune_schedule",
            widget=st.radio,
            format_func=SCHEDULE_HELP.get,
            horizontal=True,
            help="Same steps: a smaller subset is seen for more epochs, as much compute as "
            "the full run (Data Diet). Same epochs: less compute for smaller subsets.",
        )
    with c3:
        text = remembered(
            st.text_input, "Fractions for the sweep", "prune_fractions", DEFAULT_FRACTIONS
        )
    return seeds, schedule, text


def _refused_fraction(sel: SelectionConfig, fractions: list[float]) -> str | None:
    """Why the first sweep fraction the rule cannot keep is refused; None when all are fine."""
    for f in fractions:  # e.g. an offset rule cannot keep 0.8 after dropping 0.3
        try:
            check_config(dataclasses.replace(sel, fraction=f))
        except InputError as err:
            return f"Sweep fraction {f:g}: {err}"
    return None


def _sweep_buttons(
    run: RunView, sweep: SweepConfig, chosen: float, *, running: bool, can_sweep: bool
) -> None:
    """Retrain at the chosen fraction, or over the whole sweep (both off while a job runs)."""
    buttons = st.container(horizontal=True)
    if buttons.button(
        "Retrain at this fraction",
        key="prune_retrain",
        type="primary",
        disabled=running,
        icon=":material/model_training:",
    ):
        _start_sweep(run, dataclasses.replace(sweep, fractions=(chosen,)))
    if buttons.button(
        "Run the sweep",
        key="prune_sweep",
        disabled=running or not can_sweep,
        icon=":material/stacked_line_chart:",
    ):
        _start_sweep(run, sweep)


# --- page ----------------------------------------------------------------------------------

current = scored_page_header("Pruning", purpose="prune by")
st.caption(
    "Keep a fraction of the training set chosen by a score, then retrain on it to see "
    "whether it beats a random subset of the same size."
)
selection = selection_controls(
    current,
    prefix="w_prune_",
    decisions_help="Drop the examples marked Drop and train relabeled ones with their new "
    "label, before the rule selects.",
)
_offset_suggestion(current, selection)
st.header("Preview")
if selection.refusal:
    st.warning(escape_md(selection.refusal), icon=":material/warning:")
    ok = False
else:
    ok = _show_preview(current, selection)
_show_retraining(current, selection.config if ok else None, selection.use_decisions)
