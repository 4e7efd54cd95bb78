"""The dataset-level issues of `health.json`, each on data built here to have (or lack) it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from scoring.errors import InputError
from scoring.scores import health

with warnings.catch_warnings():
    from cleanlab import Datalab
    from cleanlab.dataset import find_overlapping_classes


def _blobs(centres: np.ndarray, per: int, seed: int = 0, spread: float = 1.0):
    """`per` Gaussian rows around each centre; (features (C*per, D), blob index (C*per,))."""
    rng = np.random.default_rng(seed)
    blob = np.repeat(np.arange(len(centres)), per)
    return centres[blob] + spread * rng.standard_normal((len(blob), centres.shape[1])), blob


def _oof(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Out-of-fold probabilities of a logistic regression (5 folds)."""
    model = LogisticRegression(max_iter=500)
    return cross_val_predict(model, features, labels, cv=5, method="predict_proba")


# --- overlapping classes ---------------------------------------------------------------------


def _overlap_data():
    """Four classes, a Gaussian blob each, far apart, except classes 1 and 2: one blob."""
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    features, labels = _blobs(centres, 100)
    return features, labels


def test_the_two_classes_on_one_blob_top_the_overlapping_pairs():
    features, labels = _overlap_data()
    oof = _oof(features, labels)
    found = health.overlapping_classes(labels=labels, oof_probs=oof)
    top = found["pairs"][0]
    assert top["classes"] == [1, 2] and top["flagged"]
    assert top["share"] > 0.2  # half of each looks like the other: far over 5%
    assert [p["classes"] for p in found["pairs"] if p["flagged"]] == [[1, 2]]
    # cleanlab's own ranking agrees, and the counts are its counts
    theirs = find_overlapping_classes(labels=labels, pred_probs=oof)
    first = theirs.iloc[0]
    assert sorted((int(first.iloc[0]), int(first.iloc[1]))) == [1, 2]
    assert top["n_overlapping"] == int(first.iloc[2])
    assert top["share"] == pytest.approx(top["n_overlapping"] / 200)
    # per-class quality: the two merged classes are the worst two
    worst = [q["class"] for q in found["class_quality"][:2]]
    assert sorted(worst) == [1, 2]
    assert {q["class"] for q in found["class_quality"]} == {0, 1, 2, 3}
    assert all(q["n"] == 100 for q in found["class_quality"])


def test_separated_classes_flag_no_pair():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    features, labels = _blobs(centres, 80)
    found = health.overlapping_classes(labels=labels, oof_probs=_oof(features, labels))
    assert not any(p["flagged"] for p in found["pairs"])


# --- weak slices -----------------------------------------------------------------------------


def _slice_data():
    """Eight separate blobs of 40 rows, 3 classes at random; the out-of-fold model gets every
    row right (p 0.9 on its label) except in blob 5, where it puts 0.9 on another class."""
    rng = np.random.default_rng(1)
    centres = 20.0 * rng.standard_normal((8, 10))
    features, blob = _blobs(centres, 40, seed=2)
    labels = rng.integers(0, 3, size=len(blob))
    wrong = blob == 5
    predicted = np.where(wrong, (labels + 1) % 3, labels)
    oof = np.full((len(labels), 3), 0.05)
    oof[np.arange(len(labels)), predicted] = 0.9
    return features, labels, oof, wrong


def test_a_blob_the_model_gets_wrong_is_the_one_weak_slice():
    features, labels, oof, wrong = _slice_data()
    found = health.weak_slices(labels=labels, oof_probs=oof, features_free=features, n_clusters=8)
    assert found["n_clusters"] == 8 and found["method"] == "kmeans"
    (weak,) = found["slices"]
    assert weak["size"] == 40 and weak["accuracy"] == 0.0 and weak["rest_accuracy"] == 1.0
    assert weak["rows"] == np.flatnonzero(wrong).tolist()
    assert found["accuracy"] == pytest.approx(7 / 8)
    # Datalab's underperforming-group score of that cluster, given the same clusters
    clusters = np.repeat(np.arange(8), 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
        lab.find_issues(
            pred_probs=oof, issue_types={"underperforming_group": {"cluster_ids": clusters}}
        )
    theirs = lab.get_issues("underperforming_group")
    assert theirs["is_underperforming_group_issue"].to_numpy().tolist() == wrong.tolist()
    assert weak["quality_ratio"] == pytest.approx(
        theirs["underperforming_group_score"].to_numpy()[wrong][0]
    )


def test_the_default_clusters_find_the_same_rows():
    features, labels, oof, wrong = _slice_data()
    found = health.weak_slices(labels=labels, oof_probs=oof, features_free=features)
    assert found["n_clusters"] == 18  # round(sqrt(320))
    rows = sorted(r for s in found["slices"] for r in s["rows"])
    assert rows == np.flatnonzero(wrong).tolist()
    assert all(s["accuracy"] == 0.0 for s in found["slices"])


def test_no_slice_when_every_cluster_does_as_well():
    features, labels, oof, wrong = _slice_data()
    oof = np.full((len(labels), 3), 0.05)
    oof[np.arange(len(labels)), labels] = 0.9
    found = health.weak_slices(labels=labels, oof_probs=oof, features_free=features)
    assert found["slices"] == []


# --- non-IID order ---------------------------------------------------------------------------


def _ordered_data():
    """Five classes, a blob each, 60 rows per class, rows sorted by label."""
    rng = np.random.default_rng(3)
    features, labels = _blobs(8.0 * rng.standard_normal((5, 6)), 60, seed=4)
    return features, labels


def test_rows_sorted_by_label_are_not_iid_and_shuffled_they_are():
    features, labels = _ordered_data()
    ordered = health.non_iid(labels=labels, features_free=features)
    assert ordered["flagged"] and ordered["p_value"] < 0.01
    order = np.random.default_rng(5).permutation(len(labels))
    shuffled = health.non_iid(labels=labels[order], features_free=features[order])
    assert not shuffled["flagged"] and shuffled["p_value"] > 0.05


def test_non_iid_leaves_the_global_generator_alone():
    features, labels = _ordered_data()
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    health.non_iid(labels=labels, features_free=features)  # Datalab seeds np.random inside
    assert np.random.random() == expected


# --- the record --------------------------------------------------------------------------------


def test_the_record_says_what_each_issue_lacks():
    features, labels, oof, _ = _slice_data()
    full = health.dataset_health(labels=labels, oof_probs=oof, features_free=features)
    assert full["version"] == health.HEALTH_VERSION and full["n_examples"] == len(labels)
    for name in ("overlapping_classes", "underperforming_group", "non_iid"):
        assert full[name]["available"] and name in full["seconds"]
    no_oof = health.dataset_health(labels=labels, oof_probs=None, features_free=features)
    assert no_oof["overlapping_classes"] == {"available": False, "missing": ["oof_probs"]}
    assert no_oof["underperforming_group"] == {"available": False, "missing": ["oof_probs"]}
    assert no_oof["non_iid"]["available"]
    nothing = health.dataset_health(labels=labels, oof_probs=None, features_free=None)
    assert nothing["underperforming_group"]["missing"] == ["oof_probs", "features_free"]
    assert nothing["non_iid"]["missing"] == ["features_free"] and nothing["seconds"] == {}


def test_bad_shapes_are_refused_with_the_expected_shape():
    features, labels, oof, _ = _slice_data()
    with pytest.raises(InputError, match="n_examples"):
        health.overlapping_classes(labels=labels[:-1], oof_probs=oof)
    with pytest.raises(InputError):
        health.weak_slices(labels=labels, oof_probs=oof, features_free=features[:, 0])


def test_a_check_that_fails_costs_its_entry_not_the_run(monkeypatch):
    features, labels, oof, _ = _slice_data()

    def broken(**_):
        raise ValueError("all-zero embeddings")

    monkeypatch.setitem(health._ISSUES, "non_iid", (("features_free",), broken))
    record = health.dataset_health(labels=labels, oof_probs=oof, features_free=features)
    assert record["non_iid"] == {
        "available": False,
        "error": "ValueError: all-zero embeddings",
    }
    assert record["overlapping_classes"]["available"]
