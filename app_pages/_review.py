"""Reviewing examples: one card and one set of decision buttons for Mislabeled, Examples and Map.

Every click appends to the run's `decisions.jsonl` (`scoring.read.decisions`) in the widget's
callback, so nothing waits for a save button and nothing is lost on a restart. The evidence a
card shows (p of the given label, the suggested label and its probability, why it is suspect)
is the detector's own out-of-sample numbers from `scoring.read.suspects.suspects`, so a card
never contradicts the ranking it sits in.

Colours: Keep is a plain (secondary) button with a check, Drop the red primary button, and
"Relabel to <suggested>" a secondary button with a blue label, so the three read apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from app_pages._shared import escape_md, mtime, read_run
from scoring import store
from scoring.errors import InputError
from scoring.read import decisions, suspects
from scoring.read.views import RunView

THUMB_PX = 96  # 8x8 digits are enlarged 12x (nearest neighbour) so the strokes are visible
# Cards per row of a review grid, by modality: the one owner (Examples, Map, Mislabeled).
# Text cards 2 wide: at 3 or more a sentence wraps every few words and the buttons lose
# their labels; 2 keeps a premise/hypothesis pair readable on a laptop screen without
# giving a one-line text a whole row (one card a row is Mislabeled's list, not a grid).
# Images 5: a 96 px thumbnail with its evidence line and labelled Keep / Drop buttons fits.
GRID_COLUMNS = {"image": 5, "text": 2}
COMPACT_FROM = 3  # cards per row from which the buttons use their short labels


def grid_columns(view: RunView) -> int:
    """Cards per row of a review grid for the run's modality (`GRID_COLUMNS`)."""
    return GRID_COLUMNS.get(view.modality, GRID_COLUMNS["text"])


# --- evidence ------------------------------------------------------------------------------


def text_fields(text: pd.Series) -> str:
    """An example's text columns as escaped markdown lines ("*column:* value"), id left out."""
    return "  \n".join(f"*{escape_md(c)}:* {escape_md(text[c])}" for c in text.index if c != "id")


@st.cache_data(show_spinner=False, max_entries=4)
def _evidence_cached(run: str, stamp: tuple[float, ...], detector: str | None) -> pd.DataFrame:
    # `stamp` (the run's result files' mtimes) is in the key: a rescored run is re-read.
    return suspects.suspects(read_run(run), detector=detector)


def evidence(view: RunView, detector: str | None = None) -> pd.DataFrame:
    """Every row's out-of-sample evidence (training and held-out), most suspect first.

    Returns
    -------
    DataFrame, one row per example of the run (`suspects.suspects` with top=None)
        id, split, label, suggested_label, given_prob, suggested_prob, score, detector,
        flagged, why; labels as class indices (`label_index` turns names into indices).
    """
    rd = store.RunDir(view.path)
    stamp = (mtime(rd.status_file), *(mtime(f) for f in rd.written_files()))
    return _evidence_cached(str(view.path), stamp, detector)


def label_index(value: object, names: Sequence[str]) -> int | None:
    """A label as a class index, whether the engine gave it as an index or as a name."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, str):
        return list(names).index(value) if value in names else None
    return int(value)  # type: ignore[call-overload]


def label_name(value: object, names: Sequence[str]) -> str:
    index = label_index(value, names)
    return "?" if index is None else str(names[index])


# --- evaluation mode -----------------------------------------------------------------------


def evaluation_mode(view: RunView) -> bool:
    """The "Evaluation mode" toggle of a run with injected noise (False on any other run).

    Off by default: the truth of injected noise (which labels were flipped, and to what)
    measures detectors; a reviewer who sees it on the cards is no longer reviewing. Turned
    on, the pages show it, and every decision saved meanwhile is marked `evaluation` in
    decisions.jsonl (a sweep applying decisions then refuses them unless asked). The state
    lives in the widget (one key per run), so it is off again on a page that does not show it.
    """
    if not view.has_noise:
        return False
    return st.toggle(
        "Evaluation mode: show which labels were injected",
        key=_evaluation_key(str(view.path)),
        help=(
            "This run's labels were flipped on purpose. Turn on to see which suspects were "
            "flipped (and how each detector finds them); decisions you save meanwhile are "
            "marked as made in evaluation mode, and sweeps refuse them unless asked."
        ),
    )


def _evaluation_key(run: str) -> str:
    return f"evaluation_mode:{run}"


def in_evaluation(run: str) -> bool:
    """Whether the run's evaluation mode is on now (a callback's decisions are marked)."""
    return bool(st.session_state.get(_evaluation_key(run)))


# --- saving --------------------------------------------------------------------------------


def save(run: str, example: int, action: str, new_label: int | None = None) -> None:
    """Button callback: append the decision now, say so in a toast."""
    try:
        decisions.append(run, example, action, new_label, evaluation=in_evaluation(run))
    except (InputError, OSError) as err:
        st.toast(f"Decision not saved: {escape_md(err)}", icon=":material/error:")
        return
    what = "undone" if action == decisions.CLEAR else f"{action} saved"
    st.toast(f"#{example}: {what}", icon=":material/check:")


def _save_select(run: str, example: int, key: str) -> None:
    """The "another label" select's callback: relabel to what it shows (nothing when cleared)."""
    new_label = st.session_state.get(key)
    if new_label is not None:
        save(run, example, "relabel", int(new_label))


def save_many(run: str, records: list[tuple[int, str, int | None]]) -> int:
    """Append several decisions (id, action, new_label); returns how many were written.

    Stops at the first refusal with a toast; the ones written before it stay (append-only).
    """
    written, evaluation = 0, in_evaluation(run)
    for example, action, new_label in records:
        try:
            decisions.append(run, example, action, new_label, evaluation=evaluation)
        except (InputError, OSError) as err:
            st.toast(f"Stopped after {written}: {escape_md(err)}", icon=":material/error:")
            break
        written += 1
    return written


def describe(decision: pd.Series | None, names: Sequence[str]) -> str:
    """The current decision in words (markdown)."""
    if decision is None:
        return "No decision yet"
    marked = " (made in evaluation mode)" if decision.get("evaluation", False) else ""
    if decision["action"] == "relabel":
        return f"Decision: **relabel → {escape_md(names[int(decision['new_label'])])}**{marked}"
    return f"Decision: **{decision['action']}**{marked}"


def current_decision(latest: pd.DataFrame, example: int) -> pd.Series | None:
    """The example's row of `decisions.latest`, or None when it has no decision."""
    match = latest[latest["id"] == example]
    return None if match.empty else match.iloc[-1]


# --- buttons -------------------------------------------------------------------------------


def decision_buttons(
    run: str,
    example: int,
    given: int,
    suggested: int | None,
    decision: pd.Series | None,
    names: Sequence[str],
    *,
    prefix: str = "",
    compact: bool = False,
) -> None:
    """Keep / Drop / Relabel to <suggested> / Undo, and a select for any other label.

    Keys are `<prefix><action>_<id>` (actions keep, drop, accept, clear, relabel), so one
    example may sit in two sections of a page under different prefixes. `compact` (grids of
    COMPACT_FROM or more cards a row) uses short labels so the buttons fit a narrow card.
    """
    action = None if decision is None else decision["action"]
    st.markdown(describe(decision, names))
    _keep_drop_buttons(run, example, action, prefix, stacked=compact)
    relabelled = None if action != "relabel" else int(decision["new_label"])
    if suggested is not None and suggested != given:
        name = escape_md(names[suggested])
        st.button(
            f":blue[{'→' if compact else 'Relabel to'} {name}]",
            key=f"{prefix}accept_{example}",
            icon=":material/edit:",
            type="secondary",
            on_click=save,
            args=(run, example, "relabel", suggested),
            disabled=relabelled == suggested,
            help=f"Relabel #{example} to {name}, the label the detector's models suggest",
            width="stretch",
        )
    st.button(
        "Undo",
        key=f"{prefix}clear_{example}",
        icon=":material/undo:",
        type="tertiary",
        disabled=decision is None,
        on_click=save,
        args=(run, example, decisions.CLEAR),
    )
    _other_label_select(run, example, given, relabelled, names, prefix=prefix, compact=compact)


def _keep_drop_buttons(
    run: str, example: int, action: str | None, prefix: str, *, stacked: bool = False
) -> None:
    """Keep and Drop side by side (`stacked`: one above the other, for a narrow card, where
    side by side cuts their labels to "K." and "D."); the one matching the saved decision is
    disabled."""
    keep, drop = (st.container(), st.container()) if stacked else st.columns(2)
    keep.button(
        "Keep",
        key=f"{prefix}keep_{example}",
        icon=":material/check:",
        type="secondary",
        on_click=save,
        args=(run, example, "keep"),
        disabled=action == "keep",
        width="stretch",
    )
    drop.button(
        "Drop",
        key=f"{prefix}drop_{example}",
        icon=":material/delete:",
        type="primary",  # the theme's red: the one action that removes data
        on_click=save,
        args=(run, example, "drop"),
        disabled=action == "drop",
        width="stretch",
    )


def _other_label_select(
    run: str,
    example: int,
    given: int,
    relabelled: int | None,
    names: Sequence[str],
    *,
    prefix: str,
    compact: bool,
) -> None:
    """A select over every label but the given one; choosing one saves a relabel."""
    options = [i for i in range(len(names)) if i != given]
    key = f"{prefix}relabel_{example}"
    current = relabelled if relabelled in options else None
    if key not in st.session_state or st.session_state[key] != current:
        st.session_state[key] = current  # the select follows the saved decision
    st.selectbox(
        "Relabel to another label" if not compact else "Other label",
        options,
        index=None,  # the value comes from the session state set just above
        format_func=lambda i: str(names[i]),
        placeholder="Choose a label",
        key=key,
        on_change=_save_select,
        args=(run, example, key),
        label_visibility="visible" if not compact else "collapsed",
    )


# --- cards and grids -------------------------------------------------------------------------


def load_images(view: RunView, ids: Sequence[int], size: int = THUMB_PX) -> list[np.ndarray | None]:
    """Thumbnails by example id (training or held-out); None for an example without a stored
    image (held-out rows of runs that kept only the training images, older runs)."""
    ids = [int(i) for i in ids]
    if not ids:
        return []
    together = suspects.load_example_images(view, ids, size=size)
    if together is not None:
        return list(together)
    # Some id has no stored image: fetch the training rows alone, leave the others blank.
    position = pd.Index(view.table["id"].to_numpy()).get_indexer(ids)  # (n,), -1 if absent
    have = position[position >= 0]
    images = suspects.load_images(view, have, size=size) if have.size else None
    if images is None:
        return [None] * len(ids)
    it = iter(images)
    return [next(it) if p >= 0 else None for p in position]


def load_texts(view: RunView, ids: Sequence[int]) -> pd.DataFrame | None:
    """Texts by id (columns named after the dataset's inputs); None without stored texts."""
    return suspects.load_texts(view, np.asarray(ids, dtype=np.int64))


def evidence_line(row: pd.Series, names: Sequence[str]) -> str:
    """Given label, suggested label with both probabilities, split: one markdown line."""
    given, suggested = label_name(row["label"], names), label_name(row["suggested_label"], names)
    shown = f"**{escape_md(suggested)}**"
    if suggested != given:  # the models disagree with the label: the thing to look at
        shown = f":red[{shown}]"
    text = (
        f"**#{int(row['id'])}** · given **{escape_md(given)}** (p {row['given_prob']:.2f}) · "
        f"suggested {shown} (p {row['suggested_prob']:.2f})"
    )
    if row.get("split") == "heldout":
        text += " · :violet-badge[heldout]"
    return text


def review_grid(
    view: RunView,
    frame: pd.DataFrame,
    latest: pd.DataFrame,
    *,
    prefix: str,
    columns: int | None = None,
    caption=None,
) -> None:
    """A grid of examples, each with its image or text, its evidence and the decision buttons.

    Parameters
    ----------
    frame : DataFrame with an `id` column
        The examples to show, in order; evidence (`evidence`) is joined by id.
    latest : the run's current decisions (`decisions.latest`)
    prefix : widget-key prefix, unique per grid on a page
    columns : int, optional
        Cards per row; default `grid_columns(view)`. From COMPACT_FROM on, the buttons use
        their short labels (a narrow card); below it they say what they do in full.
    caption : callable (row) -> str, optional
        An extra line per example (e.g. the score the Examples page ranks by).
    """
    columns = grid_columns(view) if columns is None else columns
    compact = columns >= COMPACT_FROM
    names = view.label_names
    ev = evidence(view).set_index("id")
    ids = [int(i) for i in frame["id"]]
    ids_known = [i for i in ids if i in ev.index]
    images = load_images(view, ids_known) if view.modality == "image" else None
    texts = None if view.modality == "image" else load_texts(view, ids_known)
    for start in range(0, len(ids_known), columns):
        cells = st.columns(columns)
        for j, example in enumerate(ids_known[start : start + columns]):
            k = start + j
            row = ev.loc[example]
            row = pd.concat([pd.Series({"id": example}), row])
            given = label_index(row["label"], names)
            suggested = label_index(row["suggested_label"], names)
            with cells[j].container(border=True):
                if images is not None and images[k] is not None:
                    st.image(images[k], width=THUMB_PX)
                if texts is not None:
                    st.markdown(text_fields(texts.iloc[k]))
                st.markdown(evidence_line(row, names))
                if caption is not None:
                    st.caption(caption(frame.iloc[ids.index(example)]))
                decision_buttons(
                    str(view.path),
                    example,
                    -1 if given is None else given,
                    suggested,
                    current_decision(latest, example),
                    names,
                    prefix=prefix,
                    compact=compact,
                )


def selected_ids(event: object) -> list[int]:
    """Example ids of a plotly selection event (customdata[0] of each point), in order."""
    try:
        points = event["selection"]["points"]  # type: ignore[index]
    except (KeyError, TypeError):
        return []
    ids = []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, list | tuple) and data:
            ids.append(int(data[0]))
    return list(dict.fromkeys(ids))
