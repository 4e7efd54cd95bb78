"""Map: the run's embedding space (UMAP) coloured by score, label or suspicion, and the data map.

The UMAP itself is computed by a background job (`python -m scoring map`), never in this
process: it takes tens of seconds and would block every other page of the session. A box or
lasso selection on the map opens a grid of the selected examples with the same decision
buttons as the Mislabeled page (`app_pages._review`).
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app_pages._filters import filter_controls
from app_pages._review import evaluation_mode, evidence, review_grid, selected_ids
from app_pages._shared import (
    MAX_POINTS,
    cache_dir,
    code_md,
    escape_md,
    mtime,
    page_header,
    pick,
    read_decisions,
    sample_note,
    ui,
)
from scoring import jobs, store
from scoring.errors import InputError
from scoring.read.maps import read_map, suspect_flags
from scoring.read.views import RunView, hardness

GRID_MAX = 24  # selected examples shown as cards (6 widgets each)
HOVER_CHARS = 120  # texts in hover boxes are cut here; the Examples page shows them whole
POINT_SIZE = 5
DATA_MAP_COLUMNS = ("confidence", "variability", "correctness")


# --- reads -------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=4)
def _map_cached(run: str, mtime: float) -> pd.DataFrame | None:
    # `mtime` is part of the cache key (an underscore name would not be hashed), so a map
    # the job just wrote is read at once.
    return read_map(Path(run))


@st.cache_data(show_spinner=False, max_entries=4)
def _texts_cached(run: str, mtime: float) -> pd.Series | None:
    """id -> short text for hover boxes (a pair reads "first ‖ second")."""
    texts = store.RunDir(run).read_texts()
    if texts is None:
        return None
    joined = texts["text"].astype(str)
    if "text_pair" in texts.columns:
        joined = joined + " ‖ " + texts["text_pair"].astype(str)
    short = joined.where(joined.str.len() <= HOVER_CHARS, joined.str.slice(0, HOVER_CHARS) + "…")
    short = short.map(html.escape)  # plotly hover boxes render HTML; a "<b>" in data stays text
    return pd.Series(short.to_numpy(), index=texts["id"].to_numpy())


# --- embedding map -----------------------------------------------------------------------


def _color_options(run: RunView, truth: bool) -> dict[str, str]:
    """Option value -> what the select shows."""
    options = {f"score:{k}": f"score: {k}" for k in run.score_keys}
    options["label"] = "given label"
    if "pred" in run.table.columns and run.table["pred"].notna().any():
        options["pred"] = "predicted label"
    if run.score_keys:
        options["suspect"] = "suspect flag"
    if truth:  # evaluation mode only: the injected noise's truth
        options["noisy"] = "injected noise"
    return options


def _names(values: pd.Series, label_names: list[str]) -> pd.Series:
    """Class ints -> names; missing predictions read "n/a" rather than failing."""
    lookup = dict(enumerate(label_names))
    return values.map(lambda v: lookup.get(int(v), str(v)) if pd.notna(v) else "n/a")


def _embedding_frame(run: RunView, coords: pd.DataFrame) -> pd.DataFrame:
    """One row per mapped example: coordinates, names for hover, every score."""
    frame = coords.merge(run.table, on="id", how="inner")
    frame["label name"] = _names(frame["label"], run.label_names)
    if "pred" in frame.columns:
        frame["predicted"] = _names(frame["pred"], run.label_names)
    texts = _texts_cached(str(run.path), mtime(store.RunDir(run.path).texts_file))
    if texts is not None:
        frame["text"] = frame["id"].map(texts).fillna("")
    return frame


# customdata[0] is the id, whatever the colour: a selection names its examples by it.
_SCATTER = dict(x="x", y="y", render_mode="webgl", custom_data=["id"])


def _embedding_figure(run: RunView, frame: pd.DataFrame, choice: str) -> tuple[go.Figure, str]:
    """The scatter for one colour choice, and a caption saying how to read the colour."""
    hover: dict[str, object] = {"x": False, "y": False, "id": True, "label name": True}
    if "predicted" in frame.columns:
        hover["predicted"] = True
    if choice.startswith("score:"):
        return _score_figure(run, frame, choice.removeprefix("score:"), hover)
    # After the score columns when colouring by a score, before the colour otherwise.
    if "text" in frame.columns:
        hover["text"] = True
    if choice in ("label", "pred"):
        return _class_figure(run, frame, choice, hover)
    if choice == "suspect":
        return _suspect_figure(run, frame, hover)
    return _noise_figure(run, frame, hover)  # choice == "noisy"


def _score_figure(
    run: RunView, frame: pd.DataFrame, key: str, hover: dict[str, object]
) -> tuple[go.Figure, str]:
    """Coloured by score `key`, oriented so that brighter is harder whatever its direction."""
    colour = f"{key} (harder →)"
    frame = frame.assign(**{colour: hardness(frame[key].to_numpy(), run.higher_is_harder(key))})
    # Draw the hardest last so they are not buried under easy points.
    frame = frame.sort_values(colour, na_position="first")
    hover |= {key: ":.4g", colour: False}
    if "text" in frame.columns:
        hover["text"] = True
    fig = px.scatter(
        frame, color=colour, hover_data=hover, color_continuous_scale="Plasma", **_SCATTER
    )
    sign = "" if run.higher_is_harder(key) else "−"
    how = (
        f"Colour is **{sign}{key}**, oriented so that brighter = harder / more suspect "
        f"for every score"
        + ("" if sign == "" else f" (low `{key}` is suspect)")
        + "; the hover box shows the raw value."
    )
    return fig, how


def _class_figure(
    run: RunView, frame: pd.DataFrame, choice: str, hover: dict[str, object]
) -> tuple[go.Figure, str]:
    """Coloured by the given label (`choice` "label") or the final models' one ("pred")."""
    column = "label name" if choice == "label" else "predicted"
    names = run.label_names
    palette = px.colors.qualitative.Plotly if len(names) <= 10 else px.colors.qualitative.Alphabet
    fig = px.scatter(
        frame,
        color=column,
        hover_data=hover,
        color_discrete_sequence=palette,
        category_orders={column: [*names, "n/a"]},
        **_SCATTER,
    )
    what = "label the model was trained on" if choice == "label" else "final models' prediction"
    return fig, f"Colour is the {what}; clusters of one colour are classes the model separates."


def _suspect_figure(
    run: RunView, frame: pd.DataFrame, hover: dict[str, object]
) -> tuple[go.Figure, str]:
    """The examples the run's detector flags in red, the others grey."""
    flags, how = suspect_flags(run)
    # suspect_flags is aligned with run.table; frame rows are a merge, so go by id.
    flagged = pd.Series(flags, index=run.table["id"].to_numpy())
    is_suspect = frame["id"].map(flagged).fillna(False).astype(bool)
    frame = frame.assign(suspect=np.where(is_suspect, "suspect", "not flagged"))
    fig = px.scatter(
        frame,
        color="suspect",
        hover_data=hover,
        category_orders={"suspect": ["not flagged", "suspect"]},
        color_discrete_map={"not flagged": "#c7c7c7", "suspect": "#d62728"},
        **_SCATTER,
    )
    return fig, f"Red: {how}. Suspects far inside another class's cluster are worth a look."


def _noise_figure(
    run: RunView, frame: pd.DataFrame, hover: dict[str, object]
) -> tuple[go.Figure, str]:
    """The examples whose label the run flipped on purpose in red, the others grey."""
    frame = frame.assign(noise=np.where(frame["noisy"].astype(bool), "label flipped", "clean"))
    if "true_label" in frame.columns:
        frame["true label"] = _names(frame["true_label"], run.label_names)
        hover["true label"] = True
    fig = px.scatter(
        frame,
        color="noise",
        hover_data=hover,
        category_orders={"noise": ["clean", "label flipped"]},
        color_discrete_map={"clean": "#c7c7c7", "label flipped": "#d62728"},
        **_SCATTER,
    )
    return fig, "Red: examples whose label was deliberately flipped when the run was scored."


def _style(fig: go.Figure) -> go.Figure:
    fig.update_traces(marker={"size": POINT_SIZE, "opacity": 0.8})
    fig.update_layout(
        height=600,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        dragmode="lasso",  # selecting is what the map is for; zoom stays in the toolbar
        legend={"orientation": "h", "y": -0.02, "yanchor": "top"},  # clear of the toolbar
    )
    fig.update_xaxes(showticklabels=False, title=None)  # UMAP axes carry no meaning
    fig.update_yaxes(showticklabels=False, title=None)
    return fig


def _show_embedding_map(run: RunView, frame: pd.DataFrame, truth: bool) -> None:
    if len(frame) < len(run.table):
        st.caption(f"The map covers {len(frame):,} of {len(run.table):,} examples.")
    options = _color_options(run, truth)
    choice = pick(
        "Colour by",
        list(options),
        key="map_color",
        index=list(options).index("label"),  # classes first: the clusters the model separates
        format_func=options.get,
    )
    frame = sample_note(frame, MAX_POINTS)
    try:
        fig, how = _embedding_figure(run, frame, choice)
    except InputError as err:
        st.warning(escape_md(err))
        return
    event = st.plotly_chart(
        _style(fig),
        width="stretch",
        key="map_chart",
        on_select="rerun",
        selection_mode=("box", "lasso"),
    )
    st.caption(
        how + " Each point is a training example placed by UMAP of the first model's "
        "penultimate features: neighbours are examples the model sees as alike. Draw a box "
        "or a lasso around points to review them below."
    )
    chosen = selected_ids(event)
    if chosen:
        ui().choices[_selected_key(run)] = chosen
    _show_selection(run)


def _selected_key(run: RunView) -> str:
    return f"map_selected:{run.path}"


def _clear_selection(run: RunView) -> None:
    ui().choices.pop(_selected_key(run), None)


def _show_selection(run: RunView) -> None:
    """The selected examples as review cards (at most GRID_MAX), searchable and filtered
    like the Examples grid (`app_pages._filters`), with a way to clear them."""
    chosen = ui().choices.get(_selected_key(run))
    if not chosen:
        return
    st.subheader(f"{len(chosen):,} selected example{'' if len(chosen) == 1 else 's'}")
    left, right = st.columns([3, 1])
    right.button(
        "Clear the selection",
        key="map_clear",
        icon=":material/deselect:",
        on_click=_clear_selection,
        args=(run,),
    )
    ranked = evidence(run)  # most suspect first: the grid shows the selection in that order
    selected = ranked[ranked["id"].isin(chosen)]
    latest = read_decisions(run)
    matching = selected[filter_controls(run, selected, latest, key="map")]
    left.caption(  # written once the filters are known: it counts what they let through
        "Most suspect first."
        + (f" Showing the first {GRID_MAX} of them." if len(matching) > GRID_MAX else "")
    )
    review_grid(run, matching.head(GRID_MAX), latest, prefix="map_")  # columns by modality


# --- computing the map in the background -------------------------------------------------


def _job_key(run: RunView) -> str:
    return f"map_job:{run.path}"


def _known_job(run: RunView) -> str | None:
    """This session's map job for the run, or one already running from elsewhere."""
    remembered = ui().choices.get(_job_key(run))
    if isinstance(remembered, str):
        return remembered
    for job in jobs.running(cache_dir()):
        if job.kind == "map" and job.run and Path(job.run) == run.path:
            ui().choices[_job_key(run)] = job.job_id
            return job.job_id
    return None


def _compute_button(run: RunView, label: str) -> None:
    if st.button(label, key="map_compute", type="primary", icon=":material/scatter_plot:"):
        ui().choices[_job_key(run)] = jobs.start_map(run.path, cache_dir())
        st.rerun()  # show the polling view straight away


@st.fragment(run_every=2)
def _poll(job_id: str) -> None:
    """Redrawn every 2 s while the job runs; the whole page reruns once it stops."""
    status = jobs.status(job_id, cache_dir())
    if status is None or status.state != "running":
        st.rerun()
    elapsed = time.time() - status.started if status.started else 0.0
    st.info(
        f"Computing the map in the background… {elapsed:.0f} s so far (UMAP compiles "
        "itself the first time, so the first map takes longest).",
        icon=":material/hourglass_top:",
    )


def _show_compute_panel(run: RunView, problem: str | None = None) -> None:
    """Start, follow or retry the background job; `problem` says what is wrong with a saved map."""
    job_id = _known_job(run)
    status = jobs.status(job_id, cache_dir()) if job_id else None
    if status is not None and status.state == "running":
        _poll(job_id)
        return
    if problem is not None:
        st.warning(f"{escape_md(problem)} Compute it again.")  # it may quote a path
    elif status is not None and status.state == "done":
        # Finished but no file: someone removed it, or the job wrote elsewhere. Start afresh.
        st.warning("The map job finished but its file is missing; compute it again.")
    elif status is not None:
        st.warning(
            f"Computing the map {status.state}: {escape_md(status.message)}. Try again, or "
            f"run {code_md(f'python -m scoring map --run {run.path}')} in a terminal to see "
            "the details."
        )
    else:
        st.info(
            "This run has no embedding map yet. Computing it runs UMAP on the first "
            "model's penultimate features in a background job (its time grows with the "
            "rows and the machine's load: docs/benchmarks.md has measured times); the page "
            "updates by itself when it is ready.",
            icon=":material/info:",
        )
    first = status is None and problem is None
    _compute_button(run, label="Compute the map" if first else "Compute the map again")


# --- data map ----------------------------------------------------------------------------


def _show_data_map(run: RunView, truth: bool) -> None:
    missing = [c for c in DATA_MAP_COLUMNS if c not in run.score_keys]
    if missing:
        st.info(
            f"This run did not compute {', '.join(f'`{c}`' for c in missing)}, which the "
            "data map needs. Score a new run with these scores (or all scores) on the "
            "Home page.",
            icon=":material/info:",
        )
        return
    frame = run.table[["id", "label", *DATA_MAP_COLUMNS]].copy()
    frame["label name"] = _names(frame["label"], run.label_names)
    hover: dict[str, object] = {
        "id": True,
        "label name": True,
        "correctness": ":.2f",
        "confidence": ":.3f",
        "variability": ":.3f",
    }
    extra: dict[str, object] = {}
    if truth:
        frame["noise"] = np.where(run.table["noisy"].astype(bool), "label flipped", "clean")
        extra = {
            "symbol": "noise",
            "symbol_map": {"clean": "circle", "label flipped": "x"},
            "category_orders": {"noise": ["clean", "label flipped"]},
        }
    frame = sample_note(frame, MAX_POINTS)
    fig = px.scatter(
        frame,
        x="variability",
        y="confidence",
        color="correctness",
        hover_data=hover,
        color_continuous_scale="RdYlGn",
        range_color=(0, 1),
        render_mode="webgl",
        **extra,
    )
    fig.update_traces(marker={"size": POINT_SIZE, "opacity": 0.8})
    fig.update_layout(
        height=550,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.12},
    )
    st.plotly_chart(fig, width="stretch")
    st.caption(
        "Data map (Swayamdipta et al., 2020): per example, **confidence** is the mean "
        "probability of its given label over training epochs and **variability** its standard "
        "deviation; colour is **correctness**, the share of epochs it was predicted right "
        "(green = always). Top-left: *easy-to-learn*. Right: *ambiguous*, the model keeps "
        "changing its mind. Bottom-left: *hard-to-learn*, where mislabeled examples gather."
        + (" Crosses mark the examples whose label was flipped on purpose." if truth else "")
    )


# --- page --------------------------------------------------------------------------------

current = page_header("Map")
truth = evaluation_mode(current)  # before any button: its callbacks read the toggle

st.header("Embedding map")
problem = None
try:
    coords = _map_cached(str(current.path), mtime(store.RunDir(current.path).map_file))
except (InputError, OSError, ValueError) as err:  # a damaged file: offer to recompute
    coords, problem = None, f"The saved map could not be read ({err})."
embedded = None if coords is None else _embedding_frame(current, coords)
if embedded is not None and embedded.empty:
    problem = "The saved map does not match this run's examples."
if embedded is None or embedded.empty:
    _show_compute_panel(current, problem)
else:
    _show_embedding_map(current, embedded, truth)

st.header("Data map")
_show_data_map(current, truth)
