"""Export: write the examples the current selection keeps, with a manifest that reproduces it.

The selection is the one set on the Pruning page (the same `ui().choices` keys), so what was
previewed and retrained on is what gets written; compact copies of its controls here change
it for both pages. The summary is computed the way `scoring.prune.export` picks rows (the rule over
the whole run, then decisions drop / relabel among the selected), so its counts are the ones
the manifest will hold. Writing runs in this process: `scoring.prune.export` is I/O + pandas +
`datasets`, no torch, and takes seconds even on large runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app_pages._selection import decisions_control, offset_control
from app_pages._shared import page_header, pick, read_decisions, remembered, remembered_choice, ui
from scoring import store
from scoring.errors import InputError
from scoring.prune.export import FORMATS, export_selection, manifest_path, resolve_out
from scoring.prune.select import (
    RULES,
    SelectionConfig,
    apply_decisions,
    check_config,
    select_run,
)
from scoring.read.views import NORMALIZATIONS, RunView

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
RULE_NAMES = {
    "hardest": "keep hardest",
    "easiest": "keep easiest",
    "random": "random",
    "offset": "offset window",
    "stratified": "stratified coverage",
    "softmax": "softmax sampling",
    "linear": "linear sampling",
}
SEEDED_RULES = ("random", "stratified", "softmax", "linear")  # rules whose pick depends on seed
# The engine's refusals speak CLI; on this page the same switches are widgets.
CLI_WORDS = {
    "pass --force to overwrite it": "tick **Overwrite an existing export** to replace it",
    "even with --force": "even with Overwrite",
    "without --apply-decisions": "without applying the decisions",
}


# --- remembered widgets (the Pruning page's choice keys, this page's widget keys) -----------


# --- reads -----------------------------------------------------------------------------------


# --- the selection ---------------------------------------------------------------------------


def _controls(run: RunView) -> tuple[SelectionConfig | None, bool, str | None]:
    """The selection (Pruning's remembered values), whether to apply decisions, any refusal."""
    keys = run.score_keys
    c1, c2, c3 = st.columns(3)
    with c1:
        default = keys.index("el2n") if "el2n" in keys else 0
        score = pick("Score", keys, key="score", index=default)
    with c2:
        rule = remembered_choice(
            st.selectbox,
            "Rule",
            list(RULES),
            "prune_rule",
            "hardest",
            key="export_rule",
            format_func=RULE_NAMES.get,
        )
    with c3:
        normalization = remembered_choice(
            st.selectbox,
            "Normalization",
            list(NORMALIZATIONS),
            "prune_norm",
            "none",
            key="export_norm",
            format_func=lambda n: f"{n}: {NORMALIZATIONS[n]}",
        )
    c1, c2 = st.columns(2)
    with c1:
        fraction = remembered(
            st.slider,
            "Fraction kept",
            "prune_fraction",
            0.5,
            key="export_fraction",
            min_value=0.05,
            max_value=1.0,
            step=0.05,
        )
    fraction = round(float(fraction), 2)  # the slider's float steps carry round-off
    offset, temperature, beta, seed = 0.0, 1.0, 0.1, 0
    with c2:
        if rule == "offset":
            offset = offset_control(run, keys=("export_auto_offset", "export_offset"))
        elif rule == "softmax":
            temperature = remembered(
                st.number_input,
                "Temperature (softmax)",
                "prune_temperature",
                1.0,
                key="export_temperature",
                min_value=0.01,
                max_value=100.0,
                step=0.1,
            )
        elif rule == "stratified":
            beta = remembered(
                st.number_input,
                "Beta: hardest share dropped (stratified)",
                "prune_beta",
                0.1,
                key="export_beta",
                min_value=0.0,
                max_value=0.95,
                step=0.05,
            )
    c1, c2, c3 = st.columns([1, 1, 2])
    with c1:
        balanced = remembered(
            st.checkbox, "Class-balanced", "prune_balanced", False, key="export_balanced"
        )
    with c2:
        if rule in SEEDED_RULES:
            seed = remembered(
                st.number_input,
                "Seed",
                "export_seed",
                0,
                key="export_seed",
                min_value=0,
                max_value=2**31 - 1,
                step=1,
                help="The Pruning preview shows seed 0; the manifest records the seed used.",
            )
    with c3:
        use_decisions = decisions_control(
            run,
            key="export_decisions",
            help="Among the selected examples, leave out those marked Drop and write relabeled "
            "ones with their new label (the old one goes to an `original_label` column).",
        )

    sel = SelectionConfig(
        rule=rule,
        fraction=fraction,
        score=None if rule == "random" else score,
        normalization=normalization,
        offset=float(offset),
        class_balanced=bool(balanced),
        temperature=float(temperature),
        beta=round(float(beta), 4),
        seed=int(seed),
    )
    try:
        check_config(sel)
    except InputError as err:
        return None, use_decisions, str(err)
    return sel, use_decisions, None


@dataclass
class Plan:
    """What an export of the selection will hold (the counts its manifest records)."""

    selected: int  # examples the rule picks
    dropped: int  # of those, left out by drop decisions
    relabelled: int  # of those kept, written with a new label
    counts: np.ndarray  # (K,) examples written per class (source labels, relabels applied)
    totals: np.ndarray  # (K,) examples per class in the run (source labels)


def _plan(run: RunView, sel: SelectionConfig, use_decisions: bool) -> Plan:
    """Pick rows as `scoring.prune.export` does: the rule over every example, then the decisions."""
    positions = select_run(run, sel)  # (n_selected,)
    picked = run.table.iloc[positions]
    # The export writes the source's labels: a --noise check's permuted `label` is not data.
    column = "true_label" if "true_label" in run.table.columns else "label"
    labels = picked[column].to_numpy(np.int64)  # (n_selected,)
    keep, new = np.ones(labels.shape[0], dtype=bool), labels
    if use_decisions:
        keep, new = apply_decisions(picked["id"].to_numpy(np.int64), labels, read_decisions(run))
    if not keep.any():
        raise InputError(
            f"the selection is empty after applying decisions: all {labels.shape[0]} selected "
            "examples are dropped; keep a larger fraction or export without the decisions"
        )
    k = len(run.label_names)
    return Plan(
        selected=int(labels.shape[0]),
        dropped=int((~keep).sum()),
        relabelled=int((new != labels)[keep].sum()),
        counts=np.bincount(new[keep], minlength=k)[:k],
        totals=np.bincount(run.table[column].to_numpy(np.int64), minlength=k)[:k],
    )


def _describe(sel: SelectionConfig, n_all: int, plan: Plan, use_decisions: bool) -> str:
    """One line of markdown naming the selection and what it writes."""
    what = f"**{RULE_NAMES[sel.rule]}**"
    if sel.rule != "random":
        norm = "" if sel.normalization == "none" else f", {sel.normalization} z-scores"
        what += f" by **{sel.score}**{norm}"
    what += f", fraction **{sel.fraction:g}**"
    if sel.class_balanced:
        what += " of each class"
    if sel.rule == "offset":
        what += f" after dropping the hardest {sel.offset:.3g}"
    elif sel.rule == "stratified":
        what += f", beta {sel.beta:g}"
    elif sel.rule == "softmax":
        what += f", temperature {sel.temperature:g}"
    if sel.rule in SEEDED_RULES:
        what += f", seed {sel.seed}"
    written = int(plan.counts.sum())
    text = f"{what}: writes **{written:,}** of {n_all:,} examples"
    if use_decisions:
        text += (
            f" ({plan.selected:,} selected, {plan.dropped:,} dropped and "
            f"{plan.relabelled:,} relabelled by your decisions)"
        )
    return text + "."


def _show_summary(
    run: RunView, sel: SelectionConfig | None, use_decisions: bool, refusal: str | None
) -> Plan | None:
    """The selection in words and per class; None (with a warning) when it cannot be written."""
    if refusal:
        st.warning(refusal, icon=":material/warning:")
        return None
    assert sel is not None  # no refusal -> a checked selection
    try:
        plan = _plan(run, sel, use_decisions)
    except InputError as err:
        st.warning(str(err), icon=":material/warning:")
        return None
    st.markdown(_describe(sel, len(run.table), plan, use_decisions))
    names = run.label_names
    empty = [names[c] for c in np.flatnonzero((plan.counts == 0) & (plan.totals > 0))]
    if empty:
        st.warning(
            f"This selection keeps no example of {len(empty)} class(es): {', '.join(empty)}. "
            "A model trained on it can never predict them; turn on **Class-balanced** or keep "
            "a larger fraction.",
            icon=":material/warning:",
        )
    st.dataframe(
        pd.DataFrame(
            {
                "class": names,
                "written": plan.counts,
                "in the run": plan.totals,
                "share": np.divide(plan.counts, np.maximum(plan.totals, 1)),
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
        fmt = remembered_choice(
            st.selectbox,
            "Format",
            list(FORMATS),
            "export_format",
            "parquet",
            key="export_format",
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
        st.warning(_plain(str(err)), icon=":material/warning:")
        return None


def _export(
    run: RunView,
    sel: SelectionConfig,
    use_decisions: bool,
    plan: Plan,
    *,
    fmt: str,
    folder: str,
    out: str,
    force: bool,
) -> None:
    try:
        with st.spinner(f"Writing {int(plan.counts.sum()):,} examples…"):
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
        st.warning(_plain(str(err)), icon=":material/warning:")
        return
    except OSError as err:  # a folder that is not writable, a full disk, ...
        st.error(
            f"Could not write the export: {err}. Pick a folder you can write to.",
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
        st.info(f"The last export, `{path}`, is no longer complete on disk; export again.")
        return
    st.subheader("Last export")
    st.success(
        f"Wrote **{manifest['rows']:,}** examples to `{path}`.", icon=":material/check_circle:"
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
                f"Download {path.name}",
                data=lambda: path.read_bytes(),  # read on click, not on every rerun
                file_name=path.name,
                mime=MIME[fmt],
                key="export_download",
                icon=":material/download:",
            )
    st.markdown(f"Manifest (`{manifest_path(path, fmt).name}`):")
    st.json(manifest, expanded=1)


# --- page ------------------------------------------------------------------------------------

current = page_header("Export")
if not current.score_keys:
    st.info(
        "This run holds no scores to select by. Score a run on the **Home** page first.",
        icon=":material/info:",
    )
    st.stop()
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
    selection, apply_made, refusal = _controls(current)
with summary:  # drawn above the controls, from their current values
    plan = _show_summary(current, selection, apply_made, refusal)

st.header("Write")
fmt_, folder_, out_, force_ = _output_controls(current)
target = _target(folder_, out_)
if target is not None:
    st.caption(f"Writes `{target}`.")
if st.button(
    "Export",
    key="export_go",
    type="primary",
    disabled=plan is None or target is None,
    icon=":material/save:",
):
    assert selection is not None and plan is not None  # the button is disabled otherwise
    _export(
        current,
        selection,
        apply_made,
        plan,
        fmt=fmt_,
        folder=folder_,
        out=out_,
        force=force_,
    )
_show_last(current)
