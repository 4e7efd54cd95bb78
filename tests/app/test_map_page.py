"""The Map page: embedding map (or how to compute it), colour choices, and the data map.

Most tests use a synthetic map.parquet with the run's ids, so no UMAP runs here; the one
test that clicks "Compute the map" and waits for the real job is marked slow.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_pages._shared import UIState
from scoring import jobs, store
from tests.app.pages import fake_job, figures, open_page, page_text, plotly_array, shown
from tests.conftest import PAGES, digits_run, text_run

PAGE = "map.py"


def _write_map(run: Path, seed: int = 0) -> None:
    """A synthetic map with the run's ids: what the page needs, without UMAP's cost."""
    ids = pd.read_parquet(run / "scores.parquet")["id"]
    xy = np.random.default_rng(seed).normal(size=(len(ids), 2)).astype(np.float32)
    coords = pd.DataFrame({"id": ids, "x": xy[:, 0], "y": xy[:, 1]})
    store.write_parquet(store.RunDir(run).map_file, coords)


def _n_points(fig: dict) -> int:
    return sum(len(plotly_array(t["x"])) for t in fig["data"])


def _colour_title(fig: dict) -> str:
    """The colorbar title of a continuous colouring, or the legend title of a categorical one."""
    layout = fig["layout"]
    if "coloraxis" in layout and "colorbar" in layout["coloraxis"]:
        return layout["coloraxis"]["colorbar"]["title"]["text"]
    return layout["legend"]["title"]["text"]


def test_without_a_map_the_page_explains_and_offers_to_compute_it(app_cache):
    at = open_page(PAGE, digits_run(app_cache))
    assert not at.exception
    assert at.title[0].value == "Map"
    assert "no embedding map yet" in page_text(at)
    assert [b.label for b in at.button] == ["Compute the map"]
    # Only the data map is drawn; the embedding section waits for the job.
    assert len(at.get("plotly_chart")) == 1
    assert not store.RunDir(digits_run(app_cache)).map_file.exists()  # the page computed nothing


def test_with_a_map_the_page_draws_it_coloured_by_hardness(app_cache):
    run = digits_run(app_cache)
    _write_map(run)
    at = open_page(PAGE, run)
    assert not at.exception
    assert not at.button  # nothing to compute
    embed, datamap = figures(at)
    assert [h.value for h in at.header] == ["Embedding map", "Data map"]
    first_score = at.selectbox(key="w_map_color").value
    assert first_score.startswith("score:")
    key = first_score.removeprefix("score:")
    assert _colour_title(embed) == f"{key} (harder →)"
    assert _n_points(embed) == 500
    hover = embed["data"][0]["hovertemplate"]
    for field in ("id", "label name", "predicted", key):
        assert f"{field}=" in hover
    assert "brighter = harder" in page_text(at)


def test_colour_choice_changes_the_figure(app_cache):
    run = digits_run(app_cache)
    _write_map(run)
    at = open_page(PAGE, run)
    select = at.selectbox(key="w_map_color")
    shown = {"given label", "predicted label", "suspect flag", "injected noise", "score: aum"}
    assert shown <= set(select.options)  # the select shows names; .select() takes values

    select.select("score:aum").run()
    fig = figures(at)[0]
    assert _colour_title(fig) == "aum (harder →)"
    assert "low `aum` is suspect" in page_text(at)
    # Oriented: the colour is -aum, so the colour range is the negated raw range.
    aum = pd.read_parquet(run / "scores.parquet")["aum"]
    colours = plotly_array(fig["data"][0]["marker"]["color"])
    assert np.isclose(colours.max(), -aum.min(), rtol=1e-5)

    at.selectbox(key="w_map_color").select("label").run()
    fig = figures(at)[0]
    assert _colour_title(fig) == "label name"
    assert len(fig["data"]) == 10  # one trace per digit

    at.selectbox(key="w_map_color").select("suspect").run()
    fig = figures(at)[0]
    assert [t["name"] for t in fig["data"]] == ["not flagged", "suspect"]
    n_flagged = int((pd.read_parquet(run / "scores.parquet")["cl_issue"] > 0.5).sum())
    assert len(plotly_array(fig["data"][1]["x"])) == n_flagged
    assert "cl_issue" in page_text(at)

    at.selectbox(key="w_map_color").select("noisy").run()
    fig = figures(at)[0]
    assert [t["name"] for t in fig["data"]] == ["clean", "label flipped"]
    n_noisy = int(pd.read_parquet(run / "scores.parquet")["noisy"].sum())
    assert n_noisy > 0 and len(plotly_array(fig["data"][1]["x"])) == n_noisy
    assert "true label=" in fig["data"][1]["hovertemplate"]
    assert not at.exception


def test_data_map_plots_confidence_against_variability(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    (fig,) = figures(at)
    assert fig["layout"]["xaxis"]["title"]["text"] == "variability"
    assert fig["layout"]["yaxis"]["title"]["text"] == "confidence"
    assert fig["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "correctness"
    assert _n_points(fig) == 500
    assert {t["name"] for t in fig["data"]} == {"clean", "label flipped"}  # noise as symbols
    text = page_text(at)
    assert "easy-to-learn" in text and "hard-to-learn" in text and "ambiguous" in text


def test_text_run_has_text_in_hover_and_explains_missing_data_map(app_cache):
    run = text_run(app_cache)  # scores el2n, aum, loss, cl_quality only
    _write_map(run)
    at = open_page(PAGE, run)
    assert not at.exception
    (embed,) = figures(at)  # no data map for this run
    assert "text=" in embed["data"][0]["hovertemplate"]
    hover_texts = [row[-1] for row in embed["data"][0]["customdata"]]
    assert any("a man plays guitar" in t and "‖" in t for t in hover_texts)
    assert "did not compute `confidence`, `variability`, `correctness`" in page_text(at)
    assert "injected noise" not in at.selectbox(key="w_map_color").options  # no injected noise here

    at.selectbox(key="w_map_color").select("suspect").run()
    assert "most suspect examples by `cl_quality`" in page_text(at)
    assert not at.exception


def test_empty_cache_shows_the_info_box(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    # Through app.py's navigation: the info box links to Home, which only resolves there.
    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=60)
    at.switch_page("app_pages/map.py").run()
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.get("plotly_chart")


def test_damaged_map_gets_a_warning_and_a_way_to_recompute(app_cache):
    run = digits_run(app_cache)
    store.RunDir(run).map_file.write_bytes(b"not a parquet file")
    at = open_page(PAGE, run)
    assert not at.exception
    assert "could not be read" in at.warning[0].value
    assert [b.label for b in at.button] == ["Compute the map again"]


def test_a_map_of_other_ids_is_not_drawn(app_cache):
    run = digits_run(app_cache)
    store.write_parquet(
        store.RunDir(run).map_file, pd.DataFrame({"id": [-1, -2], "x": [0.0, 1.0], "y": [0.0, 1.0]})
    )
    at = open_page(PAGE, run)
    assert "does not match" in at.warning[0].value
    assert len(at.get("plotly_chart")) == 1  # the data map only


def test_failed_job_shows_its_message_and_a_retry(app_cache):
    run = digits_run(app_cache)
    job_id = fake_job(app_cache, run, "map", exit_code=2, message="the map needs umap-learn")
    at = AppTest.from_file(str(PAGES / PAGE), default_timeout=60)
    at.session_state["ui"] = UIState(run=str(run), choices={f"map_job:{run}": job_id})
    at.run()
    assert not at.exception
    assert "failed: the map needs umap-learn" in shown(at.warning[0].value)
    assert [b.label for b in at.button] == ["Compute the map again"]


def test_running_job_is_followed_not_restarted(app_cache):
    run = digits_run(app_cache)
    # Alive pid (this test process), no exit code: `jobs.status` reads it as running. The
    # page must find it by itself (another tab started it) and poll instead of offering a start.
    fake_job(app_cache, run, "map", pid=os.getpid())
    at = open_page(PAGE, run)
    assert not at.exception
    assert "Computing the map in the background" in at.info[0].value
    assert not at.button
    assert len(jobs.list_jobs(app_cache)) == 1


# Slow: its job is the suite's third UMAP and, in a fresh process, a second numba JIT
# (about 25 s alone on two shared cores).
@pytest.mark.slow
def test_compute_button_starts_a_job_that_writes_the_map(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    at.button(key="map_compute").click().run()
    assert not at.exception
    job_id = at.session_state["ui"].choices[f"map_job:{run}"]
    assert "Computing the map in the background" in at.info[0].value
    deadline = time.time() + 180
    status = jobs.status(job_id, app_cache)
    while status.state == "running" and time.time() < deadline:
        time.sleep(1)
        status = jobs.status(job_id, app_cache)
    assert status.state == "done", jobs.log_tail(job_id, app_cache)
    assert len(pd.read_parquet(store.RunDir(run).map_file)) == 500
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2  # the embedding map appeared
