"""A 2-D map of a run's embedding space (UMAP), computed once in the background and cached.

Uses the first run's final-model penultimate features, L2-normalised: the space the trained
model sees (unlike `prototype`, which measures in label-independent embeddings). Also the
small read-side helpers the Map page colours it with (no Streamlit here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scoring import store
from scoring.errors import InputError
from scoring.read.suspects import default_detector
from scoring.read.views import RunView, hardness

# Share of examples the simple "suspect" view flags when cleanlab's own flag is absent.
SUSPECT_FRACTION = 0.1


def compute_map(run: Path, *, seed: int = 0, n_neighbors: int = 15) -> Path:
    """Write `<run>/map.parquet` with columns id, x, y; returns its path.

    Parameters
    ----------
    run : Path
        A finished run folder.
    seed : int
        UMAP's random state (fixed, so the map does not move between computations).
    n_neighbors : int
        UMAP's neighbourhood size, capped below the number of examples.
    """
    run = Path(run)
    rd = store.RunDir(run)
    rd.require_finished()  # not a run, damaged (which file, how to repair) or unfinished
    try:
        import umap
    except ImportError as err:
        raise InputError("the embedding map needs umap-learn: pip install umap-learn") from err
    source = store.run_source(rd.read_config())
    own = (  # a run of the user's own training maps the features they give
        f"{run} was {source} without penultimate features; pass features= to the Recorder's "
        "end_run (or --features to winnow import) to map it"
    )
    if source != "scored" and not rd.run_file(0).exists():  # out-of-fold probabilities only
        raise InputError(own)
    recorded = rd.read_run(0)
    if "features" not in recorded:
        raise InputError(
            own
            if source != "scored"
            else f"{run} recorded no embedding features; score it again to map it"
        )
    features = recorded["features"].astype(np.float64)  # (N, D)
    ids = rd.read_split().train_ids  # (N,)
    n = features.shape[0]
    if n < 4:  # UMAP needs a neighbourhood; a 3-point "map" says nothing anyway
        raise InputError(f"a map needs at least 4 examples; this run has {n}")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    features = features / np.maximum(norms, 1e-12)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, n - 1),
        random_state=seed,
        n_jobs=1,  # random_state forces one thread anyway; say so instead of warning
    )
    coords = reducer.fit_transform(features)  # (N, 2)
    out = rd.map_file
    store.write_parquet(
        out,
        pd.DataFrame(
            {"id": ids, "x": coords[:, 0].astype(np.float32), "y": coords[:, 1].astype(np.float32)}
        ),
    )
    return out


def read_map(run: Path) -> pd.DataFrame | None:
    """The run's map (id, x, y), or None when it was not computed yet.

    Raises `store.DamagedRun` when the file cannot be read (the fix: compute it again).
    """
    rd = store.RunDir(run)
    path = rd.map_file
    if not path.exists():
        return None
    with rd.reading(path):  # a damaged map: DamagedRun, whose fix is computing it again
        frame = pd.read_parquet(path)
    missing = {"id", "x", "y"} - set(frame.columns)
    if missing:
        raise store.DamagedRun(
            rd.path, rd.relative(path), f"lacks column(s) {', '.join(sorted(missing))}"
        )
    return frame


def suspect_flags(view: RunView, fraction: float = SUSPECT_FRACTION) -> tuple[np.ndarray, str]:
    """A simple yes/no "suspect" per example, and a sentence saying how it was decided.

    cleanlab's `cl_issue` flag when the run has it; otherwise the top `fraction` of examples
    by the Mislabeled page's default detector (`suspects.default_detector`), oriented so
    larger = more suspect.

    Returns
    -------
    flags : ndarray of shape (n_examples,), bool
    how : str
    """
    table = view.table
    keys = view.score_keys
    if "cl_issue" in keys:
        flags = table["cl_issue"].to_numpy(dtype=np.float64) > 0.5
        return flags, "suspect = flagged by cleanlab's label-issue filter (`cl_issue`)"
    key = default_detector(view)  # InputError when the run holds no score
    values = hardness(table[key].to_numpy(), view.higher_is_harder(key))  # (N,)
    n_flag = max(1, int(round(fraction * len(values))))
    # Stable sort on -values: ties keep table order, so the flags never flicker.
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
    flags = np.zeros(len(values), dtype=bool)
    flags[order[:n_flag]] = True
    return flags, (
        f"suspect = the {fraction:.0%} most suspect examples by `{key}`, the Mislabeled "
        "page's default detector"
    )
