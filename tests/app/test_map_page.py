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

from app_pages._review import selected_ids
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


def test_with_a_map_the_page_draws_it_coloured_by_label_and_selectable(app_cache):
    run = digits_run(app_cache)
    _write_map(run)
    at = open_page(PAGE, run)
    assert not at.exception
    assert not at.button  # nothing to compute, nothing selected
    embed, datamap = figures(at)
    assert [h.value for h in at.header] == ["Embedding map", "Data map"]
    assert at.selectbox(key="w_map_color").value == "label"  # classes first
    assert _colour_title(embed) == "label name"
    assert _n_points(embed) == 500
    hover = embed["data"][0]["hovertemplate"]
    for field in ("id", "label name", "predicted"):
        assert f"{field}=" in hover
    # Every point carries its id first in customdata: a selection names its examples by it.
    ids = pd.read_parquet(run / "scores.parquet").set_index("id")
    for trace in embed["data"]:
        custom = plotly_array(trace["customdata"])
        assert set(ids.loc[custom[:, 0].astype(int), "label"].astype(str)) == {trace["name"]}
    (chart,) = [c for c in at.get("plotly_chart") if c.proto.id and "map_chart" in c.proto.id]
    assert {m for m in chart.proto.selection_mode} == {1, 2}  # box and lasso
    assert "legend" in embed["layout"] and embed["layout"]["legend"]["orientation"] == "h"


def test_selected_ids_reads_customdata_of_a_selection_event():
    event = {
        "selection": {
            "points": [
                {"curve_number": 0, "point_index": 3, "customdata": [17, 0.5]},
                {"curve_number": 2, "point_index": 3, "customdata": [4]},
                {"curve_number": 2, "point_index": 5, "customdata": [17]},  # repeated id
                {"curve_number": 1, "point_index": 1},  # no customdata: skipped
            ]
        }
    }
    assert selected_ids(event) == [17, 4]
    assert selected_ids({"selection": {"points": []}}) == []
    assert selected_ids(None) == []


def test_a_selection_opens_a_grid_with_the_same_decision_buttons(app_cache):
    run = digits_run(app_cache)
    _write_map(run)
    table = pd.read_parquet(run / "scores.parquet")
    chosen = table["id"].head(30).tolist()
    at = open_page(PAGE, run, **{f"map_selected:{run}": chosen})
    assert not at.exception
    assert at.subheader[0].value == "30 selected examples"
    assert "Showing the first 24" in page_text(at)
    grid = [int(b.key.rsplit("_", 1)[1]) for b in at.button if b.key.startswith("map_drop_")]
    assert len(grid) == 24 and set(grid) <= set(chosen)
    # Most suspect first, as on Mislabeled (the engine's ranking over these ids).
    from scoring.read.suspects import suspects
    from scoring.read.views import load_run

    ranked = suspects(load_run(run), split="train")
    assert grid == ranked[ranked["id"].isin(chosen)]["id"].head(24).tolist()
    at.button(key=f"map_drop_{grid[0]}").click().run()
    at.button(key=f"map_keep_{grid[1]}").click().run()
    from scoring.read import decisions

    assert decisions.latest(run)[["id", "action"]].values.tolist() == [
        [grid[0], "drop"],
        [grid[1], "keep"],
    ]
    assert at.button(key=f"map_drop_{grid[0]}").proto.type == "primary"
    at.button(key="map_clear").click().run()
    assert not at.subheader or "selected" not in at.subheader[0].value


def test_the_selection_grid_has_cards_by_modality_and_the_filters(app_cache):
    from scoring.read.suspects import suspects
    from scoring.read.views import load_run
    from tests.app.test_examples_page import grid_rows

    run = digits_run(app_cache)
    _write_map(run)
    table = pd.read_parquet(run / "scores.parquet")
    chosen = table["id"].head(60).tolist()
    at = open_page(PAGE, run, **{f"map_selected:{run}": chosen})
    assert not at.exception
    assert grid_rows(at, "map_") == [5, 5, 5, 5, 5]  # 24 cards, 5 a row
    assert "60 of 60 rows match" in page_text(at)
    at.multiselect(key="map_filter_classes").select("3").run()
    assert not at.exception
    grid = [int(b.key.rsplit("_", 1)[1]) for b in at.button if b.key.startswith("map_drop_")]
    ranked = suspects(load_run(run), split="train")
    threes = ranked[ranked["id"].isin(chosen) & (ranked["label"] == "3")]["id"].tolist()
    assert threes and grid == threes[:24]
    assert f"{len(threes)} of 60 rows match" in page_text(at)
    at.text_input(key="map_filter_search").input(f"#{threes[-1]}").run()
    assert [b.key for b in at.button if b.key.startswith("map_drop_")] == [f"map_drop_{threes[-1]}"]

    text = text_run(app_cache)
    _write_map(text)
    ids = pd.read_parquet(text / "scores.parquet")["id"].head(6).tolist()
    at = open_page(PAGE, text, **{f"map_selected:{text}": ids})
    assert not at.exception
    assert grid_rows(at, "map_") == [2, 2, 2]
    assert at.text_input(key="map_filter_search").label == "Search text or #id"


def test_colour_choice_changes_the_figure(app_cache):
    run = digits_run(app_cache)
    _write_map(run)
    at = open_page(PAGE, run)
    select = at.selectbox(key="w_map_color")
    shown = {"given label", "predicted label", "suspect flag", "score: aum"}
    assert shown <= set(select.options)  # the select shows names; .select() takes values
    assert "injected noise" not in select.options  # the truth waits for evaluation mode

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

    (toggle,) = at.toggle
    toggle.set_value(True).run()
    assert "injected noise" in at.selectbox(key="w_map_color").options
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
    assert len(fig["data"]) == 1 and "Crosses mark" not in page_text(at)  # truth hidden
    (toggle,) = at.toggle
    toggle.set_value(True).run()
    (fig,) = figures(at)
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
