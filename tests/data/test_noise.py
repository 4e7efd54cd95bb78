import hashlib
import json

import numpy as np
import pytest

from scoring.config import (
    AUTO_RECIPES,
    SCORING_VERSION,
    DataConfig,
    NoiseConfig,
    ScoreConfig,
)
from scoring.data.noise import (
    CIFAR10_NAMES,
    _features,
    confusable_classes,
    inject_noise,
    noise_detection,
)
from scoring.errors import InputError
from tests.conftest import run_cli


def test_noise_permutes_labels_among_picked_examples():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, size=2000)
    noisy_labels, noisy = inject_noise(labels, 0.2, seed=7)
    # A permutation among the picked examples keeps the class histogram.
    assert np.array_equal(np.bincount(noisy_labels, minlength=5), np.bincount(labels, minlength=5))
    assert np.array_equal(noisy, noisy_labels != labels)
    # 400 picked; about 1/5 of them land on their own class by chance, so ~320 change.
    assert 280 <= noisy.sum() <= 400
    again, _ = inject_noise(labels, 0.2, seed=7)
    other, _ = inject_noise(labels, 0.2, seed=8)
    assert np.array_equal(again, noisy_labels)
    assert not np.array_equal(other, noisy_labels)


def test_no_noise_is_identity():
    labels = np.array([0, 1, 2, 1])
    out, noisy = inject_noise(labels, 0.0, seed=0)
    assert np.array_equal(out, labels) and not noisy.any()


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_noise_fraction_out_of_range(fraction):
    with pytest.raises(InputError, match=r"--noise must be a fraction in \[0, 1\)"):
        inject_noise(np.arange(10) % 2, fraction, seed=0)


def test_noise_detection_by_hand():
    noisy = np.array([True, False, False, True, False])
    values = np.array([0.9, 0.1, 0.8, 0.3, 0.2])  # higher = harder
    # Pairs (noisy, clean): 0.9 beats all 3 clean; 0.3 beats 0.1 and 0.2 but not 0.8 -> 5/6.
    out = noise_detection(values, noisy, higher_is_harder=True)
    assert out["noise_auroc"] == pytest.approx(5 / 6)
    # k = 2: the two hardest are 0.9 (noisy) and 0.8 (clean).
    assert out["noise_precision_at_k"] == pytest.approx(0.5)
    flipped = noise_detection(-values, noisy, higher_is_harder=False)
    assert flipped == out


def test_noise_detection_without_noisy_examples():
    out = noise_detection(np.arange(4.0), np.zeros(4, bool), higher_is_harder=True)
    assert out == {"noise_auroc": None, "noise_precision_at_k": None}


# -- noise kinds (issue 17) ------------------------------------------------------------------


def test_uniform_matches_the_stored_reference():
    """The default kind is the original permutation, draw for draw (cached runs keep their
    labels): the reference was produced by the code before noise kinds existed."""
    labels = np.arange(24) % 4
    noisy_labels, noisy = inject_noise(labels, 0.5, seed=3, kind="uniform")
    assert noisy_labels.tolist() == [
        0, 1, 2, 2, 0, 1, 2, 3, 0, 1, 3, 1, 0, 1, 0, 3, 2, 1, 2, 3, 0, 3, 2, 3,
    ]  # fmt: skip
    assert np.flatnonzero(noisy).tolist() == [3, 10, 11, 14, 16, 21]
    assert np.array_equal(inject_noise(labels, 0.5, seed=3)[0], noisy_labels)


def _transitions(labels, noisy_labels):
    """{(given, noisy): count} over the changed examples."""
    changed = noisy_labels != labels
    pairs = zip(labels[changed].tolist(), noisy_labels[changed].tolist(), strict=True)
    out: dict[tuple[int, int], int] = {}
    for pair in pairs:
        out[pair] = out.get(pair, 0) + 1
    return out


def test_asymmetric_on_cifar10_names_is_patrinis_map():
    # 50 examples per class, shuffled; p = 0.2 -> exactly 10 flips in each source class.
    labels = np.random.default_rng(0).permutation(np.arange(500) % 10)
    noisy_labels, noisy = inject_noise(
        labels, 0.2, seed=5, kind="asymmetric", label_names=CIFAR10_NAMES
    )
    # truck(9)->automobile(1), bird(2)->airplane(0), deer(4)->horse(7), cat(3)<->dog(5).
    assert _transitions(labels, noisy_labels) == {
        (9, 1): 10,
        (2, 0): 10,
        (4, 7): 10,
        (3, 5): 10,
        (5, 3): 10,
    }
    assert noisy.sum() == 50 and np.array_equal(noisy, noisy_labels != labels)
    other, _ = inject_noise(labels, 0.2, seed=6, kind="asymmetric", label_names=CIFAR10_NAMES)
    assert not np.array_equal(other, noisy_labels)  # another seed, other examples


def test_pair_flips_each_class_to_the_next():
    labels = np.repeat(np.arange(5), [20, 30, 40, 10, 50])
    noisy_labels, noisy = inject_noise(labels, 0.3, seed=1, kind="pair", label_names=list("abcde"))
    # round(0.3 * n_c) per class: 6, 9, 12, 3, 15; c -> c + 1 mod 5.
    assert _transitions(labels, noisy_labels) == {
        (0, 1): 6,
        (1, 2): 9,
        (2, 3): 12,
        (3, 4): 3,
        (4, 0): 15,
    }
    assert noisy.mean() == pytest.approx(45 / 150)


def test_asymmetric_with_two_classes_flips_to_the_other():
    labels = np.repeat([0, 1], [40, 60])
    noisy_labels, _ = inject_noise(
        labels, 0.25, seed=0, kind="asymmetric", label_names=["neg", "pos"]
    )
    assert _transitions(labels, noisy_labels) == {(0, 1): 10, (1, 0): 15}


def test_asymmetric_elsewhere_flips_to_the_most_confused_class():
    """Four Gaussian blobs on a line at 0, 1.5, 6, 7.5 (unit spread): by construction each
    class is confused with its near neighbour, 0 <-> 1 and 2 <-> 3."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 60)
    centres = np.array([0.0, 1.5, 6.0, 7.5])
    inputs = np.stack([centres[labels] + rng.normal(size=240), rng.normal(size=240)], axis=1)
    inputs = inputs[:, None, :, None].astype(np.float32)  # (N, 1, 2, 1): an "image"
    assert confusable_classes(labels, inputs, 4).tolist() == [1, 0, 3, 2]
    names = ["a", "b", "c", "d"]
    noisy_labels, _ = inject_noise(
        labels, 0.1, seed=2, kind="asymmetric", label_names=names, inputs=inputs
    )
    assert _transitions(labels, noisy_labels) == {(0, 1): 6, (1, 0): 6, (2, 3): 6, (3, 2): 6}


def test_asymmetric_on_texts_reads_the_words():
    # Classes 0 and 1 share their vocabulary; class 2 has its own. 0 <-> 1 by construction.
    texts = (
        [f"good fine movie {i}" for i in range(12)]
        + [f"fine good film {i}" for i in range(12)]
        + [f"awful dull plot {i}" for i in range(12)]
    )
    labels = np.repeat(np.arange(3), 12)
    assert confusable_classes(labels, texts, 3)[:2].tolist() == [1, 0]
    pairs = [(t, "x") for t in texts]  # sentence pairs are joined, not rejected
    assert confusable_classes(labels, pairs, 3)[:2].tolist() == [1, 0]


def test_images_are_block_averaged_before_the_model():
    images = np.random.default_rng(1).random((5, 1, 16, 16)).astype(np.float32)
    x = _features(images, np.arange(5))
    # 16 / 8 = 2: each feature is the mean of a 2 x 2 block, then standardized per column.
    block = images[:, 0].reshape(5, 8, 2, 8, 2).mean(axis=(2, 4)).reshape(5, 64)
    expected = (block - block.mean(0)) / block.std(0)
    assert x.shape == (5, 64)
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-5)


def test_unknown_kind_is_rejected():
    with pytest.raises(InputError, match="--noise-kind must be one of uniform, asymmetric, pair"):
        inject_noise(np.arange(10) % 2, 0.1, seed=0, kind="symmetric")
    with pytest.raises(InputError, match="--noise-kind must be one of"):
        ScoreConfig(noise=NoiseConfig(fraction=0.1, kind="flip")).validate()


def test_default_kind_keeps_the_old_cache_key():
    """A uniform config hashes exactly as before `kind` existed (its JSON without `kind`);
    the other kinds get keys of their own."""
    config = ScoreConfig(noise=NoiseConfig(fraction=0.1, seed=1))
    old = config.to_dict()
    old["data"] = {**old["data"], "source": None, "test": None}
    for name in ("annotator_cols", "annotations"):  # None: absent, as before annotators
        del old["data"][name]
    del old["noise"]["kind"]
    old["train"]["auto"] = AUTO_RECIPES  # what auto means enters an auto run's key
    payload = json.dumps({"config": old, "scoring_version": SCORING_VERSION}, sort_keys=True)
    assert config.key() == hashlib.sha256(payload.encode()).hexdigest()[:16]
    keys = {
        ScoreConfig(noise=NoiseConfig(fraction=0.1, seed=1, kind=k)).key()
        for k in ("uniform", "asymmetric", "pair")
    }
    assert len(keys) == 3
    again = ScoreConfig.from_dict({"noise": {"fraction": 0.1, "seed": 1, "kind": "pair"}})
    assert again.noise.kind == "pair"


def test_prepare_injects_the_asked_kind(cache_dir):
    from scoring.training.steps import prepare

    config = ScoreConfig(
        data=DataConfig(source="digits", limit=200),
        noise=NoiseConfig(fraction=0.2, seed=0, kind="pair"),
        scores=("el2n",),
    )
    prep = prepare(config, cache_dir)
    true = prep.dataset.train.labels
    assert prep.noisy is not None
    assert np.array_equal(prep.labels[prep.noisy], (true[prep.noisy] + 1) % 10)
    counts = np.bincount(true, minlength=10)
    assert prep.noisy.sum() == sum(round(0.2 * n) for n in counts)


def test_cli_rejects_a_bad_kind(cache_dir):
    out = run_cli(
        "score", "--dataset", "digits", "--noise", "0.1", "--noise-kind", "x", cache=cache_dir
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --noise-kind must be one of uniform, asymmetric, pair, got 'x'"
    ]
