"""Scores: the distribution of one score, overall, by class or in one class, and its stability.

Thin page: numbers come from `scoring.read.stats` and `scoring.read.views`; histograms are
binned before plotting so the figure carries bins, not one point per example.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app_pages._shared import escape_md, page_header, pick, ui
from scoring.read import stats
from scoring.read.views import NORMALIZATIONS, RunView, normalize
from scoring.scores import REGISTRY

BINS = 40
VIEWS = {"overall": "Overall", "by_class": "By class", "one_class": "One class"}
LAYOUTS = {"overlaid": "Overlaid", "faceted": "One panel per class"}
# Four significant digits are plenty to read a distribution; the full values stay in the data.
NUMBER_FORMAT = {c: st.column_config.NumberColumn(format="%.4g") for c in stats.SUMMARY_COLUMNS[1:]}


def remembered_radio(label: str, options: dict[str, str], key: str) -> str:
    """A horizontal radio over `options` (value -> label) whose choice survives page switches."""
    state = ui()
    values = list(options)
    remembered = state.choices.get(key)
    index = values.index(remembered) if remembered in values else 0
    value = st.radio(
        label, values, index=index, format_func=options.get, horizontal=True, key=f"w_{key}"
    )
    state.choices[key] = value
    return value


def direction_note(run: RunView, key: str) -> str:
    if run.higher_is_harder(key):
        return "Higher = harder / more suspect."
    return "Lower = harder / more suspect."


def score_doc(key: str) -> None:
    with st.expander(f"What is `{key}`?"):
        if key in REGISTRY:
            st.markdown(REGISTRY[key].doc)
        else:
            st.markdown("No description: this score is not in this version's registry.")


def bar_figure(counts: np.ndarray, edges: np.ndarray, axis: str) -> go.Figure:
    """One bar per bin, `counts` of shape (B,), `edges` of shape (B + 1,)."""
    fig = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=counts,
            width=np.diff(edges),
            marker_line_width=0,
            hovertemplate="%{x:.4g}: %{y} examples<extra></extra>",
        )
    )
    fig.update_layout(xaxis_title=axis, yaxis_title="examples", bargap=0.02)
    return fig


def class_figure(
    counts: np.ndarray, edges: np.ndarray, names: list[str], axis: str, layout: str
) -> go.Figure:
    """Per-class histograms, `counts` of shape (K, B) on shared `edges` of shape (B + 1,)."""
    centres = (edges[:-1] + edges[1:]) / 2
    if layout == "overlaid":
        # Step outlines rather than filled bars: ten overlaid filled histograms are unreadable.
        fig = go.Figure(
            [
                go.Scatter(x=centres, y=row, name=name, mode="lines", line_shape="hvh")
                for name, row in zip(names, counts, strict=True)
            ]
        )
        fig.update_layout(xaxis_title=axis, yaxis_title="examples", legend_title="class")
        return fig
    long = pd.DataFrame(
        {
            "class": np.repeat(names, len(centres)),
            axis: np.tile(centres, len(names)),
            "examples": counts.ravel(),
        }
    )
    fig = px.bar(long, x=axis, y="examples", facet_col="class", facet_col_wrap=5)
    fig.update_traces(width=float(np.diff(edges).min()), marker_line_width=0)
    fig.update_layout(bargap=0.02, height=max(300, 220 * int(np.ceil(len(names) / 5))))
    fig.update_yaxes(matches=None, showticklabels=True)  # small classes stay visible
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    return fig


def flag_figure(counts: pd.DataFrame) -> go.Figure:
    """Bars of flagged / not flagged counts, one group per row of `counts`."""
    fig = go.Figure(
        [
            go.Bar(x=counts.index.astype(str), y=counts[col], name=col)
            for col in ("not flagged", "flagged")
        ]
    )
    fig.update_layout(barmode="group", yaxis_title="examples", xaxis_title=counts.index.name)
    return fig


def stability_figure(stability: stats.RunStability) -> go.Figure:
    """Data Diet's curve: Spearman of an n-run mean against n other runs, with chance."""
    curve = stability.curve
    fig = go.Figure(
        go.Scatter(
            x=curve["n_runs"],
            y=curve["spearman"],
            mode="lines+markers",
            name="mean of n runs vs n others",
            hovertemplate="%{x} run(s): %{y:.3f}<extra></extra>",
        )
    )
    if np.isfinite(stability.chance):
        fig.add_hline(
            y=stability.chance,
            line_dash="dot",
            line_color="#7f7f7f",
            annotation_text=f"chance {stability.chance:.3f}",
            annotation_position="bottom right",
        )
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": "runs averaged (n)", "dtick": 1},
        yaxis={"title": "Spearman", "range": [min(0.0, float(curve["spearman"].min())), 1.0]},
        showlegend=False,
    )
    return fig


def _rho(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "undefined"


def stability_section(run: RunView, key: str) -> None:
    st.subheader("Agreement between training runs")
    stability = stats.run_stability(run.summary, key)
    if stability is None:
        if stats.stability_outdated(run.summary, key):
            st.caption(
                f"This run was scored before leave-one-out stability existed: rescore for "
                f"stability figures (score it again from Home) to see how stable `{key}` is."
            )
        elif key in REGISTRY and not REGISTRY[key].per_run:
            st.caption(
                f"`{key}` is computed once (not per run), from cross-validated "
                "predictions, so there is no run-to-run spread to show."
            )
        else:
            st.caption(
                f"No per-run values for `{key}` in this run (it had a single training "
                "run). Score with more runs on Home to see how stable it is."
            )
        return
    left, right = st.columns(2)
    left.metric(
        "Spearman, each run vs the mean of the others",
        _rho(stability.loo),
        help="Leave-one-out: each run's ranking against the mean of the *other* runs, "
        "averaged over runs. Near 1: one run already ranks examples like the others. A run is "
        "never compared with a mean that contains it (that reads 1/√R on pure noise).",
    )
    right.metric(
        "Spearman between two runs",
        _rho(stability.pairwise),
        help="Mean over every pair of runs.",
    )
    if stability.unstable:
        st.warning(
            f"`{key}` is unstable across training runs (leave-one-out Spearman "
            f"{_rho(stability.loo)} < {stats.STABILITY_WARNING}): a single run ranks examples "
            "differently, so trust only the mean over many runs, and score with more runs.",
            icon=":material/warning:",
        )
    if len(stability.curve) > 1:
        st.plotly_chart(stability_figure(stability), width="stretch")
        st.caption(
            "Spearman between the mean of n runs and the mean of n other runs (Data Diet's "
            "check of how many runs a score needs); dotted: the |ρ| two random rankings stay "
            "below 95% of the time."
        )
    elif np.isfinite(stability.chance):
        st.caption(f"Chance level: |ρ| < {stability.chance:.3f} for two random rankings.")


def _distribution(
    view: str, values: np.ndarray, labels: np.ndarray, names: list[str], axis: str, binary: bool
) -> pd.DataFrame:
    """The chosen view's figure (counts for a 0/1 flag); returns its summary table.

    `values` and `labels` are of shape (N,); `axis` titles the score axis.
    """
    if view == "overall":
        if binary:
            st.plotly_chart(flag_figure(stats.flag_counts(values)), width="stretch")
        else:
            st.plotly_chart(bar_figure(*stats.histogram(values, BINS), axis), width="stretch")
        return stats.summary_table(values)
    if view == "by_class":
        if binary:
            st.plotly_chart(flag_figure(stats.flag_counts(values, labels, names)), width="stretch")
        else:
            layout = remembered_radio("Layout", LAYOUTS, key="class_layout")
            counts, edges = stats.histograms_by_class(values, labels, len(names), BINS)
            st.plotly_chart(class_figure(counts, edges, names, axis, layout), width="stretch")
        return stats.summary_table(values, labels, names)
    return _one_class(values, labels, names, axis, binary)


def _one_class(
    values: np.ndarray, labels: np.ndarray, names: list[str], axis: str, binary: bool
) -> pd.DataFrame:
    """The class picker and that class's figure; returns its summary table (stops if empty)."""
    k = pick("Class", list(range(len(names))), key="class", format_func=names.__getitem__)
    in_class = values[labels == k]
    if in_class.size == 0:
        st.info(f"No training examples are labelled {names[k]!r} in this run; pick another class.")
        st.stop()
    if binary:
        counts = stats.flag_counts(in_class).rename(index={stats.ALL_ROW: names[k]})
        st.plotly_chart(flag_figure(counts), width="stretch")
    else:
        st.plotly_chart(bar_figure(*stats.histogram(in_class, BINS), axis), width="stretch")
    return stats.summary_table(in_class, name=names[k])


def main() -> None:
    """The page: pick a score, see its distribution, its summary and its stability."""
    run = page_header("Scores")
    keys = run.score_keys
    if not keys:
        st.info("This run holds no scores. Score the dataset again from the Home page.")
        st.stop()

    absent = run.summary.get("absent_scores") or {}  # a recording that lacked their inputs
    if absent:
        listed = "; ".join(f"{k} ({why})" for k, why in absent.items())
        st.caption(escape_md(f"Not in this run (its recording lacks their inputs): {listed}."))
    key = pick("Score", keys, key="score")
    st.caption(direction_note(run, key))
    # A recording says which definition it used where that depends on what was logged
    # (EL2N from an eval pass or the training pass; whose embeddings the label-free ones read).
    used = (run.summary.get("definitions") or {}).get(key)
    if used:
        st.caption(escape_md(f"In this run: {used}."))
    score_doc(key)
    raw = run.table[key].to_numpy(dtype=np.float64)
    labels = run.table["label"].to_numpy(dtype=np.int64)
    names = run.label_names
    binary = stats.is_binary(raw)

    left, right = st.columns(2)
    with left:
        mode = remembered_radio("Normalization", NORMALIZATIONS, key="norm")
    with right:
        view = remembered_radio("View", VIEWS, key="view")
    if binary and mode != "none":
        st.caption(f"`{key}` is a 0/1 flag: shown as counts, without normalization.")
        mode = "none"
    values = normalize(raw, labels, mode)
    axis = key if mode == "none" else f"{key} ({NORMALIZATIONS[mode]})"
    if not np.isfinite(raw).all():
        st.caption(
            f"{int((~np.isfinite(raw)).sum()):,} examples have no `{key}` value and are left out."
        )

    table = _distribution(view, values, labels, names, axis, binary)

    st.subheader("Summary statistics")
    if mode != "none":
        st.caption(f"Values are {NORMALIZATIONS[mode]}. Std is the population std (ddof = 0).")
    # Tall enough for every row: the "all" row must not hide below a scrollbar.
    st.dataframe(table, column_config=NUMBER_FORMAT, height=38 + 35 * len(table))
    stability_section(run, key)


main()
