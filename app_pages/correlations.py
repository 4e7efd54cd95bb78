"""Correlations: how the run's scores agree (Spearman matrix), and a scatter of any pair.

Thin page: the matrix, the default pair and the scatter table come from `scoring.read.stats`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app_pages._shared import page_header, pick, sample_note, ui
from scoring.read import stats
from scoring.read.views import RunView, hardness

ALL_CLASSES = -1
NOISE_COLOURS = {"clean": "#9aa5b1", "injected noise": "#d62728"}


def remembered_toggle(label: str, key: str, help: str | None = None) -> bool:
    """A toggle whose value survives page switches (kept in UIState.choices)."""
    state = ui()
    value = st.toggle(label, value=bool(state.choices.get(key, False)), key=f"w_{key}", help=help)
    state.choices[key] = value
    return value


def heatmap(matrix: pd.DataFrame) -> go.Figure:
    """Annotated heatmap of an (S, S) correlation matrix, colours fixed to [-1, 1]."""
    rho = matrix.to_numpy(dtype=np.float64)
    text = np.where(np.isfinite(rho), np.char.mod("%.2f", np.nan_to_num(rho)), "")
    keys = [str(k) for k in matrix.index]
    fig = go.Figure(
        go.Heatmap(
            z=rho,
            x=keys,
            y=keys,
            text=text,
            texttemplate="%{text}",
            zmin=-1,
            zmax=1,
            zmid=0,
            colorscale="RdBu_r",
            colorbar={"title": "Spearman ρ"},
            hoverongaps=False,
            hovertemplate="%{y} vs %{x}: ρ = %{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")  # read like a matrix: first score top-left
    fig.update_layout(height=160 + 42 * len(keys), xaxis_tickangle=-45)
    return fig


def scatter(points: pd.DataFrame, x: str, y: str, has_noise: bool) -> go.Figure:
    """Scatter of `points` (from `stats.pair_frame`), one colour per group."""
    if has_noise:
        # Clean first so the few noisy points are drawn on top.
        kw = {
            "color_discrete_map": NOISE_COLOURS,
            "category_orders": {"colour": list(NOISE_COLOURS)},
        }
    else:
        kw = {"category_orders": {"colour": sorted(points["colour"].unique())}}
    fig = px.scatter(
        points, x=x, y=y, color="colour", hover_data={"id": True, "label": True}, opacity=0.7, **kw
    )
    fig.update_traces(marker_size=5)
    fig.update_layout(legend_title="injected noise" if has_noise else "label")
    return fig


def class_rows(run: RunView, k: int) -> pd.DataFrame:
    table = run.table
    return table if k == ALL_CLASSES else table[table["label"] == k]


def matrix_section(run: RunView, rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Draws the heatmap and returns the raw (unoriented) matrix, shape (S, S)."""
    orient = remembered_toggle(
        "Orient every score so larger = harder",
        key="corr_orient",
        help="Flips the scores where lower means harder (such as aum, confidence), so a "
        "positive ρ always means two scores agree on which examples are hard.",
    )
    raw = stats.spearman_matrix(rows, keys)
    shown = raw
    if orient:
        oriented = rows[keys].copy()
        for key in keys:
            oriented[key] = hardness(oriented[key].to_numpy(), run.higher_is_harder(key))
        shown = stats.spearman_matrix(oriented, keys)
    st.plotly_chart(heatmap(shown), width="stretch")
    constant = stats.constant_columns(rows, keys)
    if constant:
        names = ", ".join(f"`{k}`" for k in constant)
        st.caption(
            f"{names} {'is' if len(constant) == 1 else 'are'} constant on these examples, "
            "so the rank correlation is undefined: blank cells. Pick all classes or "
            "another class to see them."
        )
    return raw


def pair_section(run: RunView, rows: pd.DataFrame, keys: list[str], raw: pd.DataFrame) -> None:
    st.subheader("Pair")
    # Default to the most correlated pair, seeded as the remembered choice (rather than through
    # pick's `index`, which pick passes on twice once something is remembered).
    default = stats.strongest_pair(raw) or (keys[0], keys[1])
    choices = ui().choices
    for slot, key in zip(("corr_x", "corr_y"), default, strict=True):
        if choices.get(slot) not in keys:
            choices[slot] = key
    left, right = st.columns(2)
    with left:
        x = pick("Score on x", keys, key="corr_x")
    with right:
        y = pick("Score on y", keys, key="corr_y")
    if x == y:
        st.info("Pick two different scores to compare.")
        return
    rho = raw.loc[x, y]
    rho_text = f"{rho:.3f}" if np.isfinite(rho) else "undefined (a constant score)"
    st.caption(
        f"Spearman ρ between `{x}` and `{y}`: {rho_text}. Colour: "
        + (
            "injected noise (labels this run flipped on purpose)."
            if run.has_noise
            else "the label trained on."
        )
    )
    points = stats.pair_frame(rows, x, y, run.label_names)
    if points.empty:
        st.info(f"No examples have both `{x}` and `{y}` here.")
        return
    points = sample_note(points)
    st.plotly_chart(scatter(points, x, y, run.has_noise), width="stretch")


def main() -> None:
    run = page_header("Correlations")
    keys = run.score_keys
    if len(keys) < 2:
        held = f"one score (`{keys[0]}`)" if keys else "no scores"
        st.info(
            f"This run holds {held}; a correlation needs at least two. Score the dataset "
            "with more scores from the Home page, or pick another run."
        )
        st.stop()

    names = run.label_names
    k = pick(
        "Examples",
        [ALL_CLASSES, *range(len(names))],
        key="corr_class",
        format_func=lambda c: "All classes" if c == ALL_CLASSES else f"Class {names[c]}",
    )
    rows = class_rows(run, k)
    if len(rows) < 3:
        st.info(
            f"Only {len(rows)} examples are in this class: too few for a rank correlation. "
            "Pick all classes or another class."
        )
        st.stop()
    raw = matrix_section(run, rows, keys)
    pair_section(run, rows, keys, raw)


main()
