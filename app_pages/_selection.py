"""Selection controls that the Pruning and Export pages share (one implementation, one state).

Both pages read and write the same `ui().choices` keys (`prune_*`), so a selection set on one
page is the selection on the other; each page passes its own widget keys.
"""

from __future__ import annotations

import streamlit as st

from app_pages._shared import read_decisions, remembered
from scoring.errors import InputError
from scoring.prune.select import auto_offset
from scoring.read.views import RunView

AUTO_OFFSET_HELP = (
    "Data Diet found the best offset equals the label-noise rate; this uses the share of "
    "examples cleanlab flags as that rate."
)


def offset_control(run: RunView, *, keys: tuple[str, str] | None = None) -> float:
    """The offset slider, or the run's own noise estimate (cl_issue share) when auto is on.

    `keys` are the widget keys of the auto checkbox and the slider (default `w_prune_*`).
    """
    auto_key, slider_key = keys or (None, None)
    auto = False
    if "cl_issue" in run.table.columns:
        auto = remembered(
            st.checkbox,
            "auto (noise estimate from cl_issue)",
            "prune_auto_offset",
            False,
            key=auto_key,
            help=AUTO_OFFSET_HELP,
        )
    offset = remembered(
        st.slider,
        "Offset: hardest share dropped first",
        "prune_offset",
        0.1,
        key=slider_key,
        min_value=0.0,
        max_value=0.5,
        step=0.01,
        disabled=bool(auto),
    )
    offset = round(float(offset), 2)
    if not auto:
        return offset
    try:
        estimate = auto_offset(run)
    except InputError as err:
        st.warning(f"{err}. Using the slider's offset instead.")
        return offset
    st.caption(
        f"Auto offset: **{estimate:.3f}**, the share of examples cl_issue flags as "
        "likely mislabeled."
    )
    return estimate


def decisions_control(run: RunView, *, help: str, key: str | None = None) -> bool:
    """Whether to apply the Mislabeled page's decisions (disabled while there are none)."""
    made = read_decisions(run)
    n = len(made)
    drops = int((made["action"] == "drop").sum()) if n else 0
    relabels = int((made["action"] == "relabel").sum()) if n else 0
    label = (
        f"Apply Mislabeled decisions ({n}: {drops} drops, {relabels} relabels)"
        if n
        else "Apply Mislabeled decisions (none made yet)"
    )
    applied = remembered(
        st.checkbox, label, "prune_decisions", False, key=key, disabled=n == 0, help=help
    )
    return bool(applied) and n > 0
