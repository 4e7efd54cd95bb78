"""Duplicates & outliers: exact and near-duplicate groups, train/test leaks, outliers, balance.

Everything shown is computed in `scoring.read.neighbours` from the run's `dup_group` and
`leak_of` columns and its `outlier` score (label-free embeddings, `scoring.scores.neighbourhood`).
Decisions made here are the Mislabeled page's decisions (`decisions.jsonl`, written at once by
`app_pages._review`): "keep only this one" keeps one row of a group and drops the others, "drop
the training row" drops a leaked row. The same drops without deciding row by row are the
switches **Drop duplicates first** / **Drop leaked rows first** on Pruning and Export (the
planner keeps the lowest id of each group, the row marked here as kept by dedup).
A run without the columns says what is missing and how to get it; the other sections still
show.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app_pages._labelling import labelling_section
from app_pages._review import (
    THUMB_PX,
    current_decision,
    describe,
    load_images,
    load_texts,
    review_grid,
    save_many,
    text_fields,
)
from app_pages._shared import (
    escape_md,
    mtime,
    noun,
    page_header,
    read_decisions,
    read_run,
    remembered,
)
from scoring import store
from scoring.errors import InputError
from scoring.read import decisions, labelling, neighbours
from scoring.read.views import RunView

GROUPS_PER_PAGE = 5
PAIRS_PER_PAGE = 8
MEMBERS_SHOWN = 6  # thumbnails per group; the rest are listed by id
COLUMNS = {"image": 6, "text": 3}  # outlier cards per row

EXPLAIN = {
    "exact_copies": (
        "exact duplicates",
        "rows whose decoded pixels (or text, ignoring case and spacing) repeat another row's "
        "exactly; counted beyond the first copy",
    ),
    "duplicate_groups": (
        "near-duplicate groups",
        "groups of rows that are exact copies or closer on the label-free embeddings than the "
        "data's own near-duplicate threshold; dropping duplicates keeps one row per group",
    ),
    "leaks": (
        "train/test leaks",
        "training rows that copy a held-out/test row: the model is tested on what it trained "
        "on, so test accuracy is inflated",
    ),
    "outliers": (
        "outliers",
        f"rows unusually far from their {neighbours.K_OUTLIER} nearest rows (robust z-score of the "
        "outlier score at least 3): unusual inputs, wrong files, corrupt images",
    ),
}


# EXPLAIN's names for a count of one ("1 outlier", not "1 outliers").
SINGULAR = {
    "exact_copies": "exact duplicate",
    "duplicate_groups": "near-duplicate group",
    "leaks": "train/test leak",
    "outliers": "outlier",
}


@st.cache_data(show_spinner=False, max_entries=4)
def _tables_cached(run: str, stamp: tuple[float, ...]) -> dict:
    # `stamp` (the run's result files' mtimes) is in the key: a rescored run is re-read.
    view = read_run(run)
    out: dict = {"counts": neighbours.issue_counts(view)}
    if "dup_group" in view.table.columns:
        out["rows"] = neighbours.duplicate_rows(view)
        out["groups"] = neighbours.group_table(out["rows"], view.label_names)
    if "leak_of" in view.table.columns:
        out["leaks"] = neighbours.leak_pairs(view)
    return out


def tables(view: RunView) -> dict:
    """Counts, duplicate rows and groups, leak pairs (cached per run version)."""
    rd = store.RunDir(view.path)
    stamp = (mtime(rd.status_file), *(mtime(f) for f in rd.written_files()))
    return _tables_cached(str(view.path), stamp)


# --- decisions (button callbacks) -------------------------------------------------------


def _decide(run: str, records: list[tuple[int, str, int | None]], what: str) -> None:
    written = save_many(run, records)
    if written == len(records):
        st.toast(what, icon=":material/check:")


def _keep_only(run: str, keep: int, others: list[int]) -> None:
    records = [(keep, "keep", None)] + [(i, "drop", None) for i in others]
    _decide(run, records, f"#{keep} kept, {len(others)} {noun(len(others), 'other')} dropped")


def _undo(run: str, ids: list[int], latest_ids: set[int]) -> None:
    records = [(i, decisions.CLEAR, None) for i in ids if i in latest_ids]
    _decide(run, records, f"{len(records)} {noun(len(records), 'decision')} undone")


# --- sections ------------------------------------------------------------------------------


def counts_section(view: RunView, counts: dict) -> None:
    """Counts per issue type, one line each with what it means (or what is missing)."""
    st.header("Issues found")
    n_train = len(view.table)
    # Say which rows the counts cover: Mislabeled's count also includes held-out rows.
    st.caption(
        f"Among the {n_train:,} training {noun(n_train, 'row')}; a leak pairs a training row "
        "with a held-out/test row."
    )
    lines = []
    for key, (names, meaning) in EXPLAIN.items():
        n = counts.get(key)
        if n is None:
            column = {"exact_copies": "dup_group", "duplicate_groups": "dup_group"}.get(
                key, "leak_of" if key == "leaks" else "outlier"
            )
            why = neighbours.missing_message(view, column) or "the run kept no examples"
            lines.append(f"- **{names}**: not available ({escape_md(why)})")
            continue
        extra = ""
        if key == "duplicate_groups":
            in_groups = counts["rows_in_groups"]
            extra = (
                f" ({in_groups:,} {noun(in_groups, 'row')}; dropping duplicates removes "
                f"{counts['redundant_rows']:,})"
            )
        lines.append(f"- **{n:,} {names if n != 1 else SINGULAR[key]}**{extra}: {meaning}.")
    ratio = counts.get("imbalance")
    if ratio is not None:
        largest, smallest = counts["largest_class"], counts["smallest_class"]
        lines.append(
            f"- **class imbalance {ratio:.2f}×**: the largest class has "
            f"{largest:,} training {noun(largest, 'row')}, the smallest {smallest:,}"
            " (1.00× is balanced; see the table below)."
        )
    st.markdown("\n".join(lines))


def _pager(label: str, n_items: int, per_page: int, key: str) -> int:
    """A page number input when the items need more than one page; returns the start index."""
    pages = max(1, math.ceil(n_items / per_page))
    if pages == 1:
        return 0
    page = st.number_input(
        f"{label} page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key=key
    )
    return (int(page) - 1) * per_page


def _examples(view: RunView, ids: list[int]) -> tuple[list | None, pd.DataFrame | None]:
    """Training rows' images or texts by id (None where the run kept none)."""
    if view.modality == "image":
        images = load_images(view, ids)
        return (None if all(i is None for i in images) else images), None
    return None, load_texts(view, ids)


def _example_cell(images: list | None, texts: pd.DataFrame | None, j: int) -> None:
    """The j-th example's thumbnail or text fields, from `_examples`' (images, texts)."""
    if images is not None and images[j] is not None:
        st.image(images[j], width=THUMB_PX)
    if texts is not None:
        st.markdown(text_fields(texts.iloc[j]))


def groups_section(view: RunView, data: dict, latest: pd.DataFrame) -> None:
    """The duplicate groups, a page at a time, largest first, each in its own card."""
    st.header("Duplicate groups")
    missing = neighbours.missing_message(view, "dup_group")
    if missing is not None:
        st.info(f"No duplicate groups to show: {escape_md(missing)}.", icon=":material/info:")
        return
    groups, rows = data["groups"], data["rows"]
    if groups.empty:
        st.success("No duplicates: no two training rows are copies or near copies.")
        return
    st.caption(
        "Each group side by side, largest first. **Keep only this one** keeps that row and "
        "drops the others of its group (decisions, as on Mislabeled); the row marked *kept by "
        "dedup* (the lowest id) is the one **Drop duplicates first** keeps on Pruning and "
        "Export. Different labels in one group mean the copies disagree: one label is wrong."
    )
    _send_disagreeing(view, groups)
    decided = set(latest["id"].astype(int))
    start = _pager("Groups", len(groups), GROUPS_PER_PAGE, "dup_groups_page")
    for _, group in groups.iloc[start : start + GROUPS_PER_PAGE].iterrows():
        with st.container(border=True):
            _group_card(view, group, rows, latest, decided)


def _send_disagreeing(view: RunView, groups: pd.DataFrame) -> None:
    """The rows of the groups whose labels disagree, to a labelling tool: one label is wrong."""
    ids = [int(i) for part in groups.loc[groups["labels"] > 1, "ids"] for i in part]
    if not ids:
        return
    rows = labelling.suspect_rows(view, ids)
    n_groups = int((groups["labels"] > 1).sum())
    what = (
        f"The {len(rows)} rows of the {n_groups} {noun(n_groups, 'group')} whose labels "
        "disagree, each with the model's suggestion. "
    )
    labelling_section(view, rows, "duplicates", what)


def _group_card(
    view: RunView, group: pd.Series, rows: pd.DataFrame, latest: pd.DataFrame, decided: set[int]
) -> None:
    """One group (a row of `neighbours.group_table`): heading, members, the group's buttons."""
    run = str(view.path)
    g, ids = int(group["group"]), [int(i) for i in group["ids"]]
    members = rows[rows["group"] == g].set_index("id")
    conflict = " · :red[labels disagree]" if group["labels"] > 1 else ""
    n_exact, size = int(group["exact"]), int(group["size"])
    exact = {0: ", near copies", size: ", all exact copies"}.get(
        n_exact, f", {n_exact} of them exact copies"
    )
    st.markdown(
        f"**Group {g}**: {group['size']} rows{exact} · labels "
        f"{escape_md(group['label_names'])}{conflict}"
    )
    shown = ids[:MEMBERS_SHOWN]
    _group_members(view, g, ids, shown, members, latest)
    if len(ids) > len(shown):
        rest = ", ".join(f"#{i}" for i in ids[len(shown) :])
        st.caption(f"and {len(ids) - len(shown)} more: {rest}")
    left, right = st.columns(2)
    keep = int(group["keep_id"])
    left.button(
        f"Drop all but #{keep}",
        key=f"dup_drop_{g}",
        icon=":material/delete:",
        type="primary",
        on_click=_keep_only,
        args=(run, keep, neighbours.drops_for_group(rows, g)),
    )
    right.button(
        "Undo this group's decisions",
        key=f"dup_clear_{g}",
        icon=":material/undo:",
        type="tertiary",
        disabled=not decided & set(ids),
        on_click=_undo,
        args=(run, ids, decided),
    )


def _group_members(
    view: RunView,
    g: int,
    ids: list[int],
    shown: list[int],
    members: pd.DataFrame,
    latest: pd.DataFrame,
) -> None:
    """The `shown` members of group `g` side by side, each with its own keep button."""
    run, names = str(view.path), view.label_names
    images, texts = _examples(view, shown)
    for j, cell in enumerate(st.columns(len(shown))):
        example = shown[j]
        with cell:
            _example_cell(images, texts, j)
            label = escape_md(names[int(members.loc[example, "label"])])
            badge = " · kept by dedup" if members.loc[example, "kept"] else ""
            st.markdown(f"**#{example}** · {label}{badge}")
            st.caption(describe(current_decision(latest, example), names))
            st.button(
                "Keep only this one",
                key=f"dup_keep_{g}_{example}",
                icon=":material/check:",
                on_click=_keep_only,
                args=(run, example, [i for i in ids if i != example]),
                width="stretch",
            )


def leaks_section(view: RunView, data: dict, latest: pd.DataFrame) -> None:
    """Each leaked training row beside the held-out/test row it copies, a page at a time."""
    st.header("Train/test leaks")
    missing = neighbours.missing_message(view, "leak_of")
    if missing is not None:
        st.info(f"No leaks to show: {escape_md(missing)}.", icon=":material/info:")
        return
    pairs = data["leaks"]
    if pairs.empty:
        st.success("No leaks: no training row copies a held-out or test row.")
        return
    st.caption(
        "Each training row beside the held-out/test row it copies. **Drop the training row** "
        "leaves it out of the cleaned data and of retraining, so the test row measures what "
        "it should."
    )
    names = view.label_names
    decided = set(latest["id"].astype(int))
    start = _pager("Leaks", len(pairs), PAIRS_PER_PAGE, "dup_leaks_page")
    page = pairs.iloc[start : start + PAIRS_PER_PAGE]
    train_ids = [int(i) for i in page["id"]]
    test_ids = [int(i) for i in page["test_id"]]
    images, texts = _examples(view, train_ids)
    twin_images = neighbours.twin_images(view, test_ids) if view.modality == "image" else None
    twin_texts = None if view.modality == "image" else neighbours.twin_texts(view, test_ids)
    for k, (_, pair) in enumerate(page.iterrows()):
        example, twin = train_ids[k], test_ids[k]
        with st.container(border=True):
            left, middle, right = st.columns([2, 2, 3])
            with left:
                _example_cell(images, texts, k)
                st.markdown(f"**train #{example}** · {escape_md(names[int(pair['label'])])}")
            with middle:
                _example_cell(twin_images, twin_texts, k)
                twin_label = int(pair["test_label"])
                shown = escape_md(names[twin_label]) if twin_label >= 0 else "?"
                st.markdown(f"**{pair['split']} #{twin}** · {shown}")
            with right:
                _leak_actions(view, pair, example, latest, decided)


def _leak_actions(
    view: RunView, pair: pd.Series, example: int, latest: pd.DataFrame, decided: set[int]
) -> None:
    """How the training row copies its twin, its decision, and Drop / Undo."""
    run = str(view.path)
    how = "exact copy" if pair["exact"] else "near copy"
    labels = "same label" if pair["same_label"] else ":red[different labels]"
    score = f" · leakage {pair['leakage']:.2f}" if "leakage" in pair.index else ""
    st.markdown(f"{how} · {labels}{score}")
    st.caption(describe(current_decision(latest, example), view.label_names))
    st.button(
        "Drop the training row",
        key=f"leak_drop_{example}",
        icon=":material/delete:",
        type="primary",
        on_click=_decide,
        args=(run, [(example, "drop", None)], f"#{example}: drop saved"),
    )
    st.button(
        "Undo",
        key=f"leak_clear_{example}",
        icon=":material/undo:",
        type="tertiary",
        disabled=example not in decided,
        on_click=_undo,
        args=(run, [example], decided),
    )


def outliers_section(view: RunView, latest: pd.DataFrame, n_flagged: int | None) -> None:
    st.header("Top outliers")
    missing = neighbours.missing_message(view, "outlier")
    if missing is not None:
        st.info(f"No outliers to show: {escape_md(missing)}.", icon=":material/info:")
        return
    per_row = COLUMNS.get(view.modality, 3)
    k = remembered(
        st.slider,
        "Outliers shown",
        "dup_outliers_k",
        per_row,
        key="dup_outliers_k",
        min_value=per_row,
        max_value=8 * per_row,
        step=per_row,
    )
    frame = neighbours.top_outliers(view, int(k))
    flagged = n_flagged or 0
    counted = "counts as an outlier" if flagged == 1 else "count as outliers"
    st.caption(
        f"The training rows farthest from their {neighbours.K_OUTLIER} nearest rows, most outlying "
        f"first; {flagged:,} {counted} (robust z-score at least 3). Keep, drop or relabel "
        "them as on Mislabeled."
    )
    review_grid(
        view,
        frame,
        latest,
        prefix="out_",
        columns=per_row,
        caption=lambda row: (
            f"outlier {row['outlier']:.3f}" + (" · flagged" if row["flagged"] else "")
        ),
    )


def balance_section(view: RunView) -> None:
    st.header("Class balance")
    counts = neighbours.class_counts(view)
    st.dataframe(
        counts,
        hide_index=True,
        width="stretch",
        height=min(36 * (len(counts) + 1) + 2, 320),
        column_config={
            "share": st.column_config.ProgressColumn("share", format="percent"),
            "vs_largest": st.column_config.NumberColumn("vs largest", format="%.2f"),
        },
    )


# --- page ----------------------------------------------------------------------------------

current = page_header("Duplicates & outliers")
st.caption(
    "Copies, near copies, training rows that leak into the held-out/test data, and unusual "
    "rows, found on label-free embeddings. Decide here, or drop them all at once with "
    "**Drop duplicates first** / **Drop leaked rows first** on Pruning and Export "
    "(`winnow export --drop-duplicates --drop-leaks`)."
)
try:
    data_ = tables(current)
    latest_ = read_decisions(current)
    counts_section(current, data_["counts"])
    groups_section(current, data_, latest_)
    leaks_section(current, data_, latest_)
    outliers_section(current, latest_, data_["counts"].get("outliers"))
    balance_section(current)
except InputError as err:  # a run whose files disagree: say why, never a traceback
    st.warning(escape_md(err), icon=":material/warning:")
