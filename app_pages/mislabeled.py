"""Mislabeled: suspects ranked by the detector's own out-of-sample evidence, decided in a click.

Each card shows what the detector saw (`scoring.read.suspects.suspects`): p of the given label,
the label the out-of-sample probabilities suggest and its probability, why the example is
suspect, and a `heldout` badge for held-out rows. Decisions (one click each, or a bulk accept)
are appended to the run's `decisions.jsonl` at once (`app_pages._review`); a bulk action is
recorded with its id there, so any past one can be undone in a later session.
Suspects are shown a page at a time to keep the number of widgets per render small.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app_pages._filters import active_filters, filter_controls
from app_pages._labelling import labelling_section
from app_pages._review import (
    THUMB_PX,
    current_decision,
    decision_buttons,
    evaluation_mode,
    evidence,
    evidence_line,
    in_evaluation,
    label_index,
    load_images,
    load_texts,
    text_fields,
)
from app_pages._shared import escape_md, noun, page_header, pick, remembered, ui
from scoring.errors import InputError
from scoring.read import annotators, decisions, suspects
from scoring.read.views import RunView, no_examples_reason

PER_PAGE = 10  # about 6 widgets per suspect: 60 per render stays responsive
MAX_SUSPECTS = 500
DEFAULT_CAP = 200  # the list starts at the flagged count, at most this long
SPLITS = {"all": "training and held-out", "train": "training rows", "heldout": "held-out rows"}
# The rows radio above already picks the split; Hide reviewed stays beside "decided".
FILTERS = ("search", "classes", "flagged", "decided", "pair")  # pair: overlapping classes


def suspect_text(
    row: pd.Series, names: list[str], votes: str | None = None, truth: bool = False
) -> str:
    """The card's evidence: labels and probabilities, why it is suspect, the annotators'
    vote split and consensus (`votes`, runs with several annotators), and with `truth`
    (evaluation mode only) whether the injected noise flipped the label."""
    lines = [evidence_line(row, names)]
    if votes:
        lines.append(f":orange[{escape_md(votes)}]")
    why = row.get("why")
    if isinstance(why, str) and why:
        lines.append(escape_md(why))
    if truth and "noisy" in row.index and not pd.isna(row["noisy"]):
        lines.append(
            f":red[label was flipped (true label {escape_md(row['true'])})]"
            if row["noisy"]
            else ":green[label was not flipped]"
        )
    return "  \n".join(lines)


def show_suspects(
    view: RunView, page: pd.DataFrame, latest: pd.DataFrame, truth: bool = False
) -> None:
    """One card per suspect of `page`; `truth` (evaluation mode) adds the noise check."""
    names = view.label_names
    ids = [int(i) for i in page["id"]]
    images = texts = None
    if view.modality == "image":
        images = load_images(view, ids)
        if all(im is None for im in images):
            images = None
    else:
        texts = load_texts(view, ids)
    if images is None and texts is None:
        st.info(f"{no_examples_reason(view)}.")
    votes = annotators.vote_lines(view, ids, list(page["split"]))  # {} without annotators
    for i, (_, row) in enumerate(page.iterrows()):
        example = int(row["id"])
        with st.container(border=True):
            if images is not None:
                thumb, info, act = st.columns([1, 3, 4])
                if images[i] is not None:
                    thumb.image(images[i], width=THUMB_PX)
                else:
                    thumb.caption("no stored image")
            else:
                info, act = st.columns([4, 4])
            with info:
                st.markdown(suspect_text(row, names, votes.get(example), truth))
                if texts is not None:
                    st.markdown(text_fields(texts.iloc[i]))
            with act:
                given = label_index(row["label"], names)
                decision_buttons(
                    str(view.path),
                    example,
                    -1 if given is None else given,
                    label_index(row["suggested_label"], names),
                    current_decision(latest, example),
                    names,
                )


def model_check(view: RunView) -> int:
    """The flagged count, the scoring models' held-out accuracy, and a plain warning when the
    flags are more likely the model's errors than label errors; returns the flagged count."""
    n_flagged = suspects.flagged_count(view)
    held = suspects.heldout_rows(view)
    n_train, n_held = len(view.table), 0 if held is None else len(held)
    total = n_train + n_held
    accuracy = suspects.heldout_accuracy(view)
    acc = "" if accuracy is None else f" · the scoring models' held-out accuracy **{accuracy:.2f}**"
    # Say which rows the count covers: Pruning and Export count training rows only.
    covers = f"{n_train:,} training {noun(n_train, 'row')}"
    if n_held:
        covers = (
            f"{suspects.flagged_count(view, 'train'):,} of the {covers} and "
            f"{suspects.flagged_count(view, 'heldout'):,} of the {n_held:,} held-out "
            f"{noun(n_held, 'row')}"
        )
    st.markdown(
        f"**cleanlab flags {n_flagged:,}** of {total:,} examples "
        f"({n_flagged / max(total, 1):.1%}: {covers}){acc}"
    )
    message = suspects.model_errors_warning(view, app=True)
    if message:
        st.warning(
            f"Flags are likely model errors rather than label errors: {escape_md(message)}",
            icon=":material/warning:",
        )
    return n_flagged


def annotators_section(view: RunView) -> None:
    """Several annotators: each one's examples labelled, CROWDLAB quality and agreement."""
    table = annotators.annotator_table(view)
    if table is None:
        return
    st.subheader("Annotators")
    st.dataframe(
        table.rename(columns=annotators.ANNOTATOR_COLUMNS),
        hide_index=True,
        column_config={
            annotators.ANNOTATOR_COLUMNS[c]: st.column_config.NumberColumn(format="%.3f")
            for c in ("quality", "agreement")
        },
    )
    st.caption(
        "Quality: CROWDLAB's estimate (cleanlab) of how often the annotator is right, from "
        "their agreement with the other annotators and with the out-of-fold model; "
        "agreement: share of their votes equal to the consensus label. Each card below shows "
        "the vote split and the consensus."
    )


def bulk_section(view: RunView, ev: pd.DataFrame, latest: pd.DataFrame) -> None:
    """Accept the suggestion for every undecided flagged suspect above a threshold no lower
    than `suspects.safe_threshold` (estimated precision ≥ 90%), after a confirmation; undo
    any past bulk action of the run, from the decisions file (so in any later session)."""
    run = str(view.path)
    with st.container(border=True):
        st.markdown("**Accept the suggestion in bulk**")
        safe = suspects.safe_threshold(view)
        if safe is None:
            st.button(
                "Relabel to their suggestion",
                key="mislabeled_bulk_go",
                icon=":material/done_all:",
                disabled=True,
            )
            st.caption(_unsafe_reason())
        else:
            _bulk_accept(view, ev, latest, safe)
        _undo_bulk(run)


def _unsafe_reason() -> str:
    return (
        "Bulk relabelling is off for this run: at no confidence threshold do the scoring "
        f"models reach {suspects.MIN_PRECISION:.0%} accuracy on at least "
        f"{suspects.MIN_HELDOUT_ROWS} held-out rows, so relabelling to their suggestions could "
        "break as many labels as it fixes (or there are too few held-out rows to tell). "
        "Decide example by example below, or score with a stronger model."
    )


def _bulk_accept(view: RunView, ev: pd.DataFrame, latest: pd.DataFrame, safe: float) -> None:
    """The threshold slider (from `safe` up), the estimate, and the two-step relabel."""
    run = str(view.path)
    choices = ui().choices
    start = min(max(float(choices.get("mislabeled_bulk_t", safe)), safe), 1.0)
    t = st.slider(
        "for every flagged suspect with p(suggested) ≥",
        min_value=safe,
        max_value=1.0,
        value=start,
        step=0.01,
        key=f"mislabeled_bulk_t_{safe:.2f}",  # a new safe floor is a new slider
        help="Starts at the lowest threshold whose estimated precision is at least "
        f"{suspects.MIN_PRECISION:.0%}; it cannot go lower.",
    )
    choices["mislabeled_bulk_t"] = t
    chosen, suggested = _bulk_candidates(ev, latest, view.label_names, t)
    precision, n_held = suspects.relabel_precision(view, t)
    precision = 1.0 if precision is None else precision  # no held-out row this confident
    breaks = len(chosen) * (1 - precision)
    st.caption(
        f"{len(chosen):,} flagged suspect(s) without a decision would be relabelled to "
        "their suggested label (decided ones are left as they are). Estimated precision "
        f"**{precision:.0%}** (the models' accuracy on {n_held:,} held-out rows at this "
        f"confidence): about **{breaks:.1f}** correct label(s) would be broken."
    )
    pending_key = f"mislabeled_bulk_pending:{run}"
    if st.button(
        f"Relabel {len(chosen):,} to their suggestion",
        key="mislabeled_bulk_go",
        icon=":material/done_all:",
        disabled=chosen.empty,
    ):
        relabels = {int(i): int(s) for i, s in zip(chosen["id"], suggested, strict=True)}
        choices[pending_key] = {"relabels": relabels, "breaks": breaks}
    pending = choices.get(pending_key)
    if isinstance(pending, dict) and pending.get("relabels"):
        _confirm_bulk(run, pending["relabels"], pending_key, pending["breaks"])


def _confirm_bulk(run: str, pending: dict[int, int], pending_key: str, breaks: float) -> None:
    """The second step: write `pending` (id -> new label) only when confirmed."""
    st.warning(
        f"Relabel {len(pending):,} example(s) to their suggestion? About {breaks:.1f} of them "
        "are estimated to be correct labels that this would break."
    )
    yes, no = st.columns(2)
    if yes.button(f"Confirm: relabel {len(pending):,}", key="mislabeled_bulk_confirm"):
        rows = [(int(i), "relabel", int(s)) for i, s in pending.items()]
        try:  # one bulk action, checked whole and written in one go: it can be undone as one
            records = decisions.checked(run, rows)
            decisions.append_bulk(run, records, "mislabeled-accept", evaluation=in_evaluation(run))
        except (InputError, OSError) as err:
            st.toast(f"Nothing relabelled: {escape_md(err)}", icon=":material/error:")
        else:
            st.toast(f"Relabelled {len(records):,}; undo it below", icon=":material/check:")
        ui().choices.pop(pending_key, None)
        st.rerun()
    if no.button("Cancel", key="mislabeled_bulk_cancel"):
        ui().choices.pop(pending_key, None)
        st.rerun()


def _bulk_candidates(
    ev: pd.DataFrame, latest: pd.DataFrame, names: list[str], t: float
) -> tuple[pd.DataFrame, pd.Series]:
    """The undecided flagged rows of `ev` with out-of-sample evidence whose suggestion differs
    from their label with p(suggested) ≥ t (`suspects.relabel_candidates`' rows), and the
    index of each one's suggested label."""
    given = ev["label"].map(lambda v: label_index(v, names))
    suggested = ev["suggested_label"].map(lambda v: label_index(v, names))
    decided = ev["id"].isin(latest["id"])
    pick_mask = (
        ev["flagged"].astype(bool)
        & ev["evidence"].isin(["out-of-fold", "held-out"])
        & (ev["suggested_prob"] >= t)
        & suggested.notna()
        & (suggested != given)
        & ~decided
    )
    return ev[pick_mask], suggested[pick_mask]


def _undo_bulk(run: str) -> None:
    """Offer to undo any bulk action of the run that still has decisions in force, newest
    first, read from the decisions file: it survives reloads and new sessions."""
    try:
        actions = decisions.bulk_actions(run)
    except OSError as err:
        st.caption(f"Past bulk actions could not be read: {escape_md(err)}")
        return
    offer = actions[actions["in_force"] > 0].iloc[::-1]
    if offer.empty:
        return
    rows = offer.set_index("bulk")
    # A new set of offers is a new widget: a stale choice never points at a gone action.
    key = f"mislabeled_bulk_pick_{len(rows)}_{rows.index[0]}"
    st.selectbox(
        "Undo a bulk action",
        rows.index.tolist(),
        format_func=lambda b: _bulk_label(rows.loc[b]),
        key=key,
        help="Each example it decided that you have not decided again since gets back the "
        "decision it had before (none, for a bulk accept); later decisions stay.",
    )
    st.button(
        "Undo",
        key="mislabeled_bulk_undo",
        icon=":material/undo:",
        on_click=_undo_picked,  # before the rerun's script: the page reads the file after it
        args=(run, key),
    )


def _undo_picked(run: str, key: str) -> None:
    """The Undo button's callback: undo the bulk action the select shows, say so in a toast."""
    bulk = st.session_state.get(key)
    try:
        n = decisions.undo_bulk(run, str(bulk))
    except (InputError, OSError) as err:
        st.toast(f"Not undone: {escape_md(err)}", icon=":material/error:")
        return
    st.toast(f"Bulk action undone: {n:,} decision(s) withdrawn", icon=":material/undo:")


def _bulk_label(action: pd.Series) -> str:
    """One bulk action in words: when, what made it, what it did, how much is still in force."""
    when = str(action["time"]).replace("T", " ").replace("+00:00", " UTC")
    kind = decisions.BULK_KINDS.get(action["kind"], action["kind"])
    return (
        f"{when} · {kind} · {action['actions']} "
        f"({action['in_force']:,} of {action['decisions']:,} still in force)"
    )


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
    found = int(ranked["noisy"].fillna(False).astype(bool).sum())
    st.caption(f"{found} of the top {len(ranked)} suspects by `{detector}` were actually flipped.")
    versus = suspects.consensus_comparison(view)
    if versus is not None:
        kind = (view.config.get("config", {}).get("noise") or {}).get("kind", "uniform")
        st.markdown(f"**Consensus against the single scores** ({kind} noise)")
        st.dataframe(
            versus.drop(columns="score"),
            hide_index=True,
            column_config={
                c: st.column_config.NumberColumn(format="%.3f") for c in versus.columns[2:]
            },
        )
        st.caption(
            "`consensus` never sees which labels were flipped; the best single score was "
            "picked here by its AUROC on them, which a user with real data cannot do."
        )


def render(view: RunView) -> None:
    """The page below its header: detector, counts, bulk accept, then the suspects."""
    if not view.score_keys:
        st.info("This run holds no scores. Score the dataset again from Home.")
        return
    detector, split = _detector_controls(view)
    truth = evaluation_mode(view)  # before any button: its callbacks read the toggle
    ev = evidence(view, detector)  # every row, most suspect first
    n_flagged = model_check(view)
    latest = decisions.latest(view.path)  # read once per render, after any callback wrote
    saved = len(latest)
    file = decisions.path_of(view.path).name
    st.markdown(f"**{saved} decision{'' if saved == 1 else 's'} saved to {file}**")
    annotators_section(view)
    bulk_section(view, ev, latest)

    ranked = _ranked_suspects(view, ev, split, latest, n_flagged)
    if ranked is None:
        return
    if truth:
        noise_section(view, detector, ranked)
    elif view.has_noise:
        st.caption(
            "This run's labels were flipped on purpose. The cards do not say which: turn on "
            "**Evaluation mode** to see them and how each detector finds them (decisions "
            "saved meanwhile are marked, and sweeps refuse them unless asked)."
        )
    pages = math.ceil(len(ranked) / PER_PAGE)
    st.subheader(f"Top {len(ranked)} suspects by `{detector}`")
    labelling_section(view, ranked, "mislabeled")  # the listed suspects, to Label Studio
    page = st.selectbox(
        "Suspects shown",
        range(pages),
        format_func=lambda p: f"{p * PER_PAGE + 1}–{min((p + 1) * PER_PAGE, len(ranked))}",
        key=f"mislabeled_page_{detector}_{pages}",  # a new detector or length starts at page 1
    )
    show_suspects(view, ranked.iloc[page * PER_PAGE : (page + 1) * PER_PAGE], latest, truth)
    if not latest.empty:
        with st.expander(f"All {len(latest)} saved decisions"):
            names = view.label_names
            latest = latest.assign(
                new_label=[names[int(v)] if not pd.isna(v) else "" for v in latest["new_label"]]
            )
            st.dataframe(latest, hide_index=True, width="stretch")


def _detector_controls(view: RunView) -> tuple[str, str]:
    """The detector and the rows to rank, with how to read the ranking: (detector, split)."""
    keys = view.score_keys
    state = ui()
    if state.choices.get("detector") not in keys:
        state.choices["detector"] = suspects.default_detector(view)
    left, right = st.columns(2)
    with left:
        detector = pick("Detector", keys, key="detector")
    with right:
        split = pick(
            "Rows",
            list(SPLITS),
            key="mislabeled_split",
            format_func=SPLITS.get,
            widget=st.radio,
            horizontal=True,
        )
    direction = "higher" if view.higher_is_harder(detector) else "lower"
    st.caption(
        f"Most suspect first ({direction} `{detector}` = more suspect; held-out rows are ranked "
        "by their own out-of-sample evidence). "
        f"Default detector: {suspects.default_reason(view)}"
    )
    return detector, split


def _ranked_suspects(
    view: RunView, ev: pd.DataFrame, split: str, latest: pd.DataFrame, n_flagged: int
) -> pd.DataFrame | None:
    """The suspects to review, most suspect first; None (said on the page) when none is left.

    The rows radio and Hide reviewed come first, then the search box and the class / flagged
    / decided filters (`_filters`), and only then the cut to the top k: a search finds its
    matches however far down the ranking they are."""
    pool = ev if split == "all" else ev[ev["split"] == split]
    hide = remembered(st.checkbox, "Hide reviewed", "mislabeled_hide", False, key="mislabeled_hide")
    if hide:
        pool = pool[~pool["id"].isin(latest["id"])]
    if pool.empty:
        st.info("Every suspect here has a decision. Untick **Hide reviewed** to see them.")
        return None
    mask = filter_controls(view, pool, latest, key="mislabeled", controls=FILTERS)
    pool = pool[mask.to_numpy()]
    most = min(len(pool), MAX_SUSPECTS)
    if most == 0:
        st.info("No suspect matches the search and filters above.")
        return None
    # Unfiltered, the list starts at the flagged count; a search or filter asks for its
    # matches, so the list then starts with all of them (its own slider, its own memory).
    filtered = active_filters("mislabeled").active
    if most > PER_PAGE:
        top = st.slider(
            "Suspects to review",
            1,
            most,
            min(most, DEFAULT_CAP) if filtered else min(max(n_flagged, 1), DEFAULT_CAP, most),
            key="mislabeled_top_filtered" if filtered else "mislabeled_top",
            help="Starts at the number cleanlab flags (at most 200); with a search or a "
            "filter, at every match (at most 200).",
        )
    else:
        top = most
    return pool.head(top).reset_index(drop=True)


run = page_header("Mislabeled")
try:
    render(run)
except InputError as err:
    st.warning(escape_md(err))
