"""Examples: the easiest and the hardest training examples by one score, per class or overall.

Each example is a card with its image or text, the out-of-sample evidence (given label, the
suggested one, their probabilities; a suggestion that differs from the given label is red) and
the same Keep / Drop / Relabel buttons as the Mislabeled page (`app_pages._review`), saved to
the run's `decisions.jsonl` at once. Every ranking is computed in `scoring.read.suspects`.

The search box and the class / flagged / decided filters (`app_pages._filters`) narrow the
training rows before the ranking is cut to k, so "the 10 hardest in class 3 holding 'good'"
is 10 rows whenever 10 such rows exist.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from app_pages._filters import Filters, active_filters, filter_controls
from app_pages._review import evidence, grid_columns, review_grid
from app_pages._shared import escape_md, page_header, pick, read_decisions
from scoring.errors import InputError
from scoring.read import suspects
from scoring.read.views import RunView, no_examples_reason
from scoring.scores import REGISTRY

FILTER_KEY = "examples"


def filtered_extremes(
    view: RunView, key: str, k: int, allowed: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `k` easiest and hardest examples by `key` among the ids in `allowed`.

    `suspects.extremes` over every example (k = N) keeps its one ordering, ties and NaN
    rules; filtering that and then cutting to k is what makes a filter find k rows.
    """
    easiest, hardest = suspects.extremes(view, key, len(view.table))
    keep = allowed.to_numpy()
    easiest = easiest[easiest["id"].isin(keep)].head(k).reset_index(drop=True)
    return easiest, hardest[hardest["id"].isin(keep)].head(k).reset_index(drop=True)


def where_text(filters: Filters) -> str:
    """What the section titles add: the chosen classes, and whether other filters apply."""
    where = ""
    if filters.classes:
        noun = "class" if len(filters.classes) == 1 else "classes"
        where = f" in {noun} {', '.join(escape_md(c) for c in filters.classes)}"
    if replace(filters, classes=()).active:
        where += " matching the filters"
    return where


def values_table(view: RunView, frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """The shown examples with every score the run holds (the chosen one first)."""
    others = [k for k in view.score_keys if k != key]
    extra = view.table.iloc[frame["row"].to_numpy()][others].reset_index(drop=True)
    cols = ["id", "given", "predicted", "pred_prob", key]
    return pd.concat([frame[cols].reset_index(drop=True), extra], axis=1)


def section(
    view: RunView, title: str, frame: pd.DataFrame, key: str, prefix: str, latest: pd.DataFrame
) -> None:
    st.subheader(title)
    if frame.empty:
        st.info("No example matches the filters.")
        return
    missing = (
        suspects.load_images(view, frame["row"].to_numpy()[:1]) is None
        if view.modality == "image"
        else suspects.load_texts(view, frame["id"].to_numpy()[:1]) is None
    )
    if missing:
        st.info(
            f"{no_examples_reason(view)}. Only ids and values are listed.",
            icon=":material/image_not_supported:",
        )
        st.dataframe(values_table(view, frame, key), hide_index=True, width="stretch")
        return
    review_grid(view, frame, latest, prefix=prefix, caption=lambda row: f"{key} {row[key]:.4g}")
    with st.expander(f"All scores of these {len(frame)} examples"):
        st.dataframe(values_table(view, frame, key), hide_index=True, width="stretch")


def render(view: RunView) -> None:
    keys = view.score_keys
    if not keys:
        st.info("This run holds no scores. Score the dataset again from Home.")
        return
    left, right = st.columns(2)
    with left:
        key = pick("Score", keys, key="score")
    with right:
        per_row = grid_columns(view)  # the slider moves by full rows
        k = st.slider(
            "Examples per side", per_row, 8 * per_row, 2 * per_row, per_row, key="examples_k"
        )
    direction = "higher" if view.higher_is_harder(key) else "lower"
    st.caption(
        f"Ranked by `{key}`: {direction} values are harder. Each card gives the out-of-sample "
        "evidence; a :red[red] suggestion differs from the given label."
    )
    if key in REGISTRY:
        with st.expander(f"What is `{key}`?"):
            st.markdown(REGISTRY[key].doc)
    ev = evidence(view)
    ev = ev[ev["split"] == "train"]  # scores rank the training rows only
    latest = read_decisions(view)
    mask = filter_controls(view, ev, latest, key=FILTER_KEY)
    easiest, hardest = filtered_extremes(view, key, k, ev.loc[mask, "id"])
    where = where_text(active_filters(FILTER_KEY))
    section(view, f"{len(hardest)} hardest{where}", hardest, key, "hard_", latest)
    section(view, f"{len(easiest)} easiest{where}", easiest, key, "easy_", latest)


run = page_header("Examples")
try:
    render(run)
except InputError as err:
    st.warning(escape_md(err))
