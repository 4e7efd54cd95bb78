"""One contract, every registered score (the scikit-learn `test_common.py` idea).

Each test is parametrized over `REGISTRY`, so a new score is held to the contract the moment
it gets its registry line.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

from scoring.errors import InputError
from scoring.scores import REGISTRY, Score, ScoreResult, compute, resolve
from scoring.scores._checks import RECORDED

N, K, R, T, D = 40, 3, 2, 5, 6

# Which axis of each recorded array runs over examples (None: no example axis).
N_AXIS: dict[str, int | None] = {
    "labels": 0,
    "loss": 2,
    "logit_given": 2,
    "logit_other": 2,
    "prob_given": 2,
    "correct": 2,
    "probs_early": 1,
    "probs_final": 1,
    "features": 1,
    "features_free": 0,
    "features_free_test": None,  # its rows are test rows, not examples
    "label_prior": None,
    "oof_probs": 0,
    "n_prototypes": None,
    "grad_norm": 1,
    "grad_free_norm": 1,
    "grad_logit_sq": 1,
    "tracin_self": 1,
    "input_grad_var": 1,
    "annotations": 0,
    "images": 0,
    "image_sizes": 0,
}

ORDER = [
    "el2n", "forgetting", "aum", "confidence", "variability", "correctness",
    "loss", "pvi", "cl_quality", "cl_issue", "prototype",
    "grand", "vog", "tracin", "el2n_free", "grand_free", "grand_logit_sq",
    "near_dup", "outlier", "leakage", "knn_shapley", "consensus",
    "consensus_label", "consensus_quality", "annotator_agreement",
    "dark", "light", "blurry", "low_information", "grayscale",
    "odd_aspect_ratio", "odd_size",
]  # fmt: skip

SCORES = list(REGISTRY.values())
IDS = list(REGISTRY)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def recorded() -> dict[str, Any]:
    """A small random but coherent recorded run: every array derives from one set of logits."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.arange(N) % K)  # every class present
    onehot = np.eye(K)[labels]  # (N, K)
    # Logits drift toward the label over epochs, with noise, so correctness varies.
    drift = np.linspace(-0.5, 2.5, T)[None, :, None, None]  # (1, T, 1, 1)
    logits = drift * onehot + rng.normal(size=(R, T, N, K))  # (R, T, N, K)
    probs = _softmax(logits)  # (R, T, N, K)
    rows = np.arange(N)
    logit_given = logits[:, :, rows, labels]  # (R, T, N)
    others = np.where(onehot.astype(bool), -np.inf, logits)
    prob_given = probs[:, :, rows, labels]  # (R, T, N)
    centers = rng.normal(scale=3.0, size=(K, D))
    # Three annotators: right 90%, 70% and 50% of the time, each missing a tenth of the votes
    # (the first never, so every example has one).
    wrong = rng.integers(0, K, size=(N, 3))
    annotations = np.where(rng.random((N, 3)) < [0.9, 0.7, 0.5], labels[:, None], wrong)
    annotations[:, 1:][rng.random((N, 2)) < 0.1] = -1
    return {
        "labels": labels.astype(np.int64),
        "loss": (-np.log(prob_given)).astype(np.float32),
        "logit_given": logit_given.astype(np.float32),
        "logit_other": others.max(axis=-1).astype(np.float32),
        "prob_given": prob_given.astype(np.float32),
        "correct": probs.argmax(axis=-1) == labels,
        "probs_early": probs[:, 1].astype(np.float32),  # (R, N, K)
        "probs_final": _softmax(3 * onehot + rng.normal(size=(R, N, K))).astype(np.float32),
        "features": (centers[labels] + rng.normal(size=(R, N, D))).astype(np.float32),
        "features_free": rng.normal(scale=3.0, size=(N, D)).astype(np.float32),
        "features_free_test": rng.normal(scale=3.0, size=(N // 2, D)).astype(np.float32),
        "label_prior": np.bincount(labels, minlength=K) / N,
        "oof_probs": _softmax(2 * onehot + rng.normal(size=(N, K))),
        "n_prototypes": 4,
        # Gradient quantities are non-negative per run and example.
        "grad_norm": rng.gamma(2.0, size=(R, N)),
        "grad_free_norm": rng.gamma(2.0, size=(R, N)),
        "grad_logit_sq": rng.gamma(2.0, size=(R, N)) ** 2,
        "tracin_self": rng.gamma(1.0, size=(R, N)) * 1e-3,
        "input_grad_var": rng.gamma(1.0, size=(R, N)) * 1e-2,
        "annotations": annotations.astype(np.int64),
        # An image run's pixels (0..255, one size) and stored (width, height), some odd.
        "images": rng.integers(0, 256, size=(N, 3, 8, 8), dtype=np.uint8),
        "image_sizes": np.where(rng.random((N, 1)) < 0.1, [[40, 9]], rng.integers(7, 10, (N, 2))),
    }


def _call(score: Score, arrays: dict[str, Any]) -> np.ndarray:
    return score.fn(**{name: arrays[name] for name in score.needs})


def _permuted(arrays: dict[str, Any], perm: np.ndarray) -> dict[str, Any]:
    out = dict(arrays)
    for name, axis in N_AXIS.items():
        if axis is not None:
            out[name] = np.take(arrays[name], perm, axis=axis)
    return out


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_output_shape_and_dtype(score: Score, recorded: dict[str, Any]) -> None:
    out = _call(score, recorded)
    assert out.shape == ((R, N) if score.per_run else (N,))
    assert out.dtype == np.float64


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_output_finite(score: Score, recorded: dict[str, Any]) -> None:
    assert np.isfinite(_call(score, recorded)).all()


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_deterministic(score: Score, recorded: dict[str, Any]) -> None:
    np.testing.assert_array_equal(_call(score, recorded), _call(score, recorded))


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_permutation_equivariant(score: Score, recorded: dict[str, Any]) -> None:
    perm = np.random.default_rng(1).permutation(N)
    expected = _call(score, recorded)[..., perm]
    got = _call(score, _permuted(recorded, perm))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def _example_arrays(score: Score) -> list[str]:
    return [name for name in score.needs if N_AXIS[name] is not None]


@pytest.mark.parametrize(
    "score", [s for s in SCORES if len(_example_arrays(s)) > 1], ids=lambda s: s.key
)
def test_truncated_examples_rejected(score: Score, recorded: dict[str, Any]) -> None:
    for name in _example_arrays(score):
        short = np.take(recorded[name], np.arange(N - 1), axis=N_AXIS[name])
        with pytest.raises(InputError, match=r"expected shape \(.*n_examples=") as err:
            _call(score, {**recorded, name: short})
        assert name in str(err.value)  # either the culprit, or the array it disagrees with


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_extra_dimension_rejected(score: Score, recorded: dict[str, Any]) -> None:
    for name in score.needs:
        with pytest.raises(InputError, match=rf"^{name}: expected"):
            _call(score, {**recorded, name: np.asarray(recorded[name])[None]})


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_nan_rejected(score: Score, recorded: dict[str, Any]) -> None:
    for name in score.needs:
        bad = np.array(recorded[name], dtype=np.float64)  # copies; NaN needs a float dtype
        bad.flat[0] = np.nan
        with pytest.raises(InputError, match=rf"^{name}: "):
            _call(score, {**recorded, name: bad})


@pytest.mark.parametrize("score", [s for s in SCORES if "labels" in s.needs], ids=lambda s: s.key)
def test_labels_out_of_range_rejected(score: Score, recorded: dict[str, Any]) -> None:
    labels = recorded["labels"].copy()
    labels[0] = K
    with pytest.raises(InputError, match=rf"^labels: expected class indices in \[0, {K}\)"):
        _call(score, {**recorded, "labels": labels})
    labels[0] = -1
    with pytest.raises(InputError, match=r"^labels: "):
        _call(score, {**recorded, "labels": labels})


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_compute_averages_runs(score: Score, recorded: dict[str, Any]) -> None:
    result = compute(score.key, recorded)
    raw = _call(score, recorded)
    assert isinstance(result, ScoreResult) and result.key == score.key
    assert result.values.shape == (N,) and result.values.dtype == np.float64
    if score.per_run:
        assert result.per_run is not None and result.per_run.dtype == np.float64
        np.testing.assert_array_equal(result.per_run, raw)
        np.testing.assert_allclose(result.values, raw.mean(axis=0))
    else:
        assert result.per_run is None
        np.testing.assert_array_equal(result.values, raw)


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_compute_missing_need_named(score: Score, recorded: dict[str, Any]) -> None:
    missing = score.needs[-1]
    arrays = {k: v for k, v in recorded.items() if k != missing}
    with pytest.raises(InputError, match=missing):
        compute(score.key, arrays)


@pytest.mark.parametrize("score", SCORES, ids=IDS)
def test_entry_is_consistent(score: Score) -> None:
    assert REGISTRY[score.key] is score
    assert score.fn.__name__ == score.key
    assert set(score.needs) <= set(N_AXIS), "needs must be recorded-array names"
    params = inspect.signature(score.fn).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in params)
    assert [p.name for p in params] == list(score.needs)
    assert isinstance(score.higher_is_harder, bool)
    assert isinstance(score.version, int) and score.version >= 1
    assert score.doc.strip() and score.fn.__doc__


def test_validation_knows_every_recorded_name() -> None:
    assert set(RECORDED) == set(N_AXIS)


def test_registry_order_and_directions() -> None:
    assert list(REGISTRY) == ORDER
    # Directions are not copied here: tests/training/test_directions.py checks each declared
    # direction against injected noise on a real run.
    for score in REGISTRY.values():
        assert isinstance(score.label_free, bool)
        assert not (score.label_free and "labels" in score.needs), score.key
    # Computed once from arrays shared by every run: out-of-fold probabilities (pvi and
    # cleanlab) or label-independent embeddings (prototype).
    once = ["pvi", "cl_quality", "cl_issue", "prototype", "near_dup", "outlier", "leakage"]
    once += ["knn_shapley"]
    once += ["consensus_label", "consensus_quality", "annotator_agreement"]
    once += ["dark", "light", "blurry", "low_information", "grayscale"]
    once += ["odd_aspect_ratio", "odd_size"]
    assert [k for k, s in REGISTRY.items() if not s.per_run] == once
    run_level = {"oof_probs", "features_free", "images", "image_sizes"}
    assert all(run_level & set(REGISTRY[k].needs) for k in once), (
        "a score computed once reads a run-level array"
    )


def test_resolve_all() -> None:
    assert resolve(("all",)) == ORDER
    assert resolve(["aum", "el2n", "aum"]) == ["aum", "el2n"]
    assert resolve("pvi") == ["pvi"]


def test_resolve_unknown_lists_valid_keys() -> None:
    with pytest.raises(InputError, match="nope") as err:
        resolve(["el2n", "nope"])
    assert all(key in str(err.value) for key in ORDER)
    with pytest.raises(InputError):
        resolve([])
    with pytest.raises(InputError, match="nope"):
        compute("nope", {})
    with pytest.raises(InputError, match="'all'"):
        compute("all", {})
