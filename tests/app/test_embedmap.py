"""The embedding map (UMAP) and the Map page's suspect flags, on the real tiny digits run.

UMAP's first import JIT-compiles with numba (tens of seconds), so the whole suite computes a
map only twice: both calls here, on a private copy of the run (the session cache stays
map-less for the page tests).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.errors import InputError
from scoring.read.maps import compute_map, read_map, suspect_flags
from scoring.read.views import load_run
from tests.conftest import digits_run, text_run


@pytest.fixture(scope="module")
def mapped(built_cache: Path, tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """A copy of the digits run, mapped twice with the same seed: (run, first, second)."""
    run = tmp_path_factory.mktemp("mapped") / "run"
    shutil.copytree(digits_run(built_cache), run)
    first = pd.read_parquet(compute_map(run, seed=0))
    second = pd.read_parquet(compute_map(run, seed=0))
    return run, first, second


def test_map_has_one_row_per_example_with_the_scores_ids(mapped):
    run, first, _ = mapped
    ids = pd.read_parquet(run / "scores.parquet")["id"]
    assert list(first.columns) == ["id", "x", "y"]
    assert len(first) == len(ids) == 500
    assert first["id"].tolist() == ids.tolist()
    assert store.RunDir(run).map_file.exists()


def test_map_coordinates_are_finite_and_spread(mapped):
    _, first, _ = mapped
    xy = first[["x", "y"]].to_numpy()  # (N, 2)
    assert np.isfinite(xy).all()
    assert xy.std(axis=0).min() > 0  # not collapsed to a point


def test_map_is_deterministic_for_a_fixed_seed(mapped):
    _, first, second = mapped
    pd.testing.assert_frame_equal(first, second)


def test_read_map_returns_what_compute_map_wrote(mapped):
    run, first, _ = mapped
    pd.testing.assert_frame_equal(read_map(run), first)


def test_compute_map_refuses_an_unfinished_run(built_cache, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(digits_run(built_cache), run)
    store.write_status(run, "running", progress=0.5, message="run 1/2")
    with pytest.raises(InputError, match="this run is not finished"):
        compute_map(run)
    with pytest.raises(InputError, match="not a Winnow run folder"):
        compute_map(tmp_path / "nowhere")
    assert not store.RunDir(run).map_file.exists()


def test_read_map_without_a_map_is_none_and_a_bad_map_is_refused(tmp_path):
    assert read_map(tmp_path) is None
    store.write_parquet(store.RunDir(tmp_path).map_file, pd.DataFrame({"id": [1], "x": [0.0]}))
    with pytest.raises(InputError, match="lacks column"):
        read_map(tmp_path)


def test_suspects_use_cleanlab_flag_when_present(built_cache):
    view = load_run(digits_run(built_cache))
    flags, how = suspect_flags(view)
    assert flags.dtype == bool and flags.shape == (len(view.table),)
    np.testing.assert_array_equal(flags, view.table["cl_issue"].to_numpy() > 0.5)
    assert "cl_issue" in how


def test_suspects_fall_back_to_top_fraction_of_default_detector(built_cache):
    view = load_run(text_run(built_cache))  # el2n, aum, loss, cl_quality: no cl_issue
    flags, how = suspect_flags(view, fraction=0.25)
    n = len(view.table)
    assert flags.sum() == round(0.25 * n)
    assert "cl_quality" in how
    # Low cl_quality is suspect: every flagged example scores at most every unflagged one.
    quality = view.table["cl_quality"].to_numpy()
    assert quality[flags].max() <= quality[~flags].min()
