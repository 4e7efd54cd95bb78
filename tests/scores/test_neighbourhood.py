"""Neighbourhood issues on data with injected copies: exact, near (shifted, noisy), leaked."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.scores import neighbourhood as nb
from scoring.training.free_features import pixel_features


def _smooth_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3, 32, 32) images in [0, 1]: 4x4 random blocks upsampled, plus fine texture."""
    coarse = rng.random((n, 3, 4, 4))
    img = coarse.repeat(8, axis=2).repeat(8, axis=3)
    return np.clip(img + 0.1 * rng.random((n, 3, 32, 32)), 0, 1)


@pytest.fixture(scope="module")
def injected() -> dict:
    rng = np.random.default_rng(0)
    train = _smooth_images(rng, 300)
    test = _smooth_images(rng, 60)
    exact = [(5, 200), (17, 201), (40, 202)]  # (original, copy) rows of train
    near = [(60, 210), (61, 211), (62, 212), (63, 213), (64, 214)]
    leaks = [(0, 220), (1, 221), (2, 222), (3, 223)]  # (test row, train row)
    for src, dst in exact:
        train[dst] = train[src]
    for src, dst in near[:3]:  # shifted by one pixel
        train[dst] = np.roll(train[src], 1, axis=2)
    for src, dst in near[3:]:  # small noise
        train[dst] = np.clip(train[src] + 0.02 * rng.standard_normal(train[src].shape), 0, 1)
    for src, dst in leaks:
        train[dst] = test[src]
    return {"train": train, "test": test, "exact": exact, "near": near, "leaks": leaks}


def test_knn_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(20, 4))
    d, i = nb.knn(x, 3, y)
    mu = x.mean(0)  # both sides centred on the query rows' mean
    xn = (x - mu) / np.linalg.norm(x - mu, axis=1, keepdims=True)
    yn = (y - mu) / np.linalg.norm(y - mu, axis=1, keepdims=True)
    full = 1 - xn @ yn.T
    np.testing.assert_array_equal(i, np.argsort(full, axis=1)[:, :3])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :3], atol=1e-6)
    d_self, i_self = nb.knn(x, 1)
    full = 1 - xn @ xn.T
    np.fill_diagonal(full, np.inf)
    np.testing.assert_array_equal(i_self[:, 0], full.argmin(1))


def test_groups_find_exact_and_near_copies(injected: dict) -> None:
    train = injected["train"]
    feats = pixel_features(train)
    groups = nb.dup_groups(feats, nb.content_keys(train))
    for src, dst in injected["exact"]:  # exact recall 1.0
        assert groups[src] == groups[dst] >= 0
    found = [groups[s] == groups[d] >= 0 for s, d in injected["near"]]
    assert np.mean(found) >= 0.8, found
    injected_rows = {r for pair in injected["exact"] + injected["near"] for r in pair}
    false = set(np.nonzero(groups >= 0)[0]) - injected_rows
    assert len(false) <= 3, sorted(false)
    # The score agrees: every exact copy is flagged (>= Z_NEAR) and ranks above the bulk.
    score = nb.near_dup(features_free=feats)
    assert all(score[d] >= nb.Z_NEAR for _, d in injected["exact"])
    assert np.median(score) == pytest.approx(0.0, abs=1e-9)


def test_leaks_found(injected: dict) -> None:
    train, test = injected["train"], injected["test"]
    ids = np.arange(1000, 1000 + len(test))
    leak = nb.leak_of(
        pixel_features(train), nb.content_keys(train),
        pixel_features(test), nb.content_keys(test), ids,
    )  # fmt: skip
    for t, r in injected["leaks"]:
        assert leak[r] == ids[t]
    assert (leak >= 0).sum() == len(injected["leaks"])
    score = nb.leakage(features_free=pixel_features(train), features_free_test=pixel_features(test))
    top = set(np.argsort(-score)[: len(injected["leaks"])])
    assert top == {r for _, r in injected["leaks"]}


def test_leakage_without_test_rows_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_array_equal(
        nb.leakage(features_free=x, features_free_test=np.zeros((0, 3))), np.zeros(10)
    )


def test_outlier_is_mean_knn_distance() -> None:
    x = np.array([[1.0, 0.0, 0.2], [1.0, 0.1, 0.0], [0.9, -0.1, 0.1], [0.0, 1.0, -1.0]])
    out = nb.outlier(features_free=x)
    xc = x - x.mean(0)
    xn = xc / np.linalg.norm(xc, axis=1, keepdims=True)
    full = 1 - xn @ xn.T
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :3].mean(1)  # 3 = every other row
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.argmax() == 3


def test_text_keys_normalize_case_and_space() -> None:
    keys = nb.content_keys(["A  cat\tsat", "a cat sat", "a dog sat", ("x Y", "z"), ("x y", "z")])
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] == keys[4]


def test_issue_counts() -> None:
    groups = np.array([0, 0, -1, 1, 1, 1, -1])
    leak = np.array([-1, 5, -1, -1, -1, -1, -1])
    counts = nb.issue_counts(groups, leak, np.ones(7), np.array([0, 0, 0, 0, 0, 1, 1]))
    assert counts["duplicate_groups"] == 2
    assert counts["rows_in_duplicate_groups"] == 5
    assert counts["redundant_rows"] == 3
    assert counts["leaks"] == 1
    assert counts["class_imbalance"]["max_over_min"] == 2.5
