"""What every page shares: the UI state, cached reads of the cache, the current run.

Pages read files the engine wrote (through `scoring.store` / `scoring.read.views`) and start jobs
through `scoring.jobs`; nothing here imports torch or the training loop.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from scoring import jobs, store
from scoring.config import ScoreConfig
from scoring.errors import InputError
from scoring.read import decisions
from scoring.read.views import RunView, load_run

# Scatter plots above this many points are sampled (with a visible note) to keep pages fast.
MAX_POINTS = 5000


@dataclass
class UIState:
    """The one typed session state: which run is current and what the user chose."""

    run: str | None = None  # current run folder; None -> the newest finished run
    job_id: str | None = None  # the job this session started last
    adopted_job: str | None = None  # the finished job whose run was made current (once)
    choices: dict[str, object] = field(default_factory=dict)  # per-page widget memory


def ui() -> UIState:
    if "ui" not in st.session_state:
        st.session_state["ui"] = UIState()
    return st.session_state["ui"]


def cache_dir() -> Path:
    return Path(os.environ.get("WINNOW_CACHE_DIR", "cache"))


def mtime(path: Path) -> float:
    """A file's mtime for cache keys (0 when it does not exist yet)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


@st.cache_data(show_spinner=False, max_entries=8)
def _load_run_cached(path: str, stamp: tuple[float, float]) -> RunView:
    # `stamp` (the files' mtimes) is part of the cache key: new results are picked up.
    return load_run(path)


def read_run(path: str | Path) -> RunView:
    """A finished run, re-read whenever its scores or status file changes (mtime key).

    Decisions change more often and are read apart, by `read_decisions`.
    """
    p = Path(path)
    rd = store.RunDir(p)
    # Every file the run wrote is in the key: a file damaged since it was read is noticed.
    stamp = (mtime(rd.status_file), *(mtime(f) for f in rd.written_files()))
    return _load_run_cached(str(p), stamp)


def finished_runs() -> list[store.RunInfo]:
    return [r for r in store.list_runs(cache_dir()) if r.state == "done" and r.version_ok]


def adopt_finished_job() -> None:
    """Make the run of this session's last job current, once, when that job has finished.

    Called before any run picker is drawn (Home, every page header), so "the new run is now
    the current run on every page" holds wherever the user is when the job ends.
    """
    state = ui()
    if not state.job_id or state.adopted_job == state.job_id:
        return
    job = jobs.status(state.job_id, cache_dir())
    if job is None or job.state == "running":
        return
    state.adopted_job = state.job_id
    if job.state == "done" and job.kind == "score" and job.run:
        target = Path(job.run).resolve()  # the job may spell the folder another way
        found = [str(r.path) for r in finished_runs() if r.path.resolve() == target]
        state.run = found[0] if found else state.run


def current_run() -> RunView | None:
    """The run every page shows, or None after telling the user what to do."""
    adopt_finished_job()
    state = ui()
    listed = store.list_runs(cache_dir())
    chosen = next((r for r in listed if str(r.path) == state.run), None)
    if chosen is not None and chosen.problems:  # the chosen run is damaged: say so, offer repair
        damaged_panel(chosen.path, chosen.problems)
        return None
    runs = [r for r in listed if r.state == "done" and r.version_ok]
    paths = [str(r.path) for r in runs]
    if state.run not in paths:
        state.run = paths[0] if paths else None
    if state.run is None:
        st.info(
            "No finished run yet. Start one on the **Home** page (first in the sidebar): "
            "it shows the job's progress and, once its pace is steady, the time left.",
            icon=":material/info:",
        )
        return None
    try:
        return read_run(state.run)
    except store.DamagedRun as err:  # found while reading (garbage the cheap check missed)
        damaged_panel(err.run, [err])
        return None
    except InputError as err:
        st.warning(escape_md(err))
        return None


# Every ASCII character markdown (or Streamlit's :color[...] / :icon: syntax) gives a meaning.
MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~$:&=")


def escape_md(text: object) -> str:
    """`text` shown literally in any element that renders markdown.

    The one escape for user strings (label, column and file names, texts, messages that
    quote them) in `st.markdown`, `st.caption`, `st.error` / `st.warning` / `st.info`,
    `st.toast`, headers and widget labels: a label named `**x**` or
    `![x](http://host/a.png)` shows as typed, never as bold text or a fetched image.
    Inside a code span (backticks) escapes show literally: use `code_md` there.
    """
    return "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in str(text))


def code_md(text: object) -> str:
    """`text` as an inline code span (shown verbatim), whatever backticks it holds."""
    text = str(text).replace("\n", " ")
    longest = max((len(m) for m in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)  # a fence longer than any backtick run inside
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def damaged_panel(path: Path, problems: list[store.DamagedRun]) -> None:
    """A damaged run: what is wrong, and a button to rescore it (or to delete its folder).

    Rescoring starts the run's own config again (`jobs.start_score`); the engine checks every
    file against the hashes the run recorded and recomputes only what is damaged or missing.
    Without a readable config.json there is nothing to rescore from: delete is offered.
    """
    rd = store.RunDir(path)
    listing = "\n".join(f"- {code_md(p.file)} {escape_md(p.reason)}" for p in problems)
    st.error(f"**This run is damaged.**\n\n{listing}", icon=":material/error:")
    st.caption(f"Run folder: {escape_md(rd.path)}")
    try:
        record = rd.read_config()
        config = ScoreConfig.from_dict(record["config"])
    except InputError as err:  # DamagedRun, or a config section that no longer parses
        config = None
        why = (
            f"Its configuration cannot be read ({escape_md(err)}), so it cannot be rescored "
            "from here. Run the `winnow score` command that made it again, or delete the folder."
        )
    else:
        if store.run_source(record) != "scored":  # the user's own training: not redone here
            config = None
            why = (
                f"It was {store.run_source(record)} from your own training, so Winnow cannot "
                "compute it again: record (or import) it again, or delete the folder."
            )
    if config is not None:
        st.markdown(
            "Rescoring runs the same configuration again: only the damaged or missing files "
            "are recomputed, the rest is read back (from the command line: run the same "
            "`winnow score` command again)."
        )
        if st.button("Rescore this run", type="primary", key=f"rescore_{rd.key}"):
            ui().job_id = jobs.start_score(config, cache_dir())
            st.toast("Rescoring job started; follow it on Home")
        return
    st.warning(why)
    n_decisions = len(decisions.latest(rd.path)) if rd.decisions_file.exists() else 0
    lost = f" and its {n_decisions} decision(s)" if n_decisions else ""
    sure = st.checkbox(f"Yes, delete this run folder{lost}", key=f"sure_{rd.key}")
    if st.button("Delete this run folder", disabled=not sure, key=f"delete_{rd.key}"):
        try:
            rd.remove()
        except InputError as err:
            st.error(escape_md(err))
            return
        if ui().run == str(rd.path):
            ui().run = None
        st.toast("Run folder deleted")
        st.rerun()


def page_header(title: str) -> RunView:
    """The page title and the current run's caption; stops the page when there is no run."""
    st.title(title)
    run = current_run()
    if run is None:
        st.stop()
    st.caption(escape_md(run.title()))  # the dataset's file name is the user's
    return run


def sample_note(frame: pd.DataFrame, max_points: int = MAX_POINTS, seed: int = 0) -> pd.DataFrame:
    """At most `max_points` rows (seeded sample), with a caption saying so when sampled."""
    if len(frame) <= max_points:
        return frame
    st.caption(f"Showing a random sample of {max_points:,} of {len(frame):,} examples.")
    return frame.sample(max_points, random_state=seed)


def pick(
    label: str,
    options: list,
    key: str,
    *,
    index: int = 0,
    widget=st.selectbox,
    widget_key: str | None = None,
    **kw,
):
    """A selectbox (or radio) over `options` whose choice survives page switches.

    It starts from, and writes back to, `ui().choices[key]`, so pages that share a setting
    (Pruning and Export) stay in step; `index` is the option shown before any choice. The
    widget key defaults to `w_<key>`.
    """
    choices = ui().choices
    chosen = choices.get(key)
    start = options.index(chosen) if chosen in options else index
    value = widget(label, options, index=start, key=widget_key or f"w_{key}", **kw)
    choices[key] = value
    return value


def remembered(widget, label: str, choice: str, default: object, *, key: str | None = None, **kw):
    """A value widget (slider, checkbox, number/text input) that starts from, and writes back
    to, `ui().choices[choice]`; its widget key defaults to `w_<choice>`."""
    choices = ui().choices
    value = widget(label, value=choices.get(choice, default), key=key or f"w_{choice}", **kw)
    choices[choice] = value
    return value


@st.cache_data(show_spinner=False, max_entries=4)
def _decisions_cached(run: str, stamp: float) -> pd.DataFrame:
    # `stamp` (decisions.jsonl's mtime) is in the key: a decision made on Mislabeled shows here.
    return decisions.latest(Path(run))


def read_decisions(run: RunView) -> pd.DataFrame:
    """The run's latest keep/relabel/drop decisions, re-read when the file changes.

    Unreadable lines (a damaged file) are skipped with a warning; the others are kept.
    """
    latest = _decisions_cached(str(run.path), mtime(decisions.path_of(run.path)))
    skipped = latest.attrs.get("skipped_lines", 0)
    if skipped:
        st.warning(escape_md(decisions.skipped_message(decisions.path_of(run.path), skipped)))
    return latest


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """`singular` for one, else `plural` (default `singular` + "s"): "1 row", "2 rows"."""
    return singular if n == 1 else plural or singular + "s"
