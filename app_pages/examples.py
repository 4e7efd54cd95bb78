"""Examples: the easiest and the hardest training examples by one score, per class or overall.

Images come from the run's `examples/images.npy` (memory-mapped, only the shown rows are read)
and texts from `examples/texts.parquet`; every ranking is computed in `scoring.read.suspects`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._shared import escape_md, page_header, pick
from scoring.errors import InputError
from scoring.read import suspects
from scoring.read.views import RunView
from scoring.scores import REGISTRY

ALL_CLASSES = "all classes"
THUMB_PX = 96  # 8x8 digits are enlarged 12x (nearest neighbour) so the strokes are visible


def caption(row: pd.Series, key: str) -> str:
    """What each thumbnail says: id, given and predicted label, the score's value."""
    predicted = row["predicted"] if row["predicted"] is not None else "?"
    return (
        f"#{row['id']}  \ngiven {escape_md(row['given'])} · pred {escape_md(predicted)}  \n"
        f"{key} {row[key]:.4g}"
    )


def values_table(view: RunView, frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """The shown examples with every score the run holds (the chosen one first)."""
    others = [k for k in view.score_keys if k != key]
    extra = view.table.iloc[frame["row"].to_numpy()][others].reset_index(drop=True)
    cols = ["id", "given", "predicted", "pred_prob", key]
    return pd.concat([frame[cols].reset_index(drop=True), extra], axis=1)


def show_images(view: RunView, frame: pd.DataFrame, key: str) -> bool:
    """An image grid; False when the run has no rendered images."""
    images = suspects.load_images(view, frame["row"].to_numpy(), size=THUMB_PX)
    if images is None:
        return False
    st.image(list(images), caption=[caption(r, key) for _, r in frame.iterrows()])
    return True


def show_texts(view: RunView, frame: pd.DataFrame, key: str) -> bool:
    """One bordered item per text (sentence pairs as one line per input); False without texts."""
    texts = suspects.load_texts(view, frame["id"].to_numpy())
    if texts is None:
        return False
    inputs = [c for c in texts.columns if c != "id"]
    for (_, row), (_, text) in zip(frame.iterrows(), texts.iterrows(), strict=True):
        predicted = row["predicted"] if row["predicted"] is not None else "?"
        with st.container(border=True):
            st.markdown(
                f"**#{row['id']}** · given **{escape_md(row['given'])}** · "
                f"predicted **{escape_md(predicted)}** · {key} `{row[key]:.4g}`"
            )
            lines = [f"*{escape_md(col)}:* {escape_md(text[col])}" for col in inputs]
            st.markdown("  \n".join(lines))
    return True


def section(view: RunView, title: str, frame: pd.DataFrame, key: str) -> None:
    st.subheader(title)
    if frame.empty:
        st.info("No examples in this class.")
        return
    show = show_images if view.modality == "image" else show_texts
    if not show(view, frame, key):
        st.info(
            "This run has no rendered examples (it was scored before Winnow kept them), so "
            "only ids and values are listed. Score the dataset again from Home to see them.",
            icon=":material/image_not_supported:",
        )
        st.dataframe(values_table(view, frame, key), hide_index=True, width="stretch")
        return
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
        k = st.slider("Examples per side", 4, 48, 12, key="examples_k")
    label = None if chosen == ALL_CLASSES else names.index(chosen)
    direction = "higher" if view.higher_is_harder(key) else "lower"
    st.caption(f"Ranked by `{key}`: {direction} values are harder. {escape_md(view.title())}")
    if key in REGISTRY:
        with st.expander(f"What is `{key}`?"):
            st.markdown(REGISTRY[key].doc)
    easiest, hardest = suspects.extremes(view, key, k, label)
    where = "" if label is None else f" in class {escape_md(chosen)}"
    section(view, f"{len(hardest)} hardest{where}", hardest, key)
    section(view, f"{len(easiest)} easiest{where}", easiest, key)


run = page_header("Examples")
try:
    render(run)
except InputError as err:
    st.warning(escape_md(err))
