"""What every page shares: the UI state, cached reads of the cache, the current run.

Pages read files the engine wrote (through `scoring.store` / `scoring.read.views`) and start jobs
through `scoring.jobs`; nothing here imports torch or the training loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from scoring import store
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
    return _load_run_cached(str(p), (mtime(rd.scores_file), mtime(rd.status_file)))


def finished_runs() -> list[store.RunInfo]:
    return [r for r in store.list_runs(cache_dir()) if r.state == "done" and r.version_ok]


def current_run() -> RunView | None:
    """The run every page shows, or None after telling the user what to do."""
    state = ui()
    runs = finished_runs()
    paths = [str(r.path) for r in runs]
    if state.run not in paths:
        state.run = paths[0] if paths else None
    if state.run is None:
        st.info(
            "No finished run yet. Start one on the **Home** page (first in the sidebar): "
            "a digits run takes under a minute.",
            icon=":material/info:",
        )
        return None
    try:
        return read_run(state.run)
    except InputError as err:
        st.warning(str(err))
        return None


def page_header(title: str) -> RunView:
    """The page title and the current run's caption; stops the page when there is no run."""
    st.title(title)
    run = current_run()
    if run is None:
        st.stop()
    st.caption(run.title())
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
    """The run's latest keep/relabel/drop decisions, re-read when the file changes."""
    return _decisions_cached(str(run.path), mtime(decisions.path_of(run.path)))
