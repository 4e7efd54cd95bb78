"""Filtering a review grid: a search box and class / split / flagged / decided / pair filters.

One pure function (`filter_mask`, tested without Streamlit) decides which rows of an
evidence frame (`app_pages._review.evidence`, i.e. `scoring.read.suspects.suspects`) pass,
and one widget function (`filter_controls`) draws the controls, remembers them per page and
returns that mask. Pages filter the ranked frame first and truncate after, so "the hardest
12 in class X whose text holds 'good'" is 12 rows when 12 exist, not the matches among the
first 12.

Search: a query `#123` looks up id 123; a bare integer `123` matches id 123 or any text that
holds "123"; anything else is a case-insensitive substring of any text column. Image runs
have no text, so only the id forms find anything there.

Pair (Mislabeled only, and only on a run whose health report flags overlapping classes,
`scoring.read.health.overlapping_pairs`): the rows given one class of the pair whose
suggested label is the other, i.e. the examples behind "cat/dog: 6% of their rows look
like the other".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st

from app_pages._shared import mtime, read_run, ui
from scoring import store
from scoring.read import health, suspects
from scoring.read.views import RunView

TRISTATE = ("any", "yes", "no")
CONTROLS = ("search", "classes", "splits", "flagged", "decided")
OPTIONAL_CONTROLS = ("pair",)  # drawn only where a page asks for them
ANY_PAIR: tuple[str, ...] = ()
_FLAGGED_WORDS = {"any": "any", "yes": "flagged", "no": "not flagged"}
_DECIDED_WORDS = {"any": "any", "yes": "decided", "no": "undecided"}
_ID_ONLY = re.compile(r"#\s*(\d+)")  # "#123": the id, nothing else
_BARE_INT = re.compile(r"\d+")  # "123": the id, or a text that holds "123"


@dataclass(frozen=True)
class Filters:
    """What a grid's rows must satisfy; the defaults let every row through."""

    search: str = ""  # "#id", a bare integer (id or text), or a text substring
    classes: tuple[str, ...] = ()  # given-label names; empty = every class
    splits: tuple[str, ...] = ()  # "train" / "heldout"; empty = both
    flagged: str = "any"  # cleanlab's flag: "any" | "yes" | "no"
    decided: str = "any"  # has a current decision: "any" | "yes" | "no"
    pair: tuple[str, ...] = ()  # two class names: given one, suggested the other; () = any
    hints: tuple[str, ...] = field(default=(), compare=False)  # notes for the caption

    @property
    def active(self) -> bool:
        return bool(
            self.search.strip()
            or self.classes
            or self.splits
            or self.flagged != "any"
            or self.decided != "any"
            or bool(self.pair)
        )


# --- the pure part -------------------------------------------------------------------------


def filter_mask(
    ev: pd.DataFrame,
    latest: pd.DataFrame,
    filters: Filters,
    texts: pd.DataFrame | None = None,
) -> pd.Series:
    """Which rows of an evidence frame pass the filters.

    Parameters
    ----------
    ev : DataFrame of shape (n_rows, ...)
        Rows to filter, with `id`, `label` (the given label, as a name as `suspects.suspects`
        gives it), `split`, `flagged` and `suggested_label` (those read only when their
        filter is set).
    latest : DataFrame with an `id` column
        The run's current decisions (`decisions.latest`); an id in it counts as decided.
    filters : Filters
    texts : DataFrame, optional
        `id` and one column per text input (`suspects.load_texts`), for any subset or
        superset of `ev`'s ids; None on image runs, where the search looks up ids only.

    Returns
    -------
    Series of bool, indexed like `ev`
        True for a row that passes every filter.

    Raises
    ------
    ValueError
        `flagged` or `decided` is not one of "any", "yes", "no", or `pair` is neither empty
        nor two class names.
    """
    for name in ("flagged", "decided"):
        if getattr(filters, name) not in TRISTATE:
            raise ValueError(f"{name} must be one of {TRISTATE}, got {getattr(filters, name)!r}")
    if filters.pair and len(filters.pair) != 2:
        raise ValueError(f"pair must be two class names, got {filters.pair!r}")
    mask = pd.Series(True, index=ev.index)
    if filters.search.strip():
        mask &= _search_mask(ev, filters.search.strip(), texts)
    if filters.classes:
        mask &= ev["label"].astype(str).isin([str(c) for c in filters.classes])
    if filters.splits:
        mask &= ev["split"].isin(list(filters.splits))
    if filters.flagged != "any":
        flagged = ev["flagged"].fillna(False).astype(bool)
        mask &= flagged if filters.flagged == "yes" else ~flagged
    if filters.decided != "any":
        decided_ids = latest["id"] if "id" in latest.columns else []
        decided = ev["id"].isin(decided_ids)
        mask &= decided if filters.decided == "yes" else ~decided
    if filters.pair:
        a, b = (str(c) for c in filters.pair)
        given, suggested = ev["label"].astype(str), ev["suggested_label"].astype(str)
        mask &= ((given == a) & (suggested == b)) | ((given == b) & (suggested == a))
    return mask


def _search_mask(ev: pd.DataFrame, query: str, texts: pd.DataFrame | None) -> pd.Series:
    """The rows a non-empty, stripped query finds (see the module docstring)."""
    ids = ev["id"].astype(np.int64)
    found = _ID_ONLY.fullmatch(query)
    if found:
        return ids == int(found.group(1))
    by_id = ids == int(query) if _BARE_INT.fullmatch(query) else pd.Series(False, index=ev.index)
    if texts is None:
        return by_id
    aligned = texts.drop_duplicates("id").set_index("id").reindex(ids.to_numpy())  # ev order
    by_text = np.zeros(len(ev), dtype=bool)
    for column in aligned.columns:
        # regex=False: a query like "a+b" or "(" is text, not a pattern.
        hits = aligned[column].astype("string").str.contains(query, case=False, regex=False)
        by_text |= hits.fillna(False).to_numpy(dtype=bool)
    return by_id | pd.Series(by_text, index=ev.index)


# --- the widgets ---------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=4)
def _texts_cached(run: str, stamp: tuple[float, float]) -> pd.DataFrame | None:
    # `stamp` (the texts files' mtimes) is in the key: a rescored run's texts are re-read.
    view = read_run(run)
    held = suspects.heldout_rows(view)
    ids = view.table["id"].to_numpy(np.int64)
    if held is not None:
        ids = np.concatenate([ids, held["id"].to_numpy(np.int64)])
    return suspects.load_texts(view, ids)


def run_texts(view: RunView) -> pd.DataFrame | None:
    """Every text of the run (training and carved held-out rows) by id; None for images."""
    if view.modality == "image":
        return None
    rd = store.RunDir(view.path)
    return _texts_cached(str(view.path), (mtime(rd.texts_file), mtime(rd.heldout_texts_file)))


def _choices_key(key: str) -> str:
    return f"{key}_filters"


def active_filters(key: str) -> Filters:
    """The filters the page `key` shows now (as `filter_controls` last drew them)."""
    saved = ui().choices.get(_choices_key(key))
    return saved if isinstance(saved, Filters) else Filters()


def filter_controls(
    view: RunView,
    ev: pd.DataFrame,
    latest: pd.DataFrame,
    *,
    key: str,
    controls: Sequence[str] = CONTROLS,
) -> pd.Series:
    """Draw the search box and filters over `ev`, and return which of its rows pass.

    The choices survive page switches (`ui().choices["<key>_filters"]`; widget keys
    `<key>_filter_<name>`). A filter with nothing to choose between is not drawn (a frame of
    training rows only gets no split filter; a run without cleanlab's flags, no flagged
    filter) and lets every row through. Below the controls: "N of M rows match".

    Parameters
    ----------
    view : RunView
    ev : DataFrame
        The rows to filter, as `filter_mask` takes them (`evidence(view)` or a part of it).
    latest : DataFrame
        The run's current decisions (`read_decisions` / `decisions.latest`).
    key : str
        The page's name ("examples", "mislabeled", "map"): one memory and widget keys per page.
    controls : sequence of str, optional
        Which of CONTROLS and OPTIONAL_CONTROLS to draw (a page with its own split or "hide
        reviewed" control can leave those out; "pair" is drawn only when asked for and the
        run has overlapping class pairs); the others let every row through.

    Returns
    -------
    Series of bool, indexed like `ev`
        Apply it to `ev` before ranking or truncating.
    """
    filters = _draw(view, ev, key, controls)
    ui().choices[_choices_key(key)] = filters
    texts = run_texts(view) if filters.search.strip() else None
    mask = filter_mask(ev, latest, filters, texts)
    hint = "".join(f" · {h}" for h in filters.hints)
    st.caption(f"{int(mask.sum()):,} of {len(ev):,} rows match{hint}")
    return mask


def _draw(view: RunView, ev: pd.DataFrame, key: str, controls: Sequence[str]) -> Filters:
    """The widgets in one row, each starting from the remembered choice; returns the values."""
    saved = active_filters(key)
    classes = [str(c) for c in view.label_names if str(c) in set(ev["label"].astype(str))]
    splits = [s for s in suspects.SPLITS if s != "all" and s in set(ev["split"])]
    drawn = [c for c in controls if c in CONTROLS + OPTIONAL_CONTROLS]
    pairs = health.overlapping_pairs(view) if "pair" in drawn else []
    if not pairs or "suggested_label" not in ev.columns:
        drawn = [c for c in drawn if c != "pair"]
    if len(classes) < 2:
        drawn = [c for c in drawn if c != "classes"]
    if len(splits) < 2:
        drawn = [c for c in drawn if c != "splits"]
    if "flagged" in drawn and not ev["flagged"].fillna(False).astype(bool).any():
        drawn.remove("flagged")
    if not drawn:
        return Filters()
    widths = {"search": 3, "classes": 3, "splits": 2, "flagged": 2, "decided": 2, "pair": 3}
    cells = dict(zip(drawn, st.columns([widths[c] for c in drawn]), strict=True))
    values: dict[str, object] = {}
    hints: tuple[str, ...] = ()
    if "search" in cells:
        with cells["search"]:
            values["search"], hints = _search_box(view, saved.search, key)
    for name, label, options, empty in (
        ("classes", "Class", classes, "every class"),
        ("splits", "Split", splits, "both"),
    ):
        if name in cells:
            values[name] = tuple(
                cells[name].multiselect(
                    label,
                    options,
                    default=[c for c in getattr(saved, name) if c in options],
                    key=f"{key}_filter_{name}",
                    placeholder=empty,
                )
            )
    for name, label, words in (
        ("flagged", "Flagged by cleanlab", _FLAGGED_WORDS),
        ("decided", "Decision", _DECIDED_WORDS),
    ):
        if name in cells:
            values[name] = cells[name].selectbox(
                label,
                TRISTATE,
                index=TRISTATE.index(getattr(saved, name)),
                key=f"{key}_filter_{name}",
                format_func=words.get,
            )
    if "pair" in cells:
        with cells["pair"]:
            values["pair"] = _pair_box(pairs, saved.pair, key)
    return Filters(**values, hints=hints)  # type: ignore[arg-type]


def _pair_box(pairs: list[tuple[str, str]], start: tuple[str, ...], key: str) -> tuple[str, ...]:
    """The overlapping-pair select: "any pair" or one of the run's flagged pairs."""
    options = [ANY_PAIR, *pairs]
    return st.selectbox(
        "Overlapping classes",
        options,
        index=options.index(start) if start in options else 0,
        key=f"{key}_filter_pair",
        format_func=lambda p: f"{p[0]} ↔ {p[1]}" if p else "any pair",
        help="Classes the data does not separate (the health report on Home): the rows "
        "given one class whose suggested label is the other.",
    )


def _search_box(view: RunView, start: str, key: str) -> tuple[str, tuple[str, ...]]:
    """The search box, and a note for the caption when an image run is searched by text."""
    image = view.modality == "image"
    query = st.text_input(
        "Search by #id" if image else "Search text or #id",
        value=start,
        key=f"{key}_filter_search",
        placeholder="#123 (image runs: ids only)" if image else "a word, or #123",
        help=(
            "`#123` or `123` finds example 123; image runs have no text to search."
            if image
            else "`#123` finds example 123. Anything else is looked for, ignoring case, "
            "anywhere in every text column; a bare number also finds that id."
        ),
    )
    stripped = query.strip()
    if image and stripped and not (_ID_ONLY.fullmatch(stripped) or _BARE_INT.fullmatch(stripped)):
        return query, ("image runs are searched by id only",)
    return query, ()
