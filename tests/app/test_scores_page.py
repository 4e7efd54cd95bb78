"""The Scores page, driven through its widgets on a real (tiny) cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from scoring.read.views import load_run
from scoring.scores import REGISTRY
from tests.app.pages import figures, open_page, page_text, plotly_array, shown
from tests.conftest import digits_run, text_run

PAGE = "scores.py"


def test_default_view_shows_histogram_summary_and_stability(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    assert not at.exception
    assert at.title[0].value == "Scores"
    assert shown(at.caption[0].value) == load_run(run).title()
    assert at.selectbox(key="w_score").value == "el2n"
    assert "Higher = harder" in page_text(at)
    (fig,) = figures(at)
    (bars,) = fig["data"]
    assert bars["type"] == "bar" and plotly_array(bars["y"]).sum() == 500
    summary = at.dataframe[0].value
    assert list(summary.index) == ["all"] and summary.loc["all", "count"] == 500
    block = load_run(run).summary["scores"]["el2n"]
    assert [m.label for m in at.metric] == [
        "Spearman, each run vs the mean of the others",
        "Spearman between two runs",
    ]
    assert at.metric[0].value == f"{block['spearman_loo']:.3f}"
    assert at.metric[1].value == f"{block['spearman_pairwise']:.3f}"


def _edit_summary(run, key: str, **block) -> None:
    summary = json.loads((run / "summary.json").read_text())
    summary["scores"][key] = {"higher_is_harder": True, "version": 1, **block}
    (run / "summary.json").write_text(json.dumps(summary))
    # Pages re-read a run when its status or scores file changes: move status.json's mtime on.
    status = run / "status.json"
    stamp = status.stat().st_mtime + 1
    os.utime(status, (stamp, stamp))


def test_stability_curve_chance_line_and_unstable_warning(app_cache):
    run = digits_run(app_cache)
    curve = [{"n_runs": 1, "spearman": 0.3}, {"n_runs": 2, "spearman": 0.45}]
    _edit_summary(
        run,
        "el2n",
        spearman_loo=0.42,
        spearman_pairwise=0.3,
        spearman_loo_per_run=[0.4, 0.44, 0.42, 0.42],
        stability_curve=curve,
        stability_chance=0.088,
    )
    at = open_page(PAGE, run)
    assert not at.exception
    assert at.metric[0].value == "0.420" and at.metric[1].value == "0.300"
    (warning,) = [w.value for w in at.warning]
    assert "unstable across training runs" in warning and "0.420 < 0.5" in warning
    chart = figures(at)[1]
    assert plotly_array(chart["data"][0]["y"]).tolist() == [0.3, 0.45]
    (chance,) = chart["layout"]["shapes"]
    assert chance["y0"] == pytest.approx(0.088)

    _edit_summary(run, "el2n", spearman_loo=0.5, stability_curve=curve[:1])
    at = open_page(PAGE, run)
    assert not at.exception and not at.warning  # the warning starts below 0.5
    assert len(figures(at)) == 1  # one point is no curve


def test_a_summary_from_before_stability_does_not_crash(app_cache):
    run = digits_run(app_cache)
    _edit_summary(run, "el2n", spearman_single_vs_mean=0.9, spearman_per_run=[0.9, 0.9])
    at = open_page(PAGE, run)
    assert not at.exception
    assert "rescore for stability figures" in page_text(at)
    assert len(at.metric) == 0


def test_score_doc_and_direction_follow_the_pick(app_cache):
    at = open_page(PAGE, digits_run(app_cache))
    at.selectbox(key="w_score").select("aum").run()
    assert not at.exception
    assert "Lower = harder" in page_text(at)
    assert at.expander[0].markdown[0].value == REGISTRY["aum"].doc.strip()


def test_class_normalization_gives_zero_mean_per_class(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run)
    raw = at.dataframe[0].value
    at.radio(key="w_norm").set_value("class")
    at.radio(key="w_view").set_value("by_class").run()
    assert not at.exception
    table = at.dataframe[0].value
    names = load_run(run).label_names
    assert list(table.index) == [*names, "all"]
    np.testing.assert_allclose(table["mean"], 0.0, atol=1e-9)
    np.testing.assert_allclose(table["std"], 1.0)
    assert table.loc["all", "count"] == raw.loc["all", "count"]
    assert raw.loc["all", "mean"] != pytest.approx(0.0)
    (fig,) = figures(at)
    assert [t["name"] for t in fig["data"]] == names  # one overlaid outline per class


def test_faceted_view_has_a_panel_per_class(app_cache):
    at = open_page(PAGE, digits_run(app_cache), view="by_class")
    at.radio(key="w_class_layout").set_value("faceted").run()
    assert not at.exception
    (fig,) = figures(at)
    assert len(fig["data"]) == 10
    assert sum(plotly_array(t["y"]).sum() for t in fig["data"]) == 500


def test_one_class_view(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run, view="one_class")
    at.selectbox(key="w_class").select(3).run()
    assert not at.exception
    table = at.dataframe[0].value
    labels = load_run(run).table["label"]
    assert list(table.index) == ["3"]
    assert table.loc["3", "count"] == (labels == 3).sum()
    (fig,) = figures(at)
    assert plotly_array(fig["data"][0]["y"]).sum() == (labels == 3).sum()


def test_binary_score_gets_counts_and_no_spread(app_cache):
    run = digits_run(app_cache)
    at = open_page(PAGE, run, score="cl_issue", norm="class")
    assert not at.exception
    (fig,) = figures(at)
    assert [t["name"] for t in fig["data"]] == ["not flagged", "flagged"]
    flagged = int(load_run(run).table["cl_issue"].sum())
    assert plotly_array(fig["data"][1]["y"]).tolist() == [flagged]
    assert "0/1 flag" in page_text(at)
    assert "computed once (not per run)" in page_text(at)
    assert len(at.metric) == 0


def test_run_missing_scores_falls_back_to_one_it_has(app_cache):
    # A choice remembered from another run (forgetting) that this text run lacks.
    at = open_page(PAGE, text_run(app_cache), score="forgetting", view="by_class")
    assert not at.exception
    assert at.selectbox(key="w_score").options == ["el2n", "aum", "loss", "cl_quality"]
    assert at.selectbox(key="w_score").value == "el2n"
    assert list(at.dataframe[0].value.index) == [*load_run(text_run(app_cache)).label_names, "all"]
    at.selectbox(key="w_score").select("cl_quality").run()
    assert "computed once (not per run)" in page_text(at)


def test_empty_cache_shows_the_way_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.get("plotly_chart")


def test_fifty_thousand_examples_plot_bins_not_points(app_cache):
    run = digits_run(app_cache)
    rng = np.random.default_rng(0)
    n = 50_000
    scores = pd.read_parquet(run / "scores.parquet")
    big = pd.DataFrame({"id": np.arange(n), "label": rng.integers(0, 10, size=n)})
    for col in scores.columns.drop(["id", "label"]):
        big[col] = rng.random(n) if scores[col].dtype.kind == "f" else scores[col].iloc[0]
    big.to_parquet(run / "scores.parquet")
    (run / "predictions.parquet").unlink()
    at = open_page(PAGE, run, view="by_class")
    assert not at.exception
    (fig,) = figures(at)
    assert all(len(plotly_array(t["x"])) == 40 for t in fig["data"])
    assert at.dataframe[0].value.loc["all", "count"] == n
