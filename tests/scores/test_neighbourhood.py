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
    d, i = nb._knn(x, 3, y)
    mu = x.mean(0)  # both sides centred on the query rows' mean
    xn = (x - mu) / np.linalg.norm(x - mu, axis=1, keepdims=True)
    yn = (y - mu) / np.linalg.norm(y - mu, axis=1, keepdims=True)
    full = 1 - xn @ yn.T
    np.testing.assert_array_equal(i, np.argsort(full, axis=1)[:, :3])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :3], atol=1e-6)
    d_self, i_self = nb._knn(x, 1)
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
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)  # not centred
    full = 1 - xn @ xn.T
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :3].mean(1)  # 3 = every other row
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.argmax() == 3


def test_outlier_ranks_as_cleanlab_datalab() -> None:
    # Datalab's outlier score is exp(-d / median d) of the same mean 10-NN cosine distance
    # d, from scikit-learn's neighbours: inverted, it must give our values.
    from cleanlab import Datalab

    x = np.random.default_rng(7).normal(0.3, 1.0, size=(400, 12))
    x[:5] *= 4  # a few far rows
    lab = Datalab(data={"label": np.zeros(400, dtype=int)}, label_name="label", verbosity=0)
    lab.find_issues(features=x, issue_types={"outlier": {}})
    theirs = lab.get_issues("outlier")["outlier_score"].to_numpy()
    ours = nb.outlier(features_free=x)
    np.testing.assert_allclose(ours, -np.log(theirs) * np.median(ours), rtol=1e-5)


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


def _shift_jpeg(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(3, H, W) in [0, 1] shifted by (dy, dx) with edges replicated, saved as JPEG q75."""
    import io

    from PIL import Image

    pad = np.pad(image, ((0, 0), (3, 3), (3, 3)), mode="edge")
    h, w = image.shape[1:]
    moved = pad[:, 3 + dy : 3 + dy + h, 3 + dx : 3 + dx + w]
    buf = io.BytesIO()
    Image.fromarray(np.rint(moved.transpose(1, 2, 0) * 255).astype(np.uint8)).save(
        buf, format="JPEG", quality=75
    )
    return np.asarray(Image.open(buf), dtype=np.float64).transpose(2, 0, 1) / 255


def test_registered_distance_is_the_best_shift() -> None:
    rng = np.random.default_rng(5)
    a = rng.random((6, 3, 20, 20)).astype(np.float32)
    b = rng.random((6, 3, 20, 20)).astype(np.float32)
    b[0] = np.roll(a[0], (1, -2), axis=(1, 2))  # a pure shift within the 2-px margin
    got = nb._registered_pairs(a, b, np.arange(6)[:, None])[:, 0]
    s = 2  # 20 // 10
    window = lambda img, dy, dx: img[:, s + dy : 20 - s + dy, s + dx : 20 - s + dx]  # noqa: E731
    naive = [
        min(
            float(np.mean((window(a[i], 0, 0) - window(b[i], dy, dx)) ** 2))
            for dy in range(-s, s + 1)
            for dx in range(-s, s + 1)
        )
        for i in range(6)
    ]
    np.testing.assert_allclose(got, naive, rtol=1e-5)
    assert got[0] == 0.0


def test_shifted_reencoded_copies_and_leaks_are_found() -> None:
    rng = np.random.default_rng(6)
    train = _smooth_images(rng, 300)
    test = _smooth_images(rng, 60)
    shifts = [(2, 3), (-3, 1), (3, -3), (-2, -2), (1, 3), (0, -3)]
    near = [(10 + i, 250 + i) for i in range(len(shifts))]
    for (src, dst), (dy, dx) in zip(near, shifts, strict=True):
        train[dst] = _shift_jpeg(train[src], dy, dx)
    leaks = [(4, 270), (9, 271), (13, 272)]  # (test row, train row)
    for (t, dst), (dy, dx) in zip(leaks, shifts, strict=False):
        train[dst] = _shift_jpeg(test[t], dy, dx)
    feats, test_feats = pixel_features(train), pixel_features(test)
    keys, test_keys = nb.content_keys(train), nb.content_keys(test)
    # The pixels up to a shift find every shifted copy (bench/duplicates.py measures the
    # embeddings alone: they miss most of them).
    groups = nb.dup_groups(feats, keys, train)
    assert all(groups[s] == groups[d] >= 0 for s, d in near)
    assert set(np.nonzero(groups >= 0)[0]) == {r for pair in near for r in pair}
    ids = np.arange(500, 560)
    leak = nb.leak_of(feats, keys, test_feats, test_keys, ids, train, test)
    assert {int(r): int(v) for r, v in enumerate(leak) if v >= 0} == {
        r: int(ids[t]) for t, r in leaks
    }
    assert nb.shifted_pairs(train[:1]) == [] and nb.shifted_pairs(train, test[:0]) == []
    # The training side computed once and shared gives the same groups and leaks, and the
    # training pairs are registered once instead of twice.
    calls = []
    registered = nb._registered_pairs
    nb._registered_pairs = lambda a, b, index: calls.append(a is b) or registered(a, b, index)
    try:
        shift = nb.shift_index(train, feats)
        np.testing.assert_array_equal(nb.dup_groups(feats, keys, train, shift), groups)
        np.testing.assert_array_equal(
            nb.leak_of(feats, keys, test_feats, test_keys, ids, train, test, shift), leak
        )
    finally:
        nb._registered_pairs = registered
    assert calls == [True, False]  # train x train once, then train x test
    assert nb.shift_index(train[:1]) is None


def test_one_rule_flags_groups_leaks_and_the_scores_docs() -> None:
    """On embeddings (no pixel check) a row is in a duplicate group exactly when its
    `near_dup` is >= Z_NEAR and its nearest distance is at most NEAR_FRACTION x the median,
    and leaks likewise by `leakage`: the rule the score docs state (issue 22)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 24))
    x[200:220] = x[:20] + rng.normal(scale=np.geomspace(1e-4, 3.0, 20)[:, None], size=(20, 24))
    y = rng.normal(size=(40, 24))
    y[:10] = x[50:60] + rng.normal(scale=np.geomspace(1e-4, 3.0, 10)[:, None], size=(10, 24))
    keys = [str(i) for i in range(len(x))]  # no exact copies by content
    d1 = nb._knn(x, 1)[0][:, 0]
    small = d1 <= nb.NEAR_FRACTION * np.median(d1)
    in_group = nb.dup_groups(x, keys) >= 0
    flagged = (nb.near_dup(features_free=x) >= nb.Z_NEAR) & small
    assert 0 < in_group.sum() < 40 and np.array_equal(in_group, flagged)
    d_test = nb._knn(x, 1, y)[0][:, 0]
    leak = nb.leak_of(x, keys, y, [f"t{j}" for j in range(len(y))], np.arange(len(y))) >= 0
    by_score = (nb.leakage(features_free=x, features_free_test=y) >= nb.Z_NEAR) & (
        d_test <= nb.NEAR_FRACTION * np.median(d1)
    )
    assert 0 < leak.sum() <= 10 and np.array_equal(leak, by_score)
    for doc in (nb.NEAR_DUP_DOC, nb.LEAKAGE_DOC):
        assert "≥ 3 *and*" in doc or "≥ 3 and at most half the median" in doc


def test_registered_pairs_on_threads_equal_one_thread(monkeypatch) -> None:
    """Blocks of pairs spread over threads give exactly the one-thread distances."""
    rng = np.random.default_rng(9)
    a = rng.integers(0, 255, (40, 3, 16, 16), dtype=np.uint8)
    index = rng.integers(0, 40, (40, 4))
    monkeypatch.setattr(nb, "_PAIR_BLOCK", 7)  # 160 pairs (fewer once deduplicated): many blocks
    monkeypatch.setattr(nb, "cpu_threads", lambda: 1)
    one = nb._registered_pairs(a, a, index)
    monkeypatch.setattr(nb, "cpu_threads", lambda: 3)
    np.testing.assert_array_equal(nb._registered_pairs(a, a, index), one)
    assert one.shape == (40, 4) and np.isfinite(one).all()


def test_one_self_search_serves_near_dup_leakage_and_the_pixel_check(monkeypatch) -> None:
    """The training rows' centred self-search is made once (to K_PAIRS neighbours) and
    sliced for the k = 1 searches, even with another search between (two entries, least
    recently used out); the same rows changed in place are searched again."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    x[20] = x[3]  # a tie the slices must keep in index order
    y = rng.normal(size=(40, 8)).astype(np.float32)
    nb._SELF_SEARCH.clear()
    want = [nb.near_dup(features_free=x), nb.leakage(features_free=x, features_free_test=y)]
    want_k5 = nb._knn(x, nb.K_PAIRS)
    searches = []
    inner = nb.knn
    monkeypatch.setattr(
        nb, "knn", lambda *a, **kw: searches.append(a[1] is None) or inner(*a, **kw)
    )
    nb._SELF_SEARCH.clear()
    got = [nb.near_dup(features_free=x), nb.leakage(features_free=x, features_free_test=y)]
    got_k5 = nb._knn(x, nb.K_PAIRS)
    for a, b in zip(got + list(got_k5), want + list(want_k5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert searches == [True, False]  # one self-search, one train -> test search
    # The pixel check's perceptual search in between does not evict the embeddings' one;
    # a third set of rows evicts the least recently used.
    other, third = x[:, ::-1].copy(), x[:, :4].copy()
    nb._knn(other, 3)
    np.testing.assert_array_equal(nb._knn(x, 1)[1], want_k5[1][:, :1])
    assert searches == [True, False, True]
    nb._knn(third, 2)
    nb._knn(x, 1)
    nb._knn(other, 1)
    assert searches == [True, False, True, True, True]  # `other` was the oldest
    x[0] += 1.0  # the same array, other values: not the cached search
    d, _ = nb._knn(x, 1)
    assert searches == [True, False, True, True, True, True]
    mu = x.astype(np.float64).mean(axis=0)
    _, ref = inner((x - mu).astype(np.float32), k=1)
    np.testing.assert_array_equal(d, ref)
