"""The Correlations page, driven through its widgets on a real (tiny) cache."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scoring.read import stats
from scoring.read.views import load_run
from tests.app.pages import figures, open_page, page_text, plotly_array
from tests.conftest import digits_run, text_run

PAGE = "correlations.py"


def matrix_of(fig: dict) -> np.ndarray:
    (trace,) = fig["data"]
    z = plotly_array(trace["z"])
    return np.where(z == None, np.nan, z).astype(float)  # noqa: E711 (null cells, elementwise)


def test_matrix_and_default_pair(app_cache):
    run = load_run(digits_run(app_cache))
    at = open_page(PAGE, run.path)
    assert not at.exception
    assert at.title[0].value == "Correlations"
    assert at.caption[0].value == run.title()
    heat, scatter = figures(at)
    trace = heat["data"][0]
    assert trace["type"] == "heatmap" and (trace["zmin"], trace["zmax"]) == (-1, 1)
    assert trace["x"] == run.score_keys == trace["y"]
    expected = stats.spearman_matrix(run.table, run.score_keys)
    np.testing.assert_allclose(matrix_of(heat), expected.to_numpy(), atol=1e-9)
    assert trace["text"][0][0] == "1.00"  # annotated cells
    # default pair: the most correlated distinct scores
    x, y = stats.strongest_pair(expected)
    assert (at.selectbox(key="w_corr_x").value, at.selectbox(key="w_corr_y").value) == (x, y)
    assert f"between `{x}` and `{y}`: {expected.loc[x, y]:.3f}" in page_text(at)
    # noise was injected: colour by it
    assert {t["name"] for t in scatter["data"]} == {"clean", "injected noise"}


def test_one_class_and_a_chosen_pair(app_cache):
    run = load_run(digits_run(app_cache))
    at = open_page(PAGE, run.path)
    at.selectbox(key="w_corr_class").select(3)
    at.selectbox(key="w_corr_x").select("aum")
    at.selectbox(key="w_corr_y").select("loss").run()
    assert not at.exception
    rows = run.table[run.table["label"] == 3]
    expected = stats.spearman_matrix(rows, run.score_keys)
    heat, scatter = figures(at)
    np.testing.assert_allclose(matrix_of(heat), expected.to_numpy(), atol=1e-9)
    assert f"between `aum` and `loss`: {expected.loc['aum', 'loss']:.3f}" in page_text(at)
    assert sum(len(plotly_array(t["x"])) for t in scatter["data"]) == len(rows)
    assert scatter["layout"]["xaxis"]["title"]["text"] == "aum"


def test_same_score_twice_asks_for_two(app_cache):
    at = open_page(PAGE, digits_run(app_cache), corr_x="loss", corr_y="loss")
    assert not at.exception
    assert "Pick two different scores" in at.info[0].value
    assert len(at.get("plotly_chart")) == 1  # the matrix, no scatter


def test_orienting_flips_lower_is_harder_scores(app_cache):
    run = load_run(digits_run(app_cache))
    at = open_page(PAGE, run.path)
    raw = matrix_of(figures(at)[0])
    at.toggle(key="w_corr_orient").set_value(True).run()
    assert not at.exception
    oriented = matrix_of(figures(at)[0])
    i, j = run.score_keys.index("aum"), run.score_keys.index("loss")  # lower- vs higher-is-harder
    assert oriented[i, j] == pytest.approx(-raw[i, j])
    assert oriented[i, i] == pytest.approx(1.0)


def test_constant_score_leaves_blank_cells_and_a_note(app_cache):
    run = digits_run(app_cache)
    table = pd.read_parquet(run / "scores.parquet")
    table["prototype"] = 0.25
    table.to_parquet(run / "scores.parquet")
    at = open_page(PAGE, run)
    assert not at.exception
    heat = figures(at)[0]
    k = heat["data"][0]["x"].index("prototype")
    assert np.isnan(matrix_of(heat)[k]).all() and np.isnan(matrix_of(heat)[:, k]).all()
    assert heat["data"][0]["text"][k][0] == ""
    assert "`prototype` is constant" in page_text(at)


def test_text_run_without_noise_colours_by_label(app_cache):
    run = load_run(text_run(app_cache))
    at = open_page(PAGE, run.path)
    assert not at.exception
    heat, scatter = figures(at)
    assert heat["data"][0]["x"] == ["el2n", "aum", "loss", "cl_quality"]
    assert {t["name"] for t in scatter["data"]} == set(run.label_names)
    assert "Colour: the label trained on" in page_text(at)


def test_single_score_run_has_no_matrix(app_cache):
    run = text_run(app_cache)
    summary = json.loads((run / "summary.json").read_text())
    summary["scores"] = {"el2n": summary["scores"]["el2n"]}
    (run / "summary.json").write_text(json.dumps(summary))
    at = open_page(PAGE, run)
    assert not at.exception
    assert "holds one score (`el2n`)" in at.info[0].value
    assert not at.get("plotly_chart")


def test_empty_cache_shows_the_way_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert not at.exception
    assert "No finished run yet" in at.info[0].value


def test_big_run_scatter_is_sampled(app_cache):
    run = digits_run(app_cache)
    rng = np.random.default_rng(0)
    n = 20_000
    scores = pd.read_parquet(run / "scores.parquet")
    big = pd.DataFrame({"id": np.arange(n), "label": rng.integers(0, 10, size=n)})
    for col in scores.columns.drop(["id", "label"]):
        big[col] = rng.random(n) if scores[col].dtype.kind == "f" else scores[col].iloc[0]
    big.to_parquet(run / "scores.parquet")
    (run / "predictions.parquet").unlink()
    at = open_page(PAGE, run)
    assert not at.exception
    assert f"Showing a random sample of 5,000 of {n:,} examples." in page_text(at)
    scatter = figures(at)[1]
    assert sum(len(plotly_array(t["x"])) for t in scatter["data"]) == 5000
