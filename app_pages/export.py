"""Export: write the cleaned dataset, or the examples a selection keeps, with a manifest.

The page starts on the cleaned dataset: rule `all` (every row of the scored source, training
and held-out) with the run's decisions, if any, applied (drops left out, relabels written with
`original_label`), and a visible switch to write it without them. Writing a subset is a
deliberate choice, never the default: the other choice is the selection set on the Pruning
page: both pages draw the same widgets (`app_pages._selection`) over the same remembered
choices, so what was previewed and retrained on is what gets written. The summary comes
from the one selection planner (`scoring.prune.plan`: decisions first, then the rule) that
the export writer calls too, so its counts are the ones the manifest will hold. **Drop
duplicates first** / **Drop leaked rows first** (`_selection.pre_step_switches`, shared with
Pruning) apply to either choice and are recorded in the manifest's `pre_steps`. Writing runs
in this process: `scoring.prune.export` is I/O + pandas + `datasets`, no torch, and takes
seconds even on large runs.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app_pages._selection import (
    Selection,
    pre_step_switches,
    scored_page_header,
    selection_controls,
    warn_lost_classes,
)
from app_pages._shared import code_md, escape_md, noun, pick, read_decisions, remembered, ui
from scoring import store
from scoring.errors import InputError
from scoring.prune.export import (
    FORMATS,
    export_selection,
    manifest_path,
    resolve_out,
    rows_blocker,
)
from scoring.prune.plan import SelectionPlan, plan_selection, source_labels
from scoring.prune.rules import PARAMETERS, RULES
from scoring.prune.select import SelectionConfig
from scoring.read import suspects
from scoring.read.annotators import has_annotators
from scoring.read.views import RunView

FORMAT_NAMES = {
    "parquet": "Parquet",
    "csv": "CSV",
    "jsonl": "JSONL",
    "hf": "HF datasets folder (save_to_disk)",
}
EXTENSIONS = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl", "hf": ""}
MIME = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "jsonl": "application/jsonl",
}
LOADERS = {
    "parquet": 'datasets.load_dataset("parquet", data_files={path!r}, split="train")',
    "csv": 'datasets.load_dataset("csv", data_files={path!r}, split="train")',
    "jsonl": 'datasets.load_dataset("json", data_files={path!r}, split="train")',
    "hf": "datasets.load_from_disk({path!r})",
}
# The engine's refusals speak CLI; on this page the same switches are widgets.
CLI_WORDS = {
    "pass --force to overwrite it": "tick **Overwrite an existing export** to replace it",
    "even with --force": "even with Overwrite",
    "without --apply-decisions": "without applying the decisions",
}


MODES = {
    "cleaned": "The cleaned dataset: every row, your decisions applied",
    "selection": "A pruning selection (the Pruning page's rule)",
}
CLEANED = SelectionConfig(rule="all", fraction=1.0)
UNBALANCED = 0.5  # warn when a class keeps under this share of the overall fraction


def _plan(run: RunView, selection: Selection) -> SelectionPlan:
    """What an export of the selection will hold (the planner the writer calls)."""
    assert selection.config is not None  # the caller shows the refusal otherwise
    made = read_decisions(run) if selection.use_decisions else None
    return plan_selection(run, selection.config, made)


def _mode(run: RunView) -> str:
    """Cleaned dataset or pruning selection: the user's choice for this run, else cleaned.

    Never the Pruning page's selection by default, decisions or not: its default rule keeps
    half the rows, and an export that silently loses half the data is the worst surprise.
    """
    choices = ui().choices
    remembered_key = f"export_mode:{run.path}"
    options = list(MODES)
    start = choices.get(remembered_key) or "cleaned"

    def chosen() -> None:  # only a user's change is remembered, never the default
        choices[remembered_key] = st.session_state["export_mode"]

    mode = st.radio(
        "What to write",
        options,
        index=options.index(start),
        format_func=MODES.get,
        key="export_mode",
        on_change=chosen,
    )
    return str(mode)


def _decisions_switch(made: pd.DataFrame) -> bool:
    """The visible switch that applies the run's decisions (on by default when there are any)."""
    n = len(made)
    drops = int((made["action"] == "drop").sum()) if n else 0
    relabels = int((made["action"] == "relabel").sum()) if n else 0
    keeps = n - drops - relabels
    label = (
        f"Apply my decisions ({drops:,} {noun(drops, 'drop')}, "
        f"{relabels:,} {noun(relabels, 'relabel')}, {keeps:,} {noun(keeps, 'keep')})"
        if n
        else "Apply my decisions (none made yet: review suspects on **Mislabeled**)"
    )
    on = remembered(
        st.toggle,
        label,
        "export_apply_decisions",
        True,
        key="export_decisions",
        disabled=n == 0,
        help="Leave out the examples marked Drop and write relabelled ones with their new "
        "label (the old one goes to an `original_label` column), before any rule selects.",
    )
    return bool(on) and n > 0


def _consensus_switch(run: RunView) -> bool:
    """Several annotators: write CROWDLAB's consensus label instead of the given one."""
    if not has_annotators(run) or "consensus_label" not in run.table.columns:
        return False
    on = remembered(
        st.toggle,
        "Write the consensus label",
        "export_consensus_label",
        False,
        key="export_consensus",
        help="The label column gets CROWDLAB's consensus of the annotators and the "
        "out-of-fold model on the training rows (your relabels still win); the given label "
        "goes to an `original_label` column and the annotators' votes are kept.",
    )
    return bool(on)


def _make_balanced() -> None:
    """Button callback: turn Class-balanced on (the widget re-reads the shared choice)."""
    ui().choices["prune_balanced"] = True
    st.session_state.pop("export_balanced", None)


def warn_unbalanced(run: RunView, plan: SelectionPlan) -> None:
    """Warn, with a one-click fix, when a class keeps under half the overall fraction."""
    labels, kept = plan.final_labels, plan.kept
    if kept.all() or not kept.any():
        return
    overall = kept.mean()
    names = run.label_names
    low = []
    for c in np.unique(labels):
        share = kept[labels == c].mean()
        if share < UNBALANCED * overall:
            low.append(f"{escape_md(names[int(c)])} ({share:.0%})")
    if not low:
        return
    st.warning(
        f"This selection keeps {overall:.0%} overall but under half that of "
        f"{len(low)} class(es): {', '.join(low)}. A model trained on it sees those classes "
        "far less often than the source does.",
        icon=":material/balance:",
    )
    st.button(
        "Keep the fraction within each class (class-balanced)",
        key="export_make_balanced",
        icon=":material/balance:",
        on_click=_make_balanced,
    )


def _describe(sel: SelectionConfig, n_all: int, plan: SelectionPlan, use_decisions: bool) -> str:
    """One line of markdown naming the selection and what it writes."""
    if sel.rule == CLEANED.rule:
        text = (
            f"**The cleaned dataset**: writes **{plan.n_written:,}** of {n_all:,} examples "
            f"({plan.n_kept:,} training, {plan.n_heldout:,} held-out)"
        )
        if use_decisions:
            text += (
                f"; your decisions drop {plan.n_dropped_all:,} and relabel "
                f"{plan.n_relabelled:,} (the old label is kept in `original_label`)"
            )
        else:
            text += " (decisions not applied: every row with its source label)"
        return text + _pre_steps_text(sel, plan) + "."
    rule = RULES[sel.rule]
    what = f"**{rule.label}**"
    if rule.ranks:
        norm = "" if sel.normalization == "none" else f", {sel.normalization} z-scores"
        what += f" by **{sel.score}**{norm}"
    what += f", fraction **{sel.fraction:g}**"
    if sel.class_balanced:
        what += " of each class"
    for name in PARAMETERS:
        if name in rule.uses and name not in ("score", "normalization"):
            what += f", {name} {getattr(sel, name):.3g}"
    if rule.seeded:
        what += f", seed {sel.seed}"
    # A pruning rule ranks and writes training rows only: say so (Mislabeled's counts also
    # cover the held-out rows).
    rows = "examples" if plan.n_heldout else f"training {noun(n_all, 'row')}"
    text = f"{what}: writes **{plan.n_kept:,}** of {n_all:,} {rows}"
    if use_decisions:
        text += (
            f" (your decisions dropped {plan.n_dropped:,} before selecting; "
            f"{plan.n_relabelled:,} written relabelled)"
        )
    return text + _pre_steps_text(sel, plan) + "."


def _pre_steps_text(sel: SelectionConfig, plan: SelectionPlan) -> str:
    """What dropping leaks and duplicates took out before the rule ("" when neither is on)."""
    parts = []
    if sel.drop_leaks:
        n = plan.n_leaks_dropped
        parts.append(f"**{n:,}** leaked training {noun(n, 'row')}")
    if sel.drop_duplicates or RULES[sel.rule].dedups:
        n = plan.n_duplicates_dropped
        parts.append(f"**{n:,}** {noun(n, 'duplicate')} (one row per group kept)")
    return f"; left out first: {' and '.join(parts)}" if parts else ""


def _show_summary(run: RunView, selection: Selection) -> SelectionPlan | None:
    """The selection in words and per class; None (with a warning) when it cannot be written."""
    if selection.refusal:
        st.warning(escape_md(selection.refusal), icon=":material/warning:")
        return None
    try:
        plan = _plan(run, selection)
    except InputError as err:
        st.warning(escape_md(err), icon=":material/warning:")
        return None
    assert selection.config is not None  # planned -> a checked selection
    # Every row the plan saw: in play, dropped, held out by the caller, and (rule `all`)
    # the carved held-out rows written or dropped.
    n_all = (
        plan.rows.shape[0]
        + plan.n_dropped
        + plan.n_excluded
        + plan.n_heldout
        + plan.n_heldout_dropped
    )
    st.markdown(_describe(selection.config, n_all, plan, selection.use_decisions))
    warn_lost_classes(run, plan.final_labels, plan.kept)
    if selection.config.rule != CLEANED.rule:
        warn_unbalanced(run, plan)
    names = run.label_names
    written = plan.written_per_class(len(names))  # (K,)
    source = source_labels(run)  # (N,)
    if plan.n_heldout or plan.n_heldout_dropped:  # rule `all`: the carved held-out rows too
        held = suspects.heldout_rows(run)
        if held is not None:
            source = np.concatenate([source, held["label"].to_numpy(np.int64)])
    totals = np.bincount(source, minlength=len(names))[: len(names)]  # (K,)
    st.dataframe(
        pd.DataFrame(
            {
                "class": names,
                "written": written,
                "in the run": totals,
                "share": np.divide(written, np.maximum(totals, 1)),
            }
        ),
        hide_index=True,
        width="stretch",
        height=min(36 * (len(names) + 1) + 2, 320),
        column_config={"share": st.column_config.ProgressColumn("share", format="percent")},
    )
    if run.has_noise:
        st.caption(
            "Counts use the source's own labels: the labels this run's noise check permuted "
            "are not part of the data and are not exported."
        )
    return plan


# --- writing ---------------------------------------------------------------------------------


def _slug(text: str) -> str:
    """A file-name-safe short form of a dataset description ("cifar10/train.parquet" -> ...)."""
    text = re.sub(r"\.(parquet|csv|tsv|jsonl|json)$", "", text.removeprefix("hf:"))
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-.") or "data"


def _default_out(run: RunView, fmt: str, cleaned: bool = False) -> str:
    """exports/<dataset>-<rule>-<fraction><ext> from the remembered selection, or
    exports/<dataset>-cleaned<ext>."""
    choices = ui().choices
    rule = str(choices.get("prune_rule", "hardest"))
    fraction = round(float(choices.get("prune_fraction", 0.5)), 2)
    slug = _slug(run.dataset_name)  # an upload's own file name, not its content hash
    name = f"{slug}-cleaned" if cleaned else f"{slug}-{rule}-{fraction:g}"
    return f"exports/{name}{EXTENSIONS[fmt]}"


def _output_controls(run: RunView, cleaned: bool = False) -> tuple[str, str, str, bool]:
    """Format, export folder, path inside it, overwrite."""
    choices = ui().choices
    c1, c2 = st.columns([1, 2])
    with c1:
        fmt = pick(
            "Format",
            list(FORMATS),
            "export_format",
            widget_key="export_format",
            format_func=FORMAT_NAMES.get,
        )
    with c2:
        folder = remembered(
            st.text_input,
            "Export folder",
            "export_folder",
            str(Path.cwd()),
            key="export_folder",
            help="The export is written inside this folder and never outside it.",
        )
    # The path follows the selection and format until the user types their own.
    default = _default_out(run, fmt, cleaned)
    shown = st.session_state.get("export_out", choices.get("export_out"))
    if shown is None or shown == choices.get("export_out_default"):
        st.session_state["export_out"] = default
    elif "export_out" not in st.session_state:  # back from another page: the typed path
        st.session_state["export_out"] = shown
    choices["export_out_default"] = default
    out = st.text_input(
        "Path inside the folder" + (" (a folder)" if fmt == "hf" else ""),
        key="export_out",
        help="Relative to the export folder; `..` is refused.",
    )
    choices["export_out"] = out
    force = st.checkbox(
        "Overwrite an existing export",
        key="export_force",
        help="Replace a file (or a dataset folder) an earlier export wrote at this path.",
    )
    st.caption(FORMATS[fmt][0].upper() + FORMATS[fmt][1:] + ", with a manifest beside it.")
    return fmt, str(folder), str(out), bool(force)


def _plain(message: str) -> str:
    for cli, words in CLI_WORDS.items():
        message = message.replace(cli, words)
    return message


def _target(folder: str, out: str) -> Path | None:
    """Where the export would go, or None after a warning saying why it cannot."""
    if not folder.strip():
        st.warning("Name the export folder (for example the current one, `.`).")
        return None
    try:
        return resolve_out(out.strip(), base=Path(folder.strip()))
    except InputError as err:
        st.warning(escape_md(_plain(str(err))), icon=":material/warning:")
        return None


def _export(
    run: RunView,
    sel: SelectionConfig,
    use_decisions: bool,
    plan: SelectionPlan,
    *,
    fmt: str,
    folder: str,
    out: str,
    force: bool,
    consensus: bool = False,
) -> None:
    try:
        with st.spinner(f"Writing {plan.n_written:,} {noun(plan.n_written, 'example')}…"):
            path = export_selection(
                run.path,
                sel,
                fmt=fmt,
                out=out.strip(),
                apply_decisions=use_decisions,
                force=force,
                base=Path(folder.strip()),
                consensus_label=consensus,
            )
    except InputError as err:
        st.warning(escape_md(_plain(str(err))), icon=":material/warning:")
        return
    except OSError as err:  # a folder that is not writable, a full disk, ...
        st.error(
            f"Could not write the export: {escape_md(err)}. Pick a folder you can write to.",
            icon=":material/error:",
        )
        return
    ui().choices["export_last"] = {"run": str(run.path), "path": str(path), "format": fmt}


def _show_last(run: RunView) -> None:
    """The last export of this run in this session: path, rows, counts, manifest, download."""
    last = ui().choices.get("export_last")
    if not isinstance(last, dict) or last.get("run") != str(run.path):
        return
    path, fmt = Path(last["path"]), last["format"]
    try:
        manifest = store.read_json(manifest_path(path, fmt))
    except (OSError, ValueError):
        st.info(f"The last export, {code_md(path)}, is no longer complete on disk; export again.")
        return
    st.subheader("Last export")
    st.success(
        f"Wrote **{manifest['rows']:,}** {noun(manifest['rows'], 'example')} to {code_md(path)}.",
        icon=":material/check_circle:",
    )
    left, right = st.columns([1, 2])
    with left:
        counts = manifest["counts_per_class"]
        st.dataframe(
            pd.DataFrame({"class": list(counts), "examples": list(counts.values())}),
            hide_index=True,
            width="stretch",
            height=min(36 * (len(counts) + 1) + 2, 320),
        )
    with right:
        st.code(f"import datasets\nds = {LOADERS[fmt].format(path=str(path))}", language="python")
        st.caption("Reproduce it from a terminal:")
        st.code(manifest["reproduce"], language="bash")
        if fmt in MIME:
            st.download_button(
                f"Download {escape_md(path.name)}",
                data=lambda: path.read_bytes(),  # read on click, not on every rerun
                file_name=path.name,
                mime=MIME[fmt],
                key="export_download",
                icon=":material/download:",
            )
    st.markdown(f"Manifest ({code_md(manifest_path(path, fmt).name)}):")
    st.json(manifest, expanded=1)


# --- page ------------------------------------------------------------------------------------

current = scored_page_header("Export", purpose="select by")
st.caption(
    "Write the cleaned dataset, or the examples a pruning selection keeps, with their ids, "
    "`split` (train / heldout), scores and a manifest that reproduces it, as a file or a "
    "`datasets` folder."
)
made_ = read_decisions(current)
mode_ = _mode(current)
apply_ = _decisions_switch(made_)
consensus_ = _consensus_switch(current)
pre_steps_ = pre_step_switches(current, prefix="export_")
st.header("What is written")
if mode_ == "cleaned":
    selection = Selection(dataclasses.replace(CLEANED, **pre_steps_), apply_, None, "")
    plan = _show_summary(current, selection)
else:
    summary = st.container()
    st.markdown(
        "This is the selection set on the **Pruning** page (sidebar), where you can preview "
        "it and retrain on it. Change it there or here: both pages share it."
    )
    with st.expander("Change the selection", icon=":material/tune:"):
        selection = selection_controls(
            current,
            prefix="export_",
            seed=True,
            decisions_help="",
            use_decisions=apply_,
            pre_steps=pre_steps_,
        )
    with summary:  # drawn above the controls, from their current values
        plan = _show_summary(current, selection)

st.header("Write")
fmt_, folder_, out_, force_ = _output_controls(current, cleaned=mode_ == "cleaned")
target = _target(folder_, out_)
if target is not None:
    st.caption(f"Writes {code_md(target)}.")
no_rows = rows_blocker(current.config)  # recorded or imported without a data source
if no_rows:
    st.info(escape_md(no_rows), icon=":material/info:")
if st.button(
    "Export",
    key="export_go",
    type="primary",
    disabled=plan is None or target is None or bool(no_rows),
    icon=":material/save:",
):
    assert selection.config is not None and plan is not None  # else the button is disabled
    _export(
        current,
        selection.config,
        selection.use_decisions,
        plan,
        fmt=fmt_,
        folder=folder_,
        out=out_,
        force=force_,
        consensus=consensus_,
    )
_show_last(current)
