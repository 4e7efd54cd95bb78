"""Send the listed suspects to Label Studio and take its answers back, from a page.

The same files as `winnow send --to label-studio` and `winnow receive`
(`scoring.read.labelling`): a download of the tasks and of the labelling config, and an
upload of Label Studio's JSON export, checked whole, previewed, and recorded as one bulk
action only when asked (undone like any other from Mislabeled's bulk box).
"""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from app_pages._shared import escape_md, noun
from scoring.errors import InputError
from scoring.read import decisions, labelling
from scoring.read.views import RunView


@st.cache_data(show_spinner=False, max_entries=4)
def _tasks_cached(run: str, title: str, rows: pd.DataFrame) -> str:
    # Keyed by the rows themselves (ids, labels, suggestions, scores): a new list re-encodes.
    from scoring.read.views import load_run

    return labelling.tasks_json(labelling.label_studio_tasks(load_run(run), rows))


def labelling_section(view: RunView, rows: pd.DataFrame, key: str) -> None:
    """Download `rows` (suspects: id, label, suggested_label, score) as Label Studio tasks
    with the labelling config; import an export's answers as decisions.

    Parameters
    ----------
    view : RunView
    rows : DataFrame
        The suspects listed on the page, in their order.
    key : str
        The page's name: widget keys.
    """
    n = len(rows)
    these = "this suspect" if n == 1 else f"these {n} suspects"
    with st.expander(f"Review {these} in Label Studio"):
        st.caption(
            "Download the tasks and the labelling config, create a Label Studio project with "
            "the config (Labeling Setup → Code), import the tasks, label, then Export → JSON "
            "and import that file here. The same as `winnow send --to label-studio` and "
            "`winnow receive`."
        )
        cols = st.columns(2)
        try:
            tasks = _tasks_cached(str(view.path), view.title(), rows[_COLUMNS])
        except InputError as err:
            st.info(escape_md(str(err)))
        else:
            cols[0].download_button(
                f"Download {n} {noun(n, 'task')} (JSON)",
                tasks,
                file_name=f"{key}-tasks.json",
                mime="application/json",
                key=f"{key}_ls_tasks",
                icon=":material/download:",
            )
            cols[1].download_button(
                "Download the labelling config (XML)",
                labelling.label_config(view),
                file_name=f"{key}-tasks.label_config.xml",
                mime="application/xml",
                key=f"{key}_ls_config",
                icon=":material/download:",
            )
        _import(view, key)


_COLUMNS = ["id", "label", "suggested_label", "score"]


def _import(view: RunView, key: str) -> None:
    """The upload of an export: checked, previewed, recorded on a click, once per file."""
    upload = st.file_uploader(
        "Import Label Studio's JSON export", type=["json"], key=f"{key}_ls_upload"
    )
    if upload is None:
        return
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    done = st.session_state.setdefault(f"{key}_ls_recorded", {})
    if digest in done:
        st.success(done[digest])
        return
    try:
        got = labelling.read_label_studio_export(
            view.path, upload.name, data.decode("utf-8", errors="replace")
        )
    except InputError as err:
        st.error(escape_md(str(err)))
        return
    ties = f"; tied, left undecided: {len(got.ties)}" if got.ties else ""
    n = len(got.records)
    st.markdown(
        f"{n} {noun(n, 'answer')} to record ({got.keeps} keep, {got.relabels} relabel); "
        f"without an answer, left alone: {got.unanswered}{ties}."
    )
    st.button(
        f"Record {len(got.records)} {noun(len(got.records), 'decision')}",
        key=f"{key}_ls_record",
        icon=":material/save:",
        disabled=not got.records,
        on_click=_record,
        args=(str(view.path), got.records, digest, key),
    )


def _record(run: str, records: list[dict], digest: str, key: str) -> None:
    bulk = decisions.append_bulk(run, records, labelling.TOOL)
    n = len(records)
    st.session_state[f"{key}_ls_recorded"][digest] = (
        f"Recorded {n} {noun(n, 'decision')} from Label Studio (bulk action {bulk}: undo it "
        "in the bulk box above)."
    )
