import numpy as np
import pytest

from scoring.data.noise import inject_noise, noise_detection
from scoring.errors import InputError


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
