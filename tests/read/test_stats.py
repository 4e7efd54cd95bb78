"""scoring.read.stats against hand computations, numpy and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from scoring.errors import InputError
from scoring.read import stats
from scoring.read.views import normalize

# --- bins and histograms -------------------------------------------------------------------


def test_bin_edges_continuous_span_the_finite_values():
    edges = stats.bin_edges([0.5, np.nan, 2.5, 1.0], bins=4)
    np.testing.assert_allclose(edges, [0.5, 1.0, 1.5, 2.0, 2.5])


def test_bin_edges_one_bin_per_integer_level():
    # forgetting-like counts 0..3: bins centred on 0, 1, 2, 3
    np.testing.assert_allclose(stats.bin_edges([0, 3, 1, 1], bins=40), [-0.5, 0.5, 1.5, 2.5, 3.5])
    # more levels than bins: equal-width bins instead
    assert len(stats.bin_edges(np.arange(100.0), bins=10)) == 11


@pytest.mark.parametrize(
    ("values", "expected"),
    [([2.25, 2.25], [1.75, 2.75]), ([np.nan], np.linspace(0, 1, 4)), ([], np.linspace(0, 1, 4))],
)
def test_bin_edges_degenerate(values, expected):
    np.testing.assert_allclose(stats.bin_edges(values, bins=3), expected)


def test_bin_edges_rejects_bad_arguments():
    with pytest.raises(InputError, match="bins"):
        stats.bin_edges([1.0, 2.0], bins=0)
    with pytest.raises(InputError, match="range"):
        stats.bin_edges([1.0, 2.0], range=(1.0, 1.0))
    with pytest.raises(InputError, match=r"shape \(n_examples,\)"):
        stats.bin_edges(np.zeros((2, 2)))


def test_histogram_by_hand():
    counts, edges = stats.histogram([0.0, 0.1, 0.5, 0.9, 1.0, np.nan], bins=2)
    np.testing.assert_allclose(edges, [0.0, 0.5, 1.0])
    # [0, 0.5) holds 0, 0.1; the last bin [0.5, 1] is closed and holds 0.5, 0.9, 1.0; NaN dropped
    np.testing.assert_array_equal(counts, [2, 3])


def test_histogram_matches_numpy_and_respects_range():
    values = np.random.default_rng(0).normal(size=1000)
    counts, edges = stats.histogram(values, bins=17)
    expected, expected_edges = np.histogram(values, bins=17)
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_allclose(edges, expected_edges)
    counts, _ = stats.histogram(values, bins=4, range=(0.0, 1.0))
    assert counts.sum() == ((values >= 0) & (values <= 1)).sum()


def test_histograms_by_class_by_hand():
    values = [0.0, 0.2, 0.6, 1.0, 0.4, np.nan]
    labels = [0, 1, 1, 1, 0, 2]
    counts, edges = stats.histograms_by_class(values, labels, n_classes=3, bins=2)
    np.testing.assert_allclose(edges, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(counts, [[2, 0], [1, 2], [0, 0]])


def test_histograms_by_class_rows_match_numpy_on_shared_edges():
    rng = np.random.default_rng(1)
    values, labels = rng.gamma(2.0, size=2000), rng.integers(0, 5, size=2000)
    counts, edges = stats.histograms_by_class(values, labels, n_classes=5, bins=30)
    assert counts.shape == (5, 30)
    for k in range(5):
        np.testing.assert_array_equal(counts[k], np.histogram(values[labels == k], edges)[0])
    np.testing.assert_array_equal(counts.sum(axis=0), stats.histogram(values, bins=30)[0])


def test_histograms_by_class_rejects_bad_labels():
    with pytest.raises(InputError, match="n_classes = 2"):
        stats.histograms_by_class([0.1, 0.2], [0, 2], n_classes=2)
    with pytest.raises(InputError, match=r"shape \(2,\)"):
        stats.histograms_by_class([0.1, 0.2], [0, 1, 1], n_classes=2)


# --- summary tables --------------------------------------------------------------------------


def test_summary_table_by_hand():
    table = stats.summary_table([1.0, 2.0, 3.0, 4.0, np.nan])
    assert list(table.columns) == stats.SUMMARY_COLUMNS
    assert list(table.index) == ["all"]
    row = table.loc["all"]
    assert row["count"] == 4  # NaN left out
    assert row["mean"] == pytest.approx(2.5)
    assert row["std"] == pytest.approx(np.sqrt(1.25))  # population std: mean of (1.5², 0.5², ...)
    assert (row["min"], row["25%"], row["50%"], row["75%"], row["max"]) == pytest.approx(
        (1.0, 1.75, 2.5, 3.25, 4.0)
    )


def test_summary_table_per_class_with_an_empty_class():
    table = stats.summary_table([1.0, 3.0, 10.0], labels=[0, 0, 2], label_names=["a", "b", "c"])
    assert list(table.index) == ["a", "b", "c", "all"]
    assert table["count"].tolist() == [2, 0, 1, 3]
    assert table.loc["a", "mean"] == pytest.approx(2.0)
    assert table.loc["a", "std"] == pytest.approx(1.0)
    assert table.loc["b"].drop("count").isna().all()
    assert table.loc["all", "max"] == 10.0


def test_summary_table_within_class_zscores_show_mean_0_std_1():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=300)
    values = rng.normal(loc=labels * 5.0, scale=labels + 1.0)
    table = stats.summary_table(normalize(values, labels, "class"), labels, ["x", "y", "z"])
    assert (table["mean"] == 0.0).all()  # round-off residue snapped to an exact 0
    np.testing.assert_allclose(table["std"], 1.0)


def test_summary_table_default_names_and_single_name():
    assert list(stats.summary_table([1.0, 2.0], labels=[1, 0]).index) == ["0", "1", "all"]
    assert list(stats.summary_table([1.0], name="cat").index) == ["cat"]


# --- flags -----------------------------------------------------------------------------------


def test_is_binary():
    assert stats.is_binary([0.0, 1.0, 1.0, np.nan])
    assert not stats.is_binary([0.0, 0.5])
    assert not stats.is_binary([np.nan])


def test_flag_counts_by_hand():
    overall = stats.flag_counts([1.0, 0.0, 0.0, 1.0])
    assert overall.loc["all"].tolist() == [2, 2, 0.5]
    by_class = stats.flag_counts([1.0, 0.0, 0.0, 1.0, 1.0], [0, 0, 1, 1, 1], ["cat", "dog"])
    assert by_class["flagged"].tolist() == [1, 2]
    assert by_class["not flagged"].tolist() == [1, 1]
    np.testing.assert_allclose(by_class["fraction flagged"], [0.5, 2 / 3])
    with pytest.raises(InputError, match="0/1"):
        stats.flag_counts([0.0, 0.3])


# --- rank correlations ------------------------------------------------------------------------


def test_spearman_matrix_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, size=200).astype(float)  # many ties
    frame = pd.DataFrame({"a": a, "b": a + rng.normal(size=200), "c": rng.normal(size=200)})
    matrix = stats.spearman_matrix(frame, ["a", "b", "c"])
    expected = spearmanr(frame[["a", "b", "c"]].to_numpy()).statistic
    np.testing.assert_allclose(matrix.to_numpy(), expected, atol=1e-12)
    assert list(matrix.index) == list(matrix.columns) == ["a", "b", "c"]


def test_spearman_matrix_by_hand():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [10.0, 20.0, 40.0, 30.0]})
    # ranks y = 1, 2, 4, 3: 1 - 6·Σd² / (n(n² - 1)) = 1 - 6·2 / 60 = 0.8
    assert stats.spearman_matrix(frame, ["x", "y"]).loc["x", "y"] == pytest.approx(0.8)
    reversed_ = frame.assign(y=-frame["x"])
    assert stats.spearman_matrix(reversed_, ["x", "y"]).loc["x", "y"] == pytest.approx(-1.0)


def test_spearman_matrix_constant_column_is_nan():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "flat": [0.0, 0.0, 0.0], "b": [3.0, 1.0, 2.0]})
    matrix = stats.spearman_matrix(frame, ["a", "flat", "b"])
    assert matrix.loc["flat"].isna().all() and matrix["flat"].isna().all()
    assert matrix.loc["a", "a"] == 1.0
    assert matrix.loc["a", "b"] == pytest.approx(spearmanr([1, 2, 3], [3, 1, 2]).statistic)
    assert stats.constant_columns(frame, ["a", "flat", "b"]) == ["flat"]


def test_spearman_matrix_drops_rows_with_a_missing_value():
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "b": [1.0, 3.0, 0.0, 2.0]})
    assert stats.spearman_matrix(frame, ["a", "b"]).loc["a", "b"] == pytest.approx(
        spearmanr([1, 2, 4], [1, 3, 2]).statistic
    )


def test_spearman_matrix_rejects_missing_columns():
    with pytest.raises(InputError, match="no column zz"):
        stats.spearman_matrix(pd.DataFrame({"a": [1.0]}), ["a", "zz"])


def test_strongest_pair():
    matrix = pd.DataFrame(
        [[1.0, 0.2, -0.9], [0.2, 1.0, np.nan], [-0.9, np.nan, 1.0]],
        index=list("abc"),
        columns=list("abc"),
    )
    assert stats.strongest_pair(matrix) == ("a", "c")  # by |ρ|, ignoring the diagonal and NaN
    nan = pd.DataFrame(np.full((2, 2), np.nan), index=list("ab"), columns=list("ab"))
    assert stats.strongest_pair(nan) is None


# --- run stability and pairs ---------------------------------------------------------------------

SUMMARY = {
    "scores": {
        "el2n": {
            "spearman_loo": 0.75,
            "spearman_pairwise": 0.6,
            "spearman_loo_per_run": [0.7, 0.8],
            "stability_curve": [{"n_runs": 1, "spearman": 0.6}],
            "stability_chance": 0.1,
        },
        "grand": {"spearman_loo": 0.3, "spearman_loo_per_run": [0.3, None]},
        "cl_issue": {"spearman_loo": None},
        "old": {"spearman_single_vs_mean": 0.9, "spearman_per_run": [0.9, 0.9]},
    }
}


def test_run_stability_reads_the_summary():
    got = stats.run_stability(SUMMARY, "el2n")
    assert (got.loo, got.pairwise, got.chance) == (0.75, 0.6, 0.1)
    assert got.loo_per_run.tolist() == [0.7, 0.8]
    assert got.curve.to_dict("list") == {"n_runs": [1], "spearman": [0.6]}
    assert not got.unstable
    low = stats.run_stability(SUMMARY, "grand")
    assert low.unstable and np.isnan(low.pairwise) and np.isnan(low.loo_per_run[1])
    assert low.curve.empty
    assert stats.run_stability(SUMMARY, "cl_issue") is None  # computed once
    assert stats.run_stability(SUMMARY, "missing") is None
    # A summary written before these figures: no crash, and it says so.
    assert stats.run_stability(SUMMARY, "old") is None
    assert stats.stability_outdated(SUMMARY, "old")
    assert not any(stats.stability_outdated(SUMMARY, k) for k in ("el2n", "cl_issue", "missing"))


def test_pair_frame_colours():
    table = pd.DataFrame(
        {"id": [7, 8, 9], "label": [0, 1, 1], "a": [0.1, 0.2, np.nan], "b": [1.0, 2.0, 3.0]}
    )
    points = stats.pair_frame(table, "a", "b", ["cat", "dog"])
    assert points["id"].tolist() == [7, 8]  # the NaN row is dropped
    assert points["colour"].tolist() == ["cat", "dog"] == points["label"].tolist()
    noisy = stats.pair_frame(table.assign(noisy=[True, False, False]), "a", "b", ["cat", "dog"])
    assert noisy["colour"].tolist() == ["injected noise", "clean"]
    with pytest.raises(InputError, match="two different"):
        stats.pair_frame(table, "a", "a", ["cat", "dog"])


# --- rank stability across runs -------------------------------------------------------------


def test_rank_stability_matches_scipy_by_hand():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    signal = rng.normal(size=200)
    per_run = signal[None] + rng.normal(scale=1.0, size=(5, 200))  # (R, N)
    got = stats.rank_stability(per_run)
    loo = [
        spearmanr(per_run[r], np.delete(per_run, r, axis=0).mean(axis=0)).statistic
        for r in range(5)
    ]
    pairs = [spearmanr(per_run[a], per_run[b]).statistic for a in range(5) for b in range(a + 1, 5)]
    assert got["spearman_loo_per_run"] == pytest.approx(loo, abs=1e-12)
    assert got["spearman_loo"] == pytest.approx(np.mean(loo), abs=1e-12)
    assert got["spearman_pairwise"] == pytest.approx(np.mean(pairs), abs=1e-12)
    assert [p["n_runs"] for p in got["curve"]] == [1, 2]
    # One run against another is exactly the pairwise figure, whichever pairs are drawn.
    assert got["curve"][0]["spearman"] == pytest.approx(np.mean(pairs), abs=0.08)
    assert got["curve"][1]["spearman"] > got["curve"][0]["spearman"]  # averaging helps
    assert got["chance"] == pytest.approx(1.96 / np.sqrt(199))


def test_rank_stability_of_pure_noise_sits_at_chance():
    """The old figure (a run against a mean containing it) reads ~1/sqrt(R) on pure noise."""
    per_run = np.random.default_rng(0).normal(size=(4, 3000))
    got = stats.rank_stability(per_run)
    assert abs(got["spearman_loo"]) < got["chance"]
    assert abs(got["spearman_pairwise"]) < got["chance"]
    included = np.mean(
        [
            np.corrcoef(stats._rank_rows(r[None])[0], stats._rank_rows(per_run.mean(0)[None])[0])[
                0, 1
            ]
            for r in per_run
        ]
    )
    assert included == pytest.approx(0.5, abs=0.05)  # 1/sqrt(4): what the old figure showed


def test_rank_stability_needs_two_runs():
    assert stats.rank_stability(np.ones((1, 10))) is None
    with pytest.raises(InputError, match="n_runs, n_examples"):
        stats.rank_stability(np.ones(10))
