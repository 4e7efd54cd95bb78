"""Send the listed suspects to a labelling tool and take its answers back, from a page.

The same files as `winnow send --to label-studio|argilla` and `winnow receive`
(`scoring.read.labelling`): downloads of Label Studio tasks with their labelling config and
of Argilla records with their settings; with LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY set,
a project made directly on that server (`scoring.read.label_studio`) and its answers fetched
from it. Answers (an upload of either tool's export, or the server's) are checked whole,
previewed, and recorded as one bulk action only when asked (undone like any other from
Mislabeled's bulk box); the decisions keep the tool's name.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import streamlit as st

from app_pages._shared import escape_md, noun
from scoring.errors import InputError
from scoring.read import decisions, label_studio, labelling
from scoring.read.views import RunView

_COLUMNS = ["id", "label", "suggested_label", "score"]
_ARGILLA_COLUMNS = [*_COLUMNS, "suggested_prob", "detector", "split"]


@st.cache_data(show_spinner=False, max_entries=4)
def _files_cached(run: str, title: str, rows: pd.DataFrame) -> tuple[str, str]:
    # Keyed by the rows themselves (ids, labels, suggestions, scores): a new list re-encodes.
    from scoring.read.views import load_run

    view = load_run(run)
    tasks = labelling.tasks_json(labelling.label_studio_tasks(view, rows[_COLUMNS]))
    present = [c for c in _ARGILLA_COLUMNS if c in rows.columns]
    return tasks, labelling.records_jsonl(labelling.argilla_records(view, rows[present]))


def labelling_section(view: RunView, rows: pd.DataFrame, key: str, what: str = "") -> None:
    """Send `rows` (suspects: id, label, suggested_label, score) to Label Studio or Argilla;
    import a tool's answers as decisions.

    Parameters
    ----------
    view : RunView
    rows : DataFrame
        The rows listed on the page, in their order.
    key : str
        The page's name: widget keys and file names.
    what : str
        A few words on which rows these are, for the caption.
    """
    n = len(rows)
    with st.expander(f"Send {'this one' if n == 1 else f'these {n}'} to Label Studio"):
        st.caption(
            f"{what}Download Label Studio tasks and their labelling config (create a project "
            "with the config under Labeling Setup → Code, import the tasks, label, then "
            "Export → JSON), or Argilla records and their settings; then import the answers "
            "below. The same as `winnow send --to label-studio|argilla` and `winnow receive`."
        )
        try:
            tasks, records = _files_cached(str(view.path), view.title(), rows)
        except InputError as err:
            st.info(escape_md(str(err)))
        else:
            _downloads(view, n, key, tasks, records)
            if label_studio.configured():
                _send_direct(view, rows, key)
        _import(view, key)


def _downloads(view: RunView, n: int, key: str, tasks: str, records: str) -> None:
    """Label Studio's two files in one column, Argilla's in the other."""
    settings = json.dumps(labelling.argilla_settings(view), indent=1)
    files = [
        # (column, label, content, file name, mime type, widget key)
        (0, f"Download {n} Label Studio {noun(n, 'task')} (JSON)", tasks, "tasks.json",
         "application/json", "ls_tasks"),
        (0, "Download the labelling config (XML)", labelling.label_config(view),
         "tasks.label_config.xml", "application/xml", "ls_config"),
        (1, f"Download {n} Argilla {noun(n, 'record')} (JSON lines)", records, "records.jsonl",
         "application/jsonl", "argilla_records"),
        (1, "Download the Argilla settings (JSON)", settings, "records.settings.json",
         "application/json", "argilla_settings"),
    ]  # fmt: skip
    cols = st.columns(2)
    for col, label, content, name, mime, widget in files:
        cols[col].download_button(
            label,
            content,
            file_name=f"{key}-{name}",
            mime=mime,
            key=f"{key}_{widget}",
            icon=":material/download:",
        )


def _send_direct(view: RunView, rows: pd.DataFrame, key: str) -> None:
    """A project on the configured Label Studio server, made on a click; its answers fetched."""
    url = label_studio.server_url(None)
    n = len(rows)
    st.button(
        f"Send {'this one' if n == 1 else f'these {n}'} to Label Studio at {url}",
        key=f"{key}_ls_send",
        icon=":material/send:",
        on_click=_create_project,
        args=(str(view.path), rows[_COLUMNS], key),
    )
    sent = st.session_state.get(f"{key}_ls_sent")
    if sent and sent.startswith("Error"):
        st.error(escape_md(sent.removeprefix("Error: ")))
    elif sent:
        st.success(sent)
    project = st.number_input(
        "Label Studio project to take the answers from",
        min_value=1,
        step=1,
        value=st.session_state.get(f"{key}_ls_project_made") or 1,
        key=f"{key}_ls_project",
    )
    if st.button("Fetch its answers", key=f"{key}_ls_fetch", icon=":material/download:"):
        try:
            client = label_studio.connect(None, None)
            text = label_studio.export_json(client, url, int(project))
        except InputError as err:
            st.error(escape_md(str(err)))
        else:
            st.session_state[f"{key}_ls_fetched"] = (f"project {int(project)} at {url}", text)


def _create_project(run: str, rows: pd.DataFrame, key: str) -> None:
    from scoring.read.views import load_run

    try:
        view = load_run(run)
        client = label_studio.connect(None, None)
        url = label_studio.server_url(None)
        project = label_studio.create_project(
            client,
            url,
            view.title()[: label_studio.TITLE_CHARS],
            labelling.label_config(view),
            labelling.label_studio_tasks(view, rows),
        )
    except InputError as err:
        st.session_state[f"{key}_ls_sent"] = f"Error: {err}"
        return
    st.session_state[f"{key}_ls_project_made"] = project
    st.session_state[f"{key}_ls_sent"] = (
        f"Label Studio project {project} at {url}/projects/{project} holds {len(rows)} "
        f"{noun(len(rows), 'task')}; fetch its answers here when they are in."
    )


def _import(view: RunView, key: str) -> None:
    """An export (uploaded, or fetched from the server): checked, previewed, recorded on a
    click, once per content."""
    upload = st.file_uploader(
        "Import answers (Label Studio's JSON export, or Argilla's records)",
        type=["json", "jsonl"],
        key=f"{key}_ls_upload",
    )
    if upload is not None:
        name, text = upload.name, upload.getvalue().decode("utf-8", errors="replace")
    elif f"{key}_ls_fetched" in st.session_state:
        name, text = st.session_state[f"{key}_ls_fetched"]
    else:
        return
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    done = st.session_state.setdefault(f"{key}_ls_recorded", {})
    if digest in done:
        st.success(done[digest])
        return
    try:
        got = labelling.read_answers(view.path, name, text)
    except InputError as err:
        st.error(escape_md(str(err)))
        return
    ties = f"; tied, left undecided: {len(got.ties)}" if got.ties else ""
    n = len(got.records)
    st.markdown(
        f"{n} {noun(n, 'answer')} from {got.tool_name} to record ({got.keeps} keep, "
        f"{got.relabels} relabel); without an answer, left alone: {got.unanswered}{ties}."
    )
    st.button(
        f"Record {n} {noun(n, 'decision')}",
        key=f"{key}_ls_record",
        icon=":material/save:",
        disabled=not got.records,
        on_click=_record,
        args=(str(view.path), got, digest, key),
    )


def _record(run: str, got: labelling.Received, digest: str, key: str) -> None:
    bulk = decisions.append_bulk(run, got.records, got.tool)
    n = len(got.records)
    st.session_state[f"{key}_ls_recorded"][digest] = (
        f"Recorded {n} {noun(n, 'decision')} from {got.tool_name} (bulk action {bulk}: undo "
        "it in Mislabeled's bulk box)."
    )
