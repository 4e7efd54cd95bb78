"""Correlations: how the run's scores agree (Spearman matrix), and a scatter of any pair.

Thin page: the matrix, its clustered order and the scatter table come from
`scoring.read.stats`; the pair shown first sets two kinds of evidence side by side
(`DEFAULT_PAIRS`). By default every score is oriented so larger = harder (lower-is-harder
scores times −1), so a positive ρ always means two scores agree on which examples are hard;
label-free scores (blind to label noise by construction) are behind a toggle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app_pages._review import evaluation_mode
from app_pages._shared import page_header, pick, sample_note, ui
from scoring.read import stats
from scoring.read.views import RunView, hardness
from scoring.scores.registry import REGISTRY

ALL_CLASSES = -1
NOISE_COLOURS = {"clean": "#9aa5b1", "injected noise": "#d62728"}
# The pair shown first: the first of these the run shows (both keys, a defined ρ). Each sets
# two kinds of evidence side by side, so the scatter has something to say: EL2N is a snapshot
# early in training, forgetting and AUM sum up the whole of it, cl_quality is out-of-fold
# (the Data Diet paper's own comparison is EL2N against forgetting). A pick from the matrix
# alone fails both ways: the most correlated pair is one quantity measured twice (aum vs
# confidence or consensus, ρ near 1, a diagonal line), the least correlated one involves a
# score that barely tracks the label (grand, ρ ≈ −0.1 on digits, a shapeless cloud).
DEFAULT_PAIRS = (
    ("el2n", "forgetting"),
    ("el2n", "aum"),
    ("el2n", "cl_quality"),
    ("aum", "cl_quality"),
)


def remembered_toggle(label: str, key: str, help: str | None = None, default: bool = False) -> bool:
    """A toggle whose value survives page switches (kept in UIState.choices)."""
    state = ui()
    value = st.toggle(label, value=bool(state.choices.get(key, default)), key=f"w_{key}", help=help)
    state.choices[key] = value
    return value


def heatmap(matrix: pd.DataFrame, title: str) -> go.Figure:
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
    fig.update_layout(
        title=title,
        height=140 + 42 * len(keys),
        xaxis_tickangle=-45,
        margin={"t": 40, "b": 10, "l": 10, "r": 10},  # no dead space around the cells
    )
    return fig


def scatter(
    points: pd.DataFrame, x: str, y: str, has_noise: bool, titles: tuple[str, str]
) -> go.Figure:
    """Scatter of `points` (from `stats.pair_frame`), one colour per group; `titles` name
    the axes (a flipped score reads `−key`)."""
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
    fig.update_layout(
        title=f"{titles[1]} against {titles[0]}, one point per example",
        legend_title="injected noise" if has_noise else "label",
        margin={"t": 40, "b": 10, "l": 10, "r": 10},
        xaxis_title=titles[0],
        yaxis_title=titles[1],
    )
    return fig


def class_rows(run: RunView, k: int) -> pd.DataFrame:
    table = run.table
    return table if k == ALL_CLASSES else table[table["label"] == k]


def oriented_rows(run: RunView, rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`rows` with every lower-is-harder score times −1, so larger = harder for all keys."""
    out = rows.copy()
    for key in keys:
        out[key] = hardness(out[key].to_numpy(), run.higher_is_harder(key))
    return out


def axis_title(run: RunView, key: str, oriented: bool) -> str:
    return f"−{key}" if oriented and not run.higher_is_harder(key) else key


def matrix_section(rows: pd.DataFrame, keys: list[str], oriented: bool) -> pd.DataFrame:
    """Draws the heatmap in clustered order and returns the matrix shown, shape (S, S)."""
    matrix = stats.spearman_matrix(rows, keys)
    order = stats.clustered_order(matrix)
    matrix = matrix.loc[order, order]
    sense = "larger = harder for every score" if oriented else "raw directions"
    st.plotly_chart(
        heatmap(matrix, f"Spearman ρ between scores ({sense}; similar scores together)"),
        width="stretch",
    )
    constant = stats.constant_columns(rows, keys)
    if constant:
        names = ", ".join(f"`{k}`" for k in constant)
        st.caption(
            f"{names} {'is' if len(constant) == 1 else 'are'} constant on these examples, "
            "so the rank correlation is undefined: blank cells. Pick all classes or "
            "another class to see them."
        )
    return matrix


def pair_section(
    run: RunView, rows: pd.DataFrame, keys: list[str], matrix: pd.DataFrame, oriented: bool
) -> None:
    st.subheader("Pair")
    # The default is seeded as the remembered choice (rather than through pick's `index`,
    # which pick passes on twice once something is remembered).
    default = default_pair(matrix, keys)
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
    truth = evaluation_mode(run)  # the injected noise colours the points only when on
    rho = matrix.loc[x, y]
    rho_text = f"{rho:.3f}" if np.isfinite(rho) else "undefined (a constant score)"
    sense = " (larger = harder for both)" if oriented else ""
    st.caption(
        f"Spearman ρ between `{x}` and `{y}`{sense}: {rho_text}. Colour: "
        + (
            "injected noise (labels this run flipped on purpose)."
            if truth
            else "the label trained on."
        )
    )
    shown = rows if truth else rows.drop(columns=["noisy"], errors="ignore")
    points = stats.pair_frame(shown, x, y, run.label_names)
    if points.empty:
        st.info(f"No examples have both `{x}` and `{y}` here.")
        return
    points = sample_note(points)
    titles = (axis_title(run, x, oriented), axis_title(run, y, oriented))
    st.plotly_chart(scatter(points, x, y, truth, titles), width="stretch")


def default_pair(matrix: pd.DataFrame, keys: list[str]) -> tuple[str, str]:
    """The pair shown first: the first of DEFAULT_PAIRS with a defined ρ, else the most
    correlated label-dependent pair that is not one quantity measured twice, else any."""
    for x, y in DEFAULT_PAIRS:
        if x in matrix.index and y in matrix.index and np.isfinite(matrix.loc[x, y]):
            return x, y
    dependent = [k for k in matrix.index if not _label_free(k)]
    found = stats.informative_pair(matrix.loc[dependent, dependent]) if len(dependent) > 1 else None
    return found or stats.informative_pair(matrix) or (keys[0], keys[1])


def _label_free(key: str) -> bool:
    score = REGISTRY.get(key)
    return bool(score is not None and score.label_free)


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
    toggles = st.columns(2)
    with toggles[0]:
        raw = remembered_toggle(
            "Raw directions",
            key="corr_raw",
            help="Off (the default): scores where lower means harder (such as aum, "
            "confidence) are multiplied by −1, so a positive ρ always means two scores agree "
            "on which examples are hard. On: every score as recorded.",
        )
    free = [k for k in keys if _label_free(k)]
    with_free = False
    if free:
        with toggles[1]:
            with_free = remembered_toggle(
                f"Include label-free scores ({len(free)})",
                key="corr_label_free",
                help=f"Scores that never read the label ({', '.join(free)}): blind to label "
                "noise by construction, they answer another question (how typical an input is).",
            )
    shown = [k for k in keys if with_free or not _label_free(k)]
    if len(shown) < 2:
        shown = keys
    values = rows if raw else oriented_rows(run, rows, shown)
    matrix = matrix_section(values, shown, not raw)
    pair_section(run, values, shown, matrix, not raw)


main()
