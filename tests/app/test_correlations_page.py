"""The Correlations page, driven through its widgets on a real (tiny) cache."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from scoring.read import stats
from scoring.read.views import hardness, load_run
from scoring.scores.registry import REGISTRY
from tests.app.pages import figures, open_page, page_text, plotly_array, shown
from tests.conftest import digits_run, text_run

PAGE = "correlations.py"


def matrix_of(fig: dict) -> np.ndarray:
    (trace,) = fig["data"]
    z = plotly_array(trace["z"])
    return np.where(z == None, np.nan, z).astype(float)  # noqa: E711 (null cells, elementwise)


def label_dependent(run) -> list[str]:
    return [k for k in run.score_keys if not REGISTRY[k].label_free]


def oriented(run, rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame({k: hardness(rows[k].to_numpy(), run.higher_is_harder(k)) for k in keys})


def test_matrix_is_oriented_clustered_and_label_dependent_by_default(app_cache):
    run = load_run(digits_run(app_cache))
    at = open_page(PAGE, run.path)
    assert not at.exception
    assert at.title[0].value == "Correlations"
    assert shown(at.caption[0].value) == run.title()
    heat, scatter = figures(at)
    trace = heat["data"][0]
    assert trace["type"] == "heatmap" and (trace["zmin"], trace["zmax"]) == (-1, 1)
    keys = label_dependent(run)
    assert "prototype" in run.score_keys and "prototype" not in trace["x"]  # label-free: off
    assert sorted(trace["x"]) == sorted(keys) and trace["x"] == trace["y"]
    assert "larger = harder" in heat["layout"]["title"]["text"]
    # Independent check of one cell: scipy's Spearman on the scores times -1 where lower = harder.
    i, j = trace["x"].index("aum"), trace["x"].index("loss")  # lower- vs higher-is-harder
    rho = spearmanr(-run.table["aum"], run.table["loss"]).statistic
    assert matrix_of(heat)[i, j] == pytest.approx(rho, abs=1e-9) and rho > 0
    expected = stats.spearman_matrix(oriented(run, run.table, keys), keys)
    assert trace["x"] == stats.clustered_order(expected)
    assert trace["text"][0][0] == "1.00"  # annotated cells
    # Default pair: EL2N (early in training) against forgetting (all of it), not the most
    # correlated pair, which is one quantity measured twice (the bug: aum vs confidence).
    x, y = "el2n", "forgetting"
    assert (at.selectbox(key="w_corr_x").value, at.selectbox(key="w_corr_y").value) == (x, y)
    assert abs(expected.loc[x, y]) < 0.9 < abs(expected.loc[stats.informative_pair(expected)])
    assert f"between `{x}` and `{y}` (larger = harder for both): {expected.loc[x, y]:.3f}" in (
        page_text(at)
    )
    # The truth of the injected noise colours the points only in evaluation mode.
    assert "injected noise" not in {t["name"] for t in scatter["data"]}
    (evaluation,) = [t for t in at.toggle if t.label.startswith("Evaluation mode")]
    evaluation.set_value(True).run()
    scatter = [f for f in figures(at) if "one point per example" in f["layout"]["title"]["text"]]
    assert {t["name"] for t in scatter[0]["data"]} == {"clean", "injected noise"}
    assert scatter[0]["layout"]["title"]["text"]


def test_raw_toggle_and_label_free_toggle(app_cache):
    run = load_run(digits_run(app_cache))
    at = open_page(PAGE, run.path)
    at.toggle(key="w_corr_raw").set_value(True).run()
    at.toggle(key="w_corr_label_free").set_value(True).run()
    assert not at.exception
    heat = figures(at)[0]
    keys = heat["data"][0]["x"]
    assert sorted(keys) == sorted(run.score_keys)  # label-free scores back in
    raw = stats.spearman_matrix(run.table, run.score_keys)
    np.testing.assert_allclose(matrix_of(heat), raw.loc[keys, keys].to_numpy(), atol=1e-9)
    i, j = keys.index("aum"), keys.index("loss")
    assert matrix_of(heat)[i, j] < 0  # raw: high aum = easy, high loss = hard


def test_one_class_and_a_chosen_pair(app_cache):
    run = load_run(digits_run(app_cache))
    at = open_page(PAGE, run.path)
    at.selectbox(key="w_corr_class").select(3)
    at.selectbox(key="w_corr_x").select("aum")
    at.selectbox(key="w_corr_y").select("loss").run()
    assert not at.exception
    rows = run.table[run.table["label"] == 3]
    rho = spearmanr(-rows["aum"], rows["loss"]).statistic
    heat, scatter = figures(at)
    assert f"between `aum` and `loss` (larger = harder for both): {rho:.3f}" in page_text(at)
    assert sum(len(plotly_array(t["x"])) for t in scatter["data"]) == len(rows)
    assert scatter["layout"]["xaxis"]["title"]["text"] == "−aum"  # flipped, and says so
    xs = np.concatenate([plotly_array(t["x"]) for t in scatter["data"]])
    np.testing.assert_allclose(np.sort(xs), np.sort(-rows["aum"].to_numpy()))


def test_same_score_twice_asks_for_two(app_cache):
    at = open_page(PAGE, digits_run(app_cache), corr_x="loss", corr_y="loss")
    assert not at.exception
    assert "Pick two different scores" in at.info[0].value
    assert len(at.get("plotly_chart")) == 1  # the matrix, no scatter


def test_clustered_order_puts_agreeing_scores_together():
    rng = np.random.default_rng(0)
    a, b = rng.random(200), rng.random(200)
    frame = pd.DataFrame(
        {
            "a1": a,
            "b1": b,
            "a2": a + 0.05 * rng.random(200),
            "b2": b + 0.05 * rng.random(200),
            "const": 1.0,
        }
    )
    order = stats.clustered_order(stats.spearman_matrix(frame, list(frame)))
    assert order[-1] == "const"  # undefined row last
    assert abs(order.index("a1") - order.index("a2")) == 1
    assert abs(order.index("b1") - order.index("b2")) == 1


def test_informative_pair_skips_one_quantity_measured_twice():
    keys = ["loss", "confidence", "el2n", "aum"]
    rho = np.array(
        [[1, 0.99, 0.8, 0.6], [0.99, 1, 0.7, 0.5], [0.8, 0.7, 1, 0.9], [0.6, 0.5, 0.9, 1]]
    )
    matrix = pd.DataFrame(rho, index=keys, columns=keys)
    assert stats.strongest_pair(matrix) == ("loss", "confidence")
    assert stats.informative_pair(matrix) == ("el2n", "aum")
    only = matrix.loc[["loss", "confidence"], ["loss", "confidence"]]
    assert stats.informative_pair(only) == ("loss", "confidence")  # nothing else to show


def test_constant_score_leaves_blank_cells_and_a_note(app_cache):
    run = digits_run(app_cache)
    table = pd.read_parquet(run / "scores.parquet")
    table["aum"] = 0.25
    table.to_parquet(run / "scores.parquet")
    at = open_page(PAGE, run)
    assert not at.exception
    heat = figures(at)[0]
    k = heat["data"][0]["x"].index("aum")
    assert k == len(heat["data"][0]["x"]) - 1  # undefined rows go last
    assert np.isnan(matrix_of(heat)[k]).all() and np.isnan(matrix_of(heat)[:, k]).all()
    assert heat["data"][0]["text"][k][0] == ""
    assert "`aum` is constant" in page_text(at)


def test_text_run_without_noise_colours_by_label(app_cache):
    run = load_run(text_run(app_cache))
    at = open_page(PAGE, run.path)
    assert not at.exception
    # No forgetting here: the next default pair, early-training EL2N against AUM.
    assert (at.selectbox(key="w_corr_x").value, at.selectbox(key="w_corr_y").value) == (
        "el2n",
        "aum",
    )
    heat, scatter = figures(at)
    assert sorted(heat["data"][0]["x"]) == sorted(["el2n", "aum", "loss", "cl_quality"])
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
