"""The health report (`scoring.read.health`) on the session's image and text runs: every issue
type listed once, image-only types absent on text with the reason, ordered by rows affected,
each count equal to the file or reader it comes from; flags written here by hand show up."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import store
from scoring.read import health, neighbours, suspects
from scoring.read.views import load_run
from tests.conftest import digits_run, text_run

REQUIRED = (
    "label",
    "near_duplicate",
    "leakage",
    "outlier",
    "class_imbalance",
    "overlapping_classes",
    "underperforming_group",
    "non_iid",
    "dark",
    "light",
    "blurry",
    "low_information",
    "grayscale",
    "odd_aspect_ratio",
    "odd_size",
    "spurious_correlation",
)
IMAGE_ONLY = (*health.IMAGE_PROPERTIES, "spurious_correlation")


def _by_type(issues: list[dict]) -> dict[str, dict]:
    return {i["type"]: i for i in issues}


def _check_order(issues: list[dict]) -> None:
    """Available first, by rows affected (then count) descending; the absent ones after."""
    flags = [i["available"] for i in issues]
    assert flags == sorted(flags, reverse=True)
    found = [i for i in issues if i["available"]]
    keys = [(i["rows_affected"], i["count"]) for i in found]
    assert keys == sorted(keys, reverse=True)


def test_every_type_is_listed_once_for_an_image_run_with_counts_from_their_sources(app_cache):
    view = load_run(digits_run(app_cache))
    issues = health.health_report(view)
    assert [i["type"] for i in issues].count("label") == 1
    assert sorted(i["type"] for i in issues) == sorted(REQUIRED)
    _check_order(issues)
    got = _by_type(issues)
    counts = neighbours.issue_counts(view)
    assert got["label"]["count"] == suspects.flagged_count(view)
    assert got["near_duplicate"]["count"] == counts["rows_in_groups"]
    assert got["leakage"]["count"] == counts["leaks"]
    assert got["outlier"]["count"] == counts["outliers"]
    record = store.RunDir(view.path).read_health()
    pairs = [p for p in record["overlapping_classes"]["pairs"] if p["flagged"]]
    assert got["overlapping_classes"]["count"] == len(pairs)
    slices = record["underperforming_group"]["slices"]
    assert got["underperforming_group"]["count"] == len(slices)
    assert got["underperforming_group"]["rows_affected"] == sum(s["size"] for s in slices)
    assert got["non_iid"]["count"] == int(record["non_iid"]["flagged"])
    for key in ("label", "near_duplicate", "leakage", "outlier", "class_imbalance", "non_iid"):
        assert got[key]["available"], got[key]
        assert got[key]["severity"] == health.severity(
            got[key]["rows_affected"], got[key]["of"], got[key]["count"]
        )
    # image properties: summary.json's counts, or (a run from before they were computed)
    # listed as absent with how to get them, never silently left out
    props = view.summary.get("image_properties", {})
    for key in health.IMAGE_PROPERTIES:
        if got[key]["available"]:
            assert got[key]["count"] == props[key]["count"]
        else:
            assert "--scores all" in got[key]["reason"]
    assert got["label"]["page"] == "mislabeled.py" and got["outlier"]["page"] == "duplicates.py"
    # Every digit is gray: a gray dataset, not 100% of rows with a grayscale issue.
    n = len(view.table)
    assert (got["grayscale"]["count"], got["grayscale"]["severity"]) == (0, "none")
    assert got["grayscale"]["summary"].startswith(f"a grayscale dataset ({n:,} of {n:,} images")


def test_a_text_run_lists_image_types_as_absent_with_the_reason(app_cache):
    view = load_run(text_run(app_cache))
    issues = health.health_report(view)
    assert sorted(i["type"] for i in issues) == sorted(REQUIRED)
    _check_order(issues)
    got = _by_type(issues)
    for key in IMAGE_ONLY:
        assert not got[key]["available"]
        assert got[key]["reason"] == "an image property: this run's inputs are texts, not images"
        assert got[key]["count"] is None and got[key]["severity"] == "n/a"
    # scored with el2n, aum, loss, cl_quality: out-of-fold probabilities, no embeddings
    assert got["overlapping_classes"]["available"]
    assert not got["underperforming_group"]["available"]
    assert "label-free embeddings" in got["underperforming_group"]["reason"]
    assert "--scores all" in got["non_iid"]["reason"]
    assert not got["label"]["available"] and "cl_issue" in got["label"]["reason"]
    assert got["class_imbalance"]["available"]


def test_flags_written_in_the_run_folder_show_up_by_name_and_in_order(app_cache):
    run = digits_run(app_cache)
    rd = store.RunDir(run)
    record = rd.read_health()
    view = load_run(run)
    n = len(view.table)
    names = view.label_names
    record["overlapping_classes"]["pairs"] = [
        {"classes": [3, 8], "n_overlapping": 40, "joint_probability": 0.1, "share": 0.3,
         "flagged": True},
        {"classes": [1, 7], "n_overlapping": 12, "joint_probability": 0.03, "share": 0.08,
         "flagged": True},
        {"classes": [4, 9], "n_overlapping": 2, "joint_probability": 0.01, "share": 0.01,
         "flagged": False},
    ]  # fmt: skip
    record["underperforming_group"]["slices"] = [
        {"cluster": 4, "size": 3, "accuracy": 0.0, "rest_accuracy": 0.9,
         "quality_ratio": 0.1, "rows": [5, 6, 7]},
    ]  # fmt: skip
    record["non_iid"].update(p_value=0.001, flagged=True)
    rd.write_health(record)
    summary = rd.read_summary()
    summary["image_properties"] = {"dark": {"count": 9, "threshold": 0.2}, "blurry": {"count": 0}}
    # The shape `image_properties.property_summary` writes.
    summary["spurious_correlation"] = {
        "threshold": 0.3, "scores": {"dark": 0.1, "blurry": 0.8}, "flagged": ["dark"]
    }  # fmt: skip
    store.write_json(rd.summary_file, summary)
    view = load_run(run)
    issues = health.health_report(view)
    _check_order(issues)
    got = _by_type(issues)
    overlap = got["overlapping_classes"]
    assert (overlap["count"], overlap["rows_affected"]) == (2, 52)
    assert overlap["summary"].startswith(f"{names[3]}/{names[8]}: 30% of their rows")
    assert health.overlapping_pairs(view) == [(names[3], names[8]), (names[1], names[7])]
    (weak,) = health.weak_slices(view)
    assert weak["ids"].tolist() == view.table["id"].to_numpy()[[5, 6, 7]].tolist()
    assert got["underperforming_group"]["count"] == 1
    assert got["non_iid"]["rows_affected"] == n and got["non_iid"]["severity"] == "high"
    assert issues[0]["type"] == "non_iid"  # every row: the most affected
    assert got["dark"]["available"] and got["dark"]["count"] == 9
    assert got["blurry"]["count"] == 0 and got["blurry"]["severity"] == "none"
    assert not got["grayscale"]["available"]  # not in summary.json: absent, with why
    assert got["grayscale"]["reason"] == (
        "this run has no image property grayscale: it was scored without or before them; "
        "rescore with `--scores all` (the default), or add grayscale to --scores"
    )
    assert got["spurious_correlation"]["count"] == 1
    assert "dark (0.10)" in got["spurious_correlation"]["summary"]
    assert got["spurious_correlation"]["severity"] == "low"


def test_a_run_without_health_json_says_how_to_get_it(app_cache):
    run = digits_run(app_cache)
    store.RunDir(run).health_file.unlink()
    got = _by_type(health.health_report(load_run(run)))
    for key in ("overlapping_classes", "underperforming_group", "non_iid"):
        assert not got[key]["available"] and "winnow score" in got[key]["reason"]
    assert got["label"]["available"]  # the other types still come from their own files
    assert health.overlapping_pairs(load_run(run)) == []


@pytest.mark.parametrize(
    ("rows", "of", "count", "expected"),
    [(5, 100, 5, "high"), (1, 100, 1, "medium"), (99, 10_000, 99, "low"), (0, 100, 0, "none"),
     (0, 100, 2, "low")],
)  # fmt: skip
def test_severity_is_the_share_of_rows_affected(rows, of, count, expected):
    assert health.severity(rows, of, count) == expected


@pytest.mark.parametrize(
    "count, unit, text",
    [(1, "rows", "1 row"), (2, "rows", "2 rows"), (1, "pairs", "1 pair"),
     (1, "classes", "1 class"), (1_500, "rows", "1,500 rows"), (1, "", "1")],
)  # fmt: skip
def test_counts_read_in_the_singular_when_one(count, unit, text):
    assert health.count_text({"count": count, "unit": unit}) == text


def test_the_markdown_report_has_a_row_per_available_type_and_the_reasons(app_cache):
    view = load_run(text_run(app_cache))
    issues = health.health_report(view)
    text = health.report_markdown(view, issues)
    assert text.startswith("# Health report: ")
    for issue in issues:
        if issue["available"]:
            assert f"| {issue['type']} | " in text
        else:
            assert f"- {issue['type']}: " in text
    assert np.isfinite(sum(i["share"] for i in issues if i["available"]))
