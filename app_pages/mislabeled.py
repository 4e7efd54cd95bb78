"""Mislabeled: ranked suspects, given vs predicted label, keep / relabel / drop saved at once.

Every click appends to the run's `decisions.jsonl` (`scoring.read.decisions`) in the widget's
callback, so nothing waits for a save button and nothing is lost on a restart. Suspects are
shown a page at a time to keep the number of widgets per render small.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app_pages._shared import escape_md, page_header, pick, ui
from scoring.errors import InputError
from scoring.read import decisions, suspects
from scoring.read.views import RunView

PER_PAGE = 10  # 4 widgets per suspect: 40 per render stays responsive
MAX_SUSPECTS = 500
THUMB_PX = 96


def save(run: str, example: int, action: str, relabel_key: str | None = None) -> None:
    """Button / select callback: append the decision now, say so in a toast."""
    new_label = None
    if action == "relabel":
        new_label = st.session_state.get(relabel_key)
        if new_label is None:  # the select was cleared: nothing to record
            return
    try:
        decisions.append(run, example, action, new_label)
    except (InputError, OSError) as err:
        st.toast(f"Decision not saved: {escape_md(err)}", icon=":material/error:")
        return
    if action != "relabel" and relabel_key is not None:
        st.session_state[relabel_key] = None  # the select no longer shows an old relabel
    st.toast(f"#{example}: {action} saved", icon=":material/check:")


def describe(decision: pd.Series | None, names: list[str]) -> str:
    if decision is None:
        return "No decision yet"
    if decision["action"] == "relabel":
        return f"Decision: **relabel → {escape_md(names[int(decision['new_label'])])}**"
    return f"Decision: **{decision['action']}**"


def controls(
    run: str, row: pd.Series, given: int, decision: pd.Series | None, names: list[str]
) -> None:
    """Keep / Drop / Undo buttons and a Relabel-to select; keys carry the example id."""
    example = int(row["id"])
    action = None if decision is None else decision["action"]
    relabel_key = f"relabel_{example}"
    st.markdown(describe(decision, names))
    keep, drop, undo = st.columns(3)
    for column, label, act, icon in (
        (keep, "Keep", "keep", ":material/check:"),
        (drop, "Drop", "drop", ":material/delete:"),
    ):
        column.button(
            label,
            key=f"{act}_{example}",
            icon=icon,
            type="primary" if action == act else "secondary",
            on_click=save,
            args=(run, example, act, relabel_key),
            width="stretch",
        )
    undo.button(
        "Undo",
        key=f"clear_{example}",
        icon=":material/undo:",
        disabled=decision is None,
        on_click=save,
        args=(run, example, decisions.CLEAR, relabel_key),
        width="stretch",
    )
    options = [i for i in range(len(names)) if i != given]
    current = None if action != "relabel" else int(decision["new_label"])
    st.selectbox(
        "Relabel to",
        options,
        index=options.index(current) if current in options else None,
        format_func=names.__getitem__,
        placeholder="Choose the right label",
        key=relabel_key,
        on_change=save,
        args=(run, example, "relabel", relabel_key),
    )


def suspect_text(row: pd.Series, detector: str) -> str:
    predicted = escape_md(row["predicted"]) if row["predicted"] is not None else "?"
    lines = [
        f"**#{row['id']}** · given **{escape_md(row['given'])}** · predicted **{predicted}**",
        f"confidence {row['pred_prob']:.2f} · p(given) {row['given_prob']:.2f} · "
        f"{detector} `{row[detector]:.4g}`",
    ]
    if "noisy" in row.index:
        lines.append(
            f":red[label was flipped (true label {escape_md(row['true'])})]"
            if row["noisy"]
            else ":green[label was not flipped]"
        )
    return "  \n".join(lines)


def show_suspects(view: RunView, page: pd.DataFrame, detector: str, latest: pd.DataFrame) -> None:
    names = view.label_names
    current = latest.set_index("id")
    labels = view.table["label"].to_numpy()  # (N,) given labels, by row
    images = texts = None
    if view.modality == "image":
        images = suspects.load_images(view, page["row"].to_numpy(), size=THUMB_PX)
    else:
        texts = suspects.load_texts(view, page["id"].to_numpy())
    if images is None and texts is None:
        st.info(
            "This run has no rendered examples (it was scored before Winnow kept them); "
            "score the dataset again from Home to see them next to their labels."
        )
    for i, (_, row) in enumerate(page.iterrows()):
        decision = current.loc[row["id"]] if row["id"] in current.index else None
        with st.container(border=True):
            if images is not None:
                thumb, info, act = st.columns([1, 3, 4])
                thumb.image(images[i], width=THUMB_PX)
            else:
                info, act = st.columns([4, 4])
            with info:
                st.markdown(suspect_text(row, detector))
                if texts is not None:
                    text = texts.iloc[i]
                    st.markdown(
                        "  \n".join(
                            f"*{escape_md(c)}:* {escape_md(text[c])}"
                            for c in texts.columns
                            if c != "id"
                        )
                    )
            with act:
                controls(str(view.path), row, int(labels[row["row"]]), decision, names)


def noise_section(view: RunView, detector: str, ranked: pd.DataFrame) -> None:
    n_noisy = int(view.table["noisy"].sum())
    fraction = view.summary.get("noise", {}).get("fraction")
    st.subheader("Which detector finds the injected noise")
    share = f" ({fraction:.0%} injected)" if fraction is not None else ""
    st.caption(
        f"{n_noisy:,} of {len(view.table):,} labels were flipped{share}. precision@k: share "
        "of the k most suspect examples that were flipped; recall@k: share of all flipped "
        "labels found in the top k; AUROC: 1.0 ranks every flipped label first, 0.5 is chance."
    )
    table = suspects.noise_table(view)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=35 * (len(table) + 1) + 3,  # every score visible without scrolling
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns[1:]},
    )
    found = int(ranked["noisy"].sum())
    st.caption(f"{found} of the top {len(ranked)} suspects by `{detector}` were actually flipped.")


def render(view: RunView) -> None:
    keys = view.score_keys
    if not keys:
        st.info("This run holds no scores. Score the dataset again from Home.")
        return
    state = ui()
    if state.choices.get("detector") not in keys:
        state.choices["detector"] = suspects.default_detector(view)
    detector = pick("Detector", keys, key="detector")
    direction = "higher" if view.higher_is_harder(detector) else "lower"
    default = suspects.default_detector(view)
    tuned = view.has_noise and view.summary["scores"][default].get("noise_auroc") is not None
    st.caption(
        f"Most suspect first ({direction} `{detector}` = more suspect). "
        f"Default detector: {suspects.default_reason(view)}"
        + (
            " This choice is optimistic: the detector was picked by its AUROC on this very "
            "injected noise, so its figures below overstate how well it would do on noise "
            "it was not chosen on."
            if tuned
            else ""
        )
    )
    n = len(view.table)
    most = min(n, MAX_SUSPECTS)
    if most > PER_PAGE:
        top = st.slider("Suspects to review", PER_PAGE, most, min(50, most), key="mislabeled_top")
    else:
        top = most
    ranked = suspects.rank_suspects(view, detector, top)
    latest = decisions.latest(view.path)  # read once per render, after any callback wrote
    saved = len(latest)
    file = decisions.path_of(view.path).name
    st.markdown(f"**{saved} decision{'' if saved == 1 else 's'} saved to {file}**")
    if view.has_noise:
        noise_section(view, detector, ranked)
    pages = math.ceil(len(ranked) / PER_PAGE)
    st.subheader(f"Top {len(ranked)} suspects by `{detector}`")
    page = st.selectbox(
        "Suspects shown",
        range(pages),
        format_func=lambda p: f"{p * PER_PAGE + 1}–{min((p + 1) * PER_PAGE, len(ranked))}",
        key=f"mislabeled_page_{detector}_{pages}",  # a new detector or length starts at page 1
    )
    show_suspects(view, ranked.iloc[page * PER_PAGE : (page + 1) * PER_PAGE], detector, latest)
    if not latest.empty:
        with st.expander(f"All {len(latest)} saved decisions"):
            names = view.label_names
            latest = latest.assign(
                new_label=[names[int(v)] if not pd.isna(v) else "" for v in latest["new_label"]]
            )
            st.dataframe(latest, hide_index=True, width="stretch")


run = page_header("Mislabeled")
try:
    render(run)
except InputError as err:
    st.warning(escape_md(err))
