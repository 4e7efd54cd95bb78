"""Export: write the examples the current selection keeps, with a manifest that reproduces it.

The selection is the one set on the Pruning page: both pages draw the same widgets
(`app_pages._selection`) over the same remembered choices, so what was previewed and retrained
on is what gets written. The summary comes from the one selection planner
(`scoring.prune.plan`: decisions first, then the rule) that the export writer calls too, so
its counts are the ones the manifest will hold. Writing runs in this process:
`scoring.prune.export` is I/O + pandas + `datasets`, no torch, and takes seconds even on
large runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app_pages._selection import (
    Selection,
    scored_page_header,
    selection_controls,
    warn_lost_classes,
)
from app_pages._shared import code_md, escape_md, pick, read_decisions, remembered, ui
from scoring import store
from scoring.errors import InputError
from scoring.prune.export import FORMATS, export_selection, manifest_path, resolve_out
from scoring.prune.plan import SelectionPlan, plan_selection, source_labels
from scoring.prune.rules import PARAMETERS, RULES
from scoring.prune.select import SelectionConfig
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


def _plan(run: RunView, selection: Selection) -> SelectionPlan:
    """What an export of the selection will hold (the planner the writer calls)."""
    assert selection.config is not None  # the caller shows the refusal otherwise
    made = read_decisions(run) if selection.use_decisions else None
    return plan_selection(run, selection.config, made)


def _describe(sel: SelectionConfig, n_all: int, plan: SelectionPlan, use_decisions: bool) -> str:
    """One line of markdown naming the selection and what it writes."""
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
    text = f"{what}: writes **{plan.n_kept:,}** of {n_all:,} examples"
    if use_decisions:
        text += (
            f" (your decisions dropped {plan.n_dropped:,} before selecting; "
            f"{plan.n_relabelled:,} written relabelled)"
        )
    return text + "."


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
    st.markdown(_describe(selection.config, len(run.table), plan, selection.use_decisions))
    warn_lost_classes(run, plan.final_labels, plan.kept)
    names = run.label_names
    written = plan.written_per_class(len(names))  # (K,)
    totals = np.bincount(source_labels(run), minlength=len(names))[: len(names)]  # (K,)
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


def _default_out(run: RunView, fmt: str) -> str:
    """exports/<dataset>-<rule>-<fraction><ext>, from the remembered selection."""
    choices = ui().choices
    rule = str(choices.get("prune_rule", "hardest"))
    fraction = round(float(choices.get("prune_fraction", 0.5)), 2)
    name = f"{_slug(run.config['dataset']['description'])}-{rule}-{fraction:g}"
    return f"exports/{name}{EXTENSIONS[fmt]}"


def _output_controls(run: RunView) -> tuple[str, str, str, bool]:
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
    default = _default_out(run, fmt)
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
) -> None:
    try:
        with st.spinner(f"Writing {plan.n_kept:,} examples…"):
            path = export_selection(
                run.path,
                sel,
                fmt=fmt,
                out=out.strip(),
                apply_decisions=use_decisions,
                force=force,
                base=Path(folder.strip()),
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
        f"Wrote **{manifest['rows']:,}** examples to {code_md(path)}.",
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
    "Write the examples the selection keeps, with their ids, scores and a manifest that "
    "reproduces the selection, as a file or a `datasets` folder."
)
st.header("Selection")
summary = st.container()
st.markdown(
    "This is the selection set on the **Pruning** page (sidebar), where you can preview it "
    "and retrain on it. Change it there or here: both pages share it."
)
with st.expander("Change the selection", icon=":material/tune:"):
    selection = selection_controls(
        current,
        prefix="export_",
        seed=True,
        decisions_help="Leave out the examples marked Drop and write relabeled ones with their "
        "new label (the old one goes to an `original_label` column), before the rule selects.",
    )
with summary:  # drawn above the controls, from their current values
    plan = _show_summary(current, selection)

st.header("Write")
fmt_, folder_, out_, force_ = _output_controls(current)
target = _target(folder_, out_)
if target is not None:
    st.caption(f"Writes {code_md(target)}.")
if st.button(
    "Export",
    key="export_go",
    type="primary",
    disabled=plan is None or target is None,
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
    )
_show_last(current)
