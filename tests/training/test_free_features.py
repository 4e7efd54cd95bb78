"""`prototype` clusters label-independent embeddings (training.free_features): it cannot see
labels, so two label-noise draws give the same column and its noise AUROC is chance."""

import numpy as np

from scoring import store
from scoring.config import DataConfig
from scoring.data.noise import noise_detection
from scoring.scores.prototype import prototype
from scoring.training.free_features import MAX_DIM, pixel_features
from scoring.training.pipeline import score
from tests.conftest import digits_config


def _null_sigma(noisy: np.ndarray) -> float:
    """Std of the AUROC of a score independent of `noisy` (Mann-Whitney null, no ties)."""
    pos, neg = int(noisy.sum()), int((~noisy).sum())
    return float(np.sqrt((pos + neg + 1) / (12 * pos * neg)))


def test_prototype_ignores_the_labels_on_noisy_digits(cache_dir):
    frames, runs = [], []
    for seed in (0, 1):
        cfg = digits_config(
            None, runs=1, epochs=1, noise_fraction=0.1, noise_seed=seed, scores=("prototype",)
        )
        runs.append(score(cfg, cache_dir, show_progress=False))
        frames.append(store.read_scores(runs[-1]))
    a, b = frames
    assert not np.array_equal(a["label"], b["label"])  # two different noise draws
    np.testing.assert_array_equal(a["prototype"], b["prototype"])
    for frame in frames:
        noisy = frame["noisy"].to_numpy()
        auroc = noise_detection(frame["prototype"].to_numpy(), noisy, True)["noise_auroc"]
        assert abs(auroc - 0.5) < 3 * _null_sigma(noisy), auroc
    # An independent computation: k-means on the raw training pixels (digits: 64 < MAX_DIM).
    inputs = store.RunDir(runs[0]).read_inputs().train  # (N, 1, 8, 8) as the models saw them
    pixels = inputs.reshape(len(inputs), -1)
    stored = store.load_arrays(store.RunDir(runs[0]).features_free_file)["features"]
    np.testing.assert_array_equal(stored, pixels.astype(np.float32))
    np.testing.assert_allclose(
        a["prototype"], prototype(features_free=pixels, n_prototypes=10), rtol=1e-6
    )


def test_pixel_features_project_wide_images_and_keep_their_geometry():
    rng = np.random.default_rng(0)
    images = rng.random((40, 3, 32, 32)).astype(np.float32)
    feats = pixel_features(images)
    assert feats.shape == (40, MAX_DIM) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, pixel_features(images))  # seeded, data-independent
    small = rng.random((5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(pixel_features(small), small.reshape(5, 64))  # kept as is
    # Johnson-Lindenstrauss: pairwise distances kept to about 1/sqrt(256) relative error.
    flat = images.reshape(40, -1)
    i, j = np.triu_indices(40, 1)
    ratio = np.linalg.norm(feats[i] - feats[j], axis=1) / np.linalg.norm(flat[i] - flat[j], axis=1)
    assert abs(ratio.mean() - 1) < 0.05 and ratio.std() < 0.1


def test_text_probe_prototype_reads_the_frozen_encoder_embeddings(cache_dir, tmp_path):
    good = ["a warm , generous film", "sharp and funny throughout", "a triumph of craft"]
    bad = ["a dull , lifeless mess", "tedious and overlong", "nothing here works at all"]
    rows = [(f"{good[i % 3]} {i}", "pos") for i in range(15)]
    rows += [(f"{bad[i % 3]} {i}", "neg") for i in range(15)]
    path = tmp_path / "reviews.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{v}\n" for t, v in rows))
    cfg = digits_config(runs=1, epochs=1, data=DataConfig(source=str(path)), scores=("prototype",))
    run = score(cfg, cache_dir, show_progress=False)
    rd = store.RunDir(run)
    emb = rd.read_inputs().train  # the probe's inputs: the frozen encoder's embeddings
    stored = store.load_arrays(rd.features_free_file)["features"]
    np.testing.assert_array_equal(stored, emb)
    np.testing.assert_allclose(
        store.read_scores(run)["prototype"], prototype(features_free=emb, n_prototypes=2)
    )
