"""Pruning: choose what to keep by a score, see it at once, and prove it by retraining.

The preview (examples kept per class, score distribution kept vs dropped) is computed here
from the run's table with `scoring.prune.select`, the same function the sweep and the export use,
so what is shown is what gets trained on. Retraining never runs in this process: a sweep is a
background job (`python -m scoring sweep`) whose trials land one by one in
`<run>/sweeps/trials/`; the chart reads them back and fills in while the job runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages._selection import decisions_control, offset_control
from app_pages._shared import (
    cache_dir,
    mtime,
    page_header,
    pick,
    read_decisions,
    remembered,
    remembered_choice,
    ui,
)
from scoring import jobs
from scoring.errors import InputError
from scoring.prune.select import (
    RULES,
    SelectionConfig,
    apply_decisions,
    check_config,
    lost_classes,
    select_indices,
)
from scoring.prune.sweeps import SweepConfig, cached_trials, canonical, trials_of
from scoring.read.stats import bin_edges
from scoring.read.views import NORMALIZATIONS, RunView, normalize

RULE_HELP = {
    "hardest": "keep hardest: the top share by the score (hard examples teach most when data "
    "is plentiful)",
    "easiest": "keep easiest: the bottom share by the score (the safer bet when data is scarce)",
    "random": "random: a seeded uniform sample, the baseline every rule must beat",
    "offset": "offset window: drop the hardest `offset` share first (likely mislabeled), keep "
    "the next ones (Data Diet for noisy data)",
    "stratified": "stratified coverage: drop the hardest beta share, then fill the budget evenly "
    "across score bins (CCS, Zheng et al. 2023: the remedy when data is scarce)",
    "softmax": "softmax sampling: sample without replacement, weights softmax(hardness / T)",
    "linear": "linear sampling: sample without replacement, weights linear in hardness",
}
SCHEDULE_HELP = {
    "steps": "same optimizer steps (Data Diet)",
    "epochs": "same epochs",
}
SEEDED_RULES = ("random", "stratified", "softmax", "linear")  # rules whose pick depends on seed
DEFAULT_FRACTIONS = "0.2,0.4,0.6,0.8"
HIST_BINS = 40
KEPT_COLOR, DROPPED_COLOR, RANDOM_COLOR = "#1f77b4", "#c7c7c7", "#7f7f7f"


# --- widgets --------------------------------------------------------------------------


# --- reads ---------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=4)
def _trials_cached(run: str, stamp: tuple[float, int], label_names: tuple[str, ...]):
    return cached_trials(Path(run), list(label_names))


def _trials(run: RunView) -> pd.DataFrame:
    """Every finished trial of the run; re-read whenever a trial file is added."""
    folder = run.path / "sweeps" / "trials"
    count = sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0
    return _trials_cached(str(run.path), (mtime(folder), count), tuple(run.label_names))


@dataclasses.dataclass
class Preview:
    """The selection the controls describe, over the rows decisions leave in play."""

    rows: np.ndarray  # (N',) row positions into run.table still in play
    labels: np.ndarray  # (N',) their labels (relabels applied when asked)
    values: np.ndarray  # (N',) the score as ranked (after normalization)
    kept: np.ndarray  # (N',) bool: kept by the rule


def _preview(run: RunView, sel: SelectionConfig, use_decisions: bool) -> Preview:
    """Select exactly as `scoring.training.retrain` does (decisions first, then the rule)."""
    labels = run.table["label"].to_numpy()
    rows = np.arange(labels.shape[0])
    if use_decisions:
        keep, labels = apply_decisions(run.table["id"].to_numpy(), labels, read_decisions(run))
        rows = np.flatnonzero(keep)
        labels = labels[rows]
    raw = run.table[sel.score].to_numpy(dtype=np.float64)[rows]  # (N',)
    values = None if sel.rule == "random" else raw
    higher = run.higher_is_harder(sel.score)
    picked = select_indices(values, labels, sel, higher_is_harder=higher)
    kept = np.zeros(rows.shape[0], dtype=bool)
    kept[picked] = True
    shown = normalize(raw, labels, sel.normalization)
    return Preview(rows, labels, shown, kept)


# --- controls ------------------------------------------------------------------------------


def _controls(run: RunView) -> tuple[SelectionConfig | None, bool, str | None]:
    """The selection the user describes, whether to apply decisions, and any refusal."""
    keys = run.score_keys
    c1, c2, c3 = st.columns(3)
    with c1:
        default = keys.index("el2n") if "el2n" in keys else 0
        score = pick("Score", keys, key="score", index=default)
    with c2:
        rule = remembered_choice(
            st.selectbox,
            "Rule",
            list(RULES),
            "prune_rule",
            "hardest",
            format_func=lambda r: RULE_HELP[r].split(":")[0],
        )
    with c3:
        normalization = remembered_choice(
            st.selectbox,
            "Normalization",
            list(NORMALIZATIONS),
            "prune_norm",
            "none",
            format_func=lambda n: f"{n}: {NORMALIZATIONS[n]}",
        )
    st.caption(RULE_HELP[rule][0].upper() + RULE_HELP[rule][1:] + ".")
    fraction = remembered(
        st.slider, "Fraction kept", "prune_fraction", 0.5, min_value=0.05, max_value=1.0, step=0.05
    )
    fraction = round(float(fraction), 2)  # the slider's float steps carry round-off

    offset, temperature, beta = 0.0, 1.0, 0.1
    if rule == "offset":
        offset = offset_control(run)
    c1, c2, c3 = st.columns([1, 1, 2])
    with c1:
        balanced = remembered(
            st.checkbox,
            "Class-balanced",
            "prune_balanced",
            False,
            help="Keep the fraction within each class (at least one example per class).",
        )
    with c2:
        if rule == "softmax":
            temperature = remembered(
                st.number_input,
                "Temperature (softmax)",
                "prune_temperature",
                1.0,
                min_value=0.01,
                max_value=100.0,
                step=0.1,
                help="Low: close to keep-hardest; high: close to random.",
            )
        elif rule == "stratified":
            beta = remembered(
                st.number_input,
                "Beta: hardest share dropped (stratified)",
                "prune_beta",
                0.1,
                min_value=0.0,
                max_value=0.95,
                step=0.05,
                help="Coverage-centric selection first drops this hardest share as likely noise.",
            )
    with c3:
        use_decisions = decisions_control(
            run,
            help="Drop the examples marked Drop and train relabeled ones with their new label, "
            "before the rule selects.",
        )

    sel = SelectionConfig(
        rule=rule,
        fraction=fraction,
        score=score,
        normalization=normalization,
        offset=float(offset),
        class_balanced=bool(balanced),
        temperature=float(temperature),
        beta=round(float(beta), 4),
    )
    try:
        check_config(sel)
    except InputError as err:
        return None, use_decisions, str(err)
    return sel, use_decisions, None


# --- preview -------------------------------------------------------------------------------


def _class_figure(prev: Preview, names: list[str]) -> go.Figure:
    k = len(names)
    total = np.bincount(prev.labels, minlength=k)[:k]  # (K,)
    kept = np.bincount(prev.labels[prev.kept], minlength=k)[:k]  # (K,)
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


def _distribution_figure(prev: Preview, sel: SelectionConfig) -> go.Figure:
    """Overlaid histograms from binned counts: the figure carries bins, never examples."""
    edges = bin_edges(prev.values, HIST_BINS)  # (B+1,)
    finite = np.isfinite(prev.values)
    kept_counts, _ = np.histogram(prev.values[prev.kept & finite], bins=edges)
    dropped_counts, _ = np.histogram(prev.values[~prev.kept & finite], bins=edges)
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = go.Figure(
        [
            go.Bar(
                name="dropped",
                x=centers,
                y=dropped_counts,
                width=widths,
                marker_color=DROPPED_COLOR,
                opacity=0.8,
            ),
            go.Bar(
                name="kept",
                x=centers,
                y=kept_counts,
                width=widths,
                marker_color=KEPT_COLOR,
                opacity=0.7,
            ),
        ]
    )
    what = sel.score if sel.normalization == "none" else f"{sel.score} ({sel.normalization} z)"
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


def _show_preview(run: RunView, sel: SelectionConfig, use_decisions: bool) -> bool:
    """Draw the preview; False when the selection is refused (nothing to retrain)."""
    try:
        prev = _preview(run, sel, use_decisions)
    except InputError as err:
        st.warning(str(err))
        return False
    names = run.label_names
    n_kept, n_all = int(prev.kept.sum()), prev.kept.shape[0]
    note = f"Keeps **{n_kept:,}** of {n_all:,} examples ({n_kept / n_all:.0%})"
    if use_decisions:
        note += f", after {len(run.table) - n_all:,} dropped by your decisions"
    if sel.rule in SEEDED_RULES:
        note += "; the preview shows seed 0, each retraining seed draws its own subset"
    st.markdown(note + ".")
    lost = lost_classes(prev.labels, np.flatnonzero(prev.kept))
    if lost:
        st.warning(
            f"This selection keeps no example of {len(lost)} class(es): "
            f"{', '.join(names[c] for c in lost)}. A model trained on it can never predict "
            "them; turn on **Class-balanced** or keep a larger fraction.",
            icon=":material/warning:",
        )
    left, right = st.columns(2)
    left.plotly_chart(_class_figure(prev, names), width="stretch")
    right.plotly_chart(_distribution_figure(prev, sel), width="stretch")
    return True


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


def _sweep_args(run: RunView, sweep: SweepConfig) -> list[str]:
    """`python -m scoring sweep` arguments for a sweep (floats exact: repr round-trips)."""
    sel = sweep.selection
    args = ["--run", str(run.path), "--score", str(sel.score), "--rule", sel.rule]
    if sel.normalization != "none":
        args += ["--normalization", sel.normalization]
    if sel.rule == "offset":
        args += ["--offset", repr(float(sel.offset))]
    if sel.class_balanced:
        args.append("--class-balanced")
    if sel.rule == "softmax":
        args += ["--temperature", repr(float(sel.temperature))]
    if sel.rule == "stratified":
        args += ["--beta", repr(float(sel.beta))]
    args += ["--fractions", ",".join(f"{f:g}" for f in sweep.fractions)]
    args += ["--seeds", str(sweep.seeds), "--schedule", sweep.schedule]
    if sweep.apply_decisions:
        args.append("--apply-decisions")
    return args


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
    job_id = jobs.start("sweep", _sweep_args(run, sweep), cache_dir())
    ui().choices[_job_key(run)] = {
        "id": job_id,
        "n_trials": len(trials_of(sweep)),
        "sweep": sweep.to_dict(),
    }
    st.rerun()  # show the live status (and start polling) at once


def _matching(trials: pd.DataFrame, sel: SelectionConfig, sweep: SweepConfig) -> pd.DataFrame:
    """The cached trials of `sel`'s rule and parameters (any fraction and seed)."""
    if trials.empty:
        return trials
    c = canonical(sel)
    close = lambda col, v: np.isclose(trials[col].astype(float), float(v), atol=1e-9)  # noqa: E731
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
        & (trials["schedule"] == sweep.schedule)
        & (trials["apply_decisions"] == sweep.apply_decisions)
    )
    return trials[mask]


def _points(frame: pd.DataFrame) -> pd.DataFrame:
    """Per fraction: mean, std, min, max accuracy over seeds, seeds, examples kept."""
    grouped = frame.groupby("fraction")
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


def _series_name(sel: SelectionConfig) -> str:
    return "random" if sel.rule == "random" else f"{sel.rule} by {sel.score}"


def _accuracy_figure(series: list[tuple[str, pd.DataFrame, str]], full: float | None) -> go.Figure:
    fig = go.Figure()
    for name, points, color in series:
        x = points["fraction"].to_numpy()
        # The band: min-max over seeds, drawn as one closed polygon under the mean line.
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([points["max"].to_numpy(), points["min"].to_numpy()[::-1]]),
                fill="toself",
                mode="lines",
                fillcolor=color,
                opacity=0.2,
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                name=f"{name} (min–max)",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=points["mean"].to_numpy(),
                mode="lines+markers",
                name=name,
                line={"color": color, "width": 2},
                customdata=np.stack([points["std"], points["seeds"]], axis=1),
                hovertemplate="kept %{x:.2f}: %{y:.4f} ± %{customdata[0]:.4f} "
                "(%{customdata[1]} seeds)<extra>" + name + "</extra>",
            )
        )
    if full is not None:
        fig.add_hline(
            y=full,
            line_dash="dash",
            line_color="#2ca02c",
            annotation_text=f"all data {full:.3f}",
            annotation_position="bottom right",
        )
    fig.update_layout(
        height=420,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": "fraction kept", "range": [0, 1.02]},
        yaxis={"title": "test accuracy"},
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


def _full_accuracy(run: RunView) -> float | None:
    acc = run.summary.get("test_accuracy_mean")
    if acc is None and run.summary.get("test_accuracy"):
        acc = float(np.mean(run.summary["test_accuracy"]))
    return None if acc is None else float(acc)


def _show_results(run: RunView, sweep: SweepConfig) -> None:
    """Accuracy vs fraction kept for the rule against random, from the cached trials."""
    sel = sweep.selection
    trials = _trials(run)
    random_sel = SelectionConfig(rule="random", fraction=1.0, class_balanced=sel.class_balanced)
    wanted = [(sel, KEPT_COLOR)]
    if sel.rule != "random":
        wanted.append((random_sel, RANDOM_COLOR))
    series = []
    for which, color in wanted:
        found = _matching(trials, which, sweep)
        if not found.empty:
            series.append((_series_name(which), _points(found), color))
    if not series:
        st.info(
            f"No retraining results yet for **{_series_name(sel)}** with these settings. "
            f"**Run the sweep** trains a fresh model with the run's recipe on the examples "
            f"this rule keeps at each fraction of the sweep, and on random subsets of the same "
            f"sizes, {sweep.seeds} seed(s) each, then measures each model's held-out accuracy. "
            "The points appear here one by one as they finish.",
            icon=":material/info:",
        )
        return
    full = _full_accuracy(run)
    st.plotly_chart(_accuracy_figure(series, full), width="stretch")
    st.caption(
        "Lines: mean test accuracy over seeds; bands: min–max over seeds. "
        + ("Dashed: the run's accuracy with all the data, same recipe. " if full else "")
        + "Keeping only the hardest examples often loses to random when data is scarce "
        "(Sorscher et al. 2022): a score earns its keep only above the random line."
    )
    table = pd.concat([pts.assign(rule=name) for name, pts, _ in series], ignore_index=True)
    table = table.sort_values(["fraction", "rule"])
    st.dataframe(
        pd.DataFrame(
            {
                "fraction": table["fraction"].to_numpy(),
                "rule": table["rule"].to_numpy(),
                "accuracy (mean ± std)": [
                    f"{m:.4f} ± {s:.4f}" for m, s in zip(table["mean"], table["std"], strict=True)
                ],
                "seeds": table["seeds"].to_numpy(),
                "examples kept": table["kept"].round().astype(int).to_numpy(),
            }
        ),
        hide_index=True,
        width="stretch",
    )


@st.fragment(run_every=2)
def _live(run: RunView, job_id: str, sweep: SweepConfig, n_trials: int | None) -> None:
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
    _show_results(run, sweep)


def _done_trials(run: RunView, job_id: str, n_trials: int | None) -> int | None:
    """Trials of this session's job already on disk (None when the job was not ours)."""
    known = ui().choices.get(_job_key(run))
    if not isinstance(known, dict) or known.get("id") != job_id or not n_trials:
        return None
    raw = known["sweep"]
    sweep = SweepConfig(
        SelectionConfig(**raw["selection"]),
        tuple(raw["fractions"]),
        raw["seeds"],
        raw["schedule"],
        raw["apply_decisions"],
    )
    trials = _trials(run)
    count = 0
    for sel in trials_of(sweep):
        found = _matching(trials, sel, sweep)
        if found.empty:
            continue
        count += int(
            (np.isclose(found["fraction"], sel.fraction) & (found["seed"] == sel.seed)).any()
        )
    return count


def _show_retraining(run: RunView, sel: SelectionConfig | None, use_decisions: bool) -> None:
    st.header("Retraining")
    st.caption(
        "Does the selection train a better model than a random subset of the same size? "
        "Each trial trains a fresh model with the run's recipe on the kept examples and "
        "measures accuracy on the held-out split."
    )
    c1, c2, c3 = st.columns([1, 2, 2])
    with c1:
        seeds = remembered(
            st.number_input, "Seeds", "prune_seeds", 2, min_value=1, max_value=10, step=1
        )
    with c2:
        schedule = remembered_choice(
            st.radio,
            "Schedule",
            list(SCHEDULE_HELP),
            "prune_schedule",
            "steps",
            format_func=SCHEDULE_HELP.get,
            horizontal=True,
            help="Same steps: a smaller subset is seen for more epochs, as much compute as "
            "the full run (Data Diet). Same epochs: less compute for smaller subsets.",
        )
    with c3:
        text = remembered(
            st.text_input, "Fractions for the sweep", "prune_fractions", DEFAULT_FRACTIONS
        )
    fractions, problem = _parse_fractions(str(text))
    if sel is None:
        st.info("Fix the selection above to retrain or see its results.")
        return
    if fractions is not None:
        for f in fractions:  # e.g. an offset rule cannot keep 0.8 after dropping 0.3
            try:
                check_config(dataclasses.replace(sel, fraction=f))
            except InputError as err:
                fractions, problem = None, f"Sweep fraction {f:g}: {err}"
                break
    if problem:
        st.warning(problem)

    base = dataclasses.replace(sel, fraction=1.0, seed=0)
    sweep = SweepConfig(base, tuple(fractions or ()), int(seeds), schedule, use_decisions)
    job = _known_job(run)
    running = job is not None and job.state == "running"
    buttons = st.container(horizontal=True)
    if buttons.button(
        "Retrain at this fraction",
        key="prune_retrain",
        type="primary",
        disabled=running,
        icon=":material/model_training:",
    ):
        _start_sweep(run, dataclasses.replace(sweep, fractions=(sel.fraction,)))
    if buttons.button(
        "Run the sweep",
        key="prune_sweep",
        disabled=running or fractions is None,
        icon=":material/stacked_line_chart:",
    ):
        _start_sweep(run, sweep)

    if running:
        known = ui().choices.get(_job_key(run))
        n_trials = known.get("n_trials") if isinstance(known, dict) else None
        _live(run, job.job_id, sweep, n_trials)
        return
    if job is not None and job.state in ("failed", "cancelled"):
        st.error(
            f"The retraining job {job.state}: {job.message}. Check the settings and start it "
            f"again, or run `python -m scoring sweep {' '.join(_sweep_args(run, sweep))}` in a "
            "terminal to see the details.",
            icon=":material/error:",
        )
    _show_results(run, sweep)


# --- page ----------------------------------------------------------------------------------

current = page_header("Pruning")
if not current.score_keys:
    st.info(
        "This run holds no scores to prune by. Score a run on the **Home** page first.",
        icon=":material/info:",
    )
    st.stop()
st.caption(
    "Keep a fraction of the training set chosen by a score, then retrain on it to see "
    "whether it beats a random subset of the same size."
)
selection, apply_made, refusal = _controls(current)
st.header("Preview")
if refusal:
    st.warning(refusal, icon=":material/warning:")
    ok = False
else:
    ok = _show_preview(current, selection, apply_made)
_show_retraining(current, selection if ok else None, apply_made)
