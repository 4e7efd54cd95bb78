"""Examples: the easiest and the hardest training examples by one score, per class or overall.

Each example is a card with its image or text, the out-of-sample evidence (given label, the
suggested one, their probabilities; a suggestion that differs from the given label is red) and
the same Keep / Drop / Relabel buttons as the Mislabeled page (`app_pages._review`), saved to
the run's `decisions.jsonl` at once. Every ranking is computed in `scoring.read.suspects`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._review import review_grid
from app_pages._shared import escape_md, page_header, pick, read_decisions
from scoring.errors import InputError
from scoring.read import suspects
from scoring.read.views import RunView, no_examples_reason
from scoring.scores import REGISTRY

ALL_CLASSES = "all classes"
COLUMNS = {"image": 6, "text": 3}  # cards per row; the slider moves by full rows


def values_table(view: RunView, frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """The shown examples with every score the run holds (the chosen one first)."""
    others = [k for k in view.score_keys if k != key]
    extra = view.table.iloc[frame["row"].to_numpy()][others].reset_index(drop=True)
    cols = ["id", "given", "predicted", "pred_prob", key]
    return pd.concat([frame[cols].reset_index(drop=True), extra], axis=1)


def section(view: RunView, title: str, frame: pd.DataFrame, key: str, prefix: str) -> None:
    st.subheader(title)
    if frame.empty:
        st.info("No examples in this class.")
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
    review_grid(
        view,
        frame,
        read_decisions(view),
        prefix=prefix,
        columns=COLUMNS.get(view.modality, 3),
        caption=lambda row: f"{key} {row[key]:.4g}",
    )
    with st.expander(f"All scores of these {len(frame)} examples"):
        st.dataframe(values_table(view, frame, key), hide_index=True, width="stretch")


def render(view: RunView) -> None:
    keys = view.score_keys
    if not keys:
        st.info("This run holds no scores. Score the dataset again from Home.")
        return
    names = view.label_names
    left, middle, right = st.columns(3)
    with left:
        key = pick("Score", keys, key="score")
    with middle:
        chosen = pick("Class", [ALL_CLASSES, *names], key="examples_class")
    with right:
        per_row = COLUMNS.get(view.modality, 3)
        k = st.slider(
            "Examples per side", per_row, 8 * per_row, 2 * per_row, per_row, key="examples_k"
        )
    label = None if chosen == ALL_CLASSES else names.index(chosen)
    direction = "higher" if view.higher_is_harder(key) else "lower"
    st.caption(
        f"Ranked by `{key}`: {direction} values are harder. Each card gives the out-of-sample "
        "evidence; a :red[red] suggestion differs from the given label."
    )
    if key in REGISTRY:
        with st.expander(f"What is `{key}`?"):
            st.markdown(REGISTRY[key].doc)
    easiest, hardest = suspects.extremes(view, key, k, label)
    where = "" if label is None else f" in class {escape_md(chosen)}"
    section(view, f"{len(hardest)} hardest{where}", hardest, key, "hard_")
    section(view, f"{len(easiest)} easiest{where}", easiest, key, "easy_")


run = page_header("Examples")
try:
    render(run)
except InputError as err:
    st.warning(escape_md(err))
