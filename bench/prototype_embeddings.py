"""Which label-free embedding should `prototype` cluster for images without an encoder?

On digits with 10% label noise (Data Diet's permutation, seed 0), for each candidate:
- noise AUROC of the prototype distance (label-free: should sit in the null band),
- Spearman with the mean distance to the 10 nearest neighbours in the same space,
- AUROC of ranking 5% injected atypical images (upside-down test digits, digits rotated by
  90 degrees, uniform noise) above the training images; embeddings fit on training inputs.

    python bench/prototype_embeddings.py

The figures are quoted in `scoring/scores/prototype.py` (PROTOTYPE_DOC).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from scoring import data  # noqa: E402
from scoring.config import DataConfig  # noqa: E402
from scoring.data.decode import to_float  # noqa: E402
from scoring.data.noise import inject_noise  # noqa: E402
from scoring.scores.prototype import prototype  # noqa: E402
from scoring.training.grads import calibrate_batchnorm  # noqa: E402
from scoring.training.models import build_model  # noqa: E402

K = 10


def embed(kind: str, inputs: np.ndarray, fit_on: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, ...) images -> (N, D) embeddings; anything fitted is fitted on `fit_on` only."""
    flat = inputs.reshape(len(inputs), -1)
    if kind == "pixels":
        return flat
    if kind.startswith("pca"):
        n = int(kind[3:]) if kind[3:] else 0.9
        return (
            PCA(n_components=n, random_state=0).fit(fit_on.reshape(len(fit_on), -1)).transform(flat)
        )
    torch.manual_seed(seed)  # "random_mlp" / "random_cnn": an untrained network's features
    model = build_model(kind.split("_")[1], tuple(inputs.shape[1:]), K).eval()
    calibrate_batchnorm(model, torch.from_numpy(fit_on), device=torch.device("cpu"))
    with torch.no_grad():
        return model.features(torch.from_numpy(inputs)).numpy()


def knn_distance(e: np.ndarray, k: int = 10) -> np.ndarray:
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    d, _ = NearestNeighbors(n_neighbors=k + 1).fit(e).kneighbors(e)
    return d[:, 1:].mean(1)


def main() -> None:
    with tempfile.TemporaryDirectory() as hf:
        ds = data.load(DataConfig(source="digits"), hf_cache_dir=hf)
    # The models' float32 inputs (value / 16), as the figures were measured on.
    x, xt = (to_float(split.inputs, ds.pixel_divisor) for split in (ds.train, ds.test))
    n = len(x)
    _, noisy = inject_noise(ds.train.labels, 0.1, 0)
    rng = np.random.default_rng(0)
    m = int(0.05 * n)
    atypical = {
        "upside-down": np.ascontiguousarray(
            xt[rng.choice(len(xt), m, replace=False)][..., ::-1, :]
        ),
        "rotated": np.ascontiguousarray(
            np.rot90(xt[rng.choice(len(xt), m, replace=False)], 1, axes=(2, 3))
        ),
        "noise": rng.uniform(0, 1, size=(m, 1, 8, 8)).astype(np.float32) * x.max(),
    }
    pos, neg = int(noisy.sum()), int(n - noisy.sum())
    sigma = np.sqrt((n + 1) / (12 * pos * neg))
    print(f"N={n}, {pos} noisy, {m} atypical per set; null AUROC sigma {sigma:.4f}")
    print(
        f"{'embedding':<14} {'dim':>4} {'noise AUROC':>11} {'rho kNN':>8} "
        + " ".join(f"{k:>11}" for k in atypical)
    )
    candidates = [("pixels", 0), ("pca", 0), ("pca16", 0), ("pca32", 0)]
    candidates += [("random_mlp", s) for s in range(5)] + [("random_cnn", 0)]
    for kind, seed in candidates:
        e = embed(kind, x, x, seed)
        s = prototype(features_free=e, n_prototypes=K)
        row = [roc_auc_score(noisy, s), spearmanr(s, knn_distance(e)).statistic]
        for extra in atypical.values():
            both = prototype(
                features_free=embed(kind, np.concatenate([x, extra]), x, seed), n_prototypes=K
            )
            row.append(roc_auc_score(np.r_[np.zeros(n), np.ones(m)], both))
        name = f"{kind} s{seed}" if kind.startswith("random") else kind
        print(
            f"{name:<14} {e.shape[1]:>4} {row[0]:11.3f} {row[1]:8.3f} "
            + " ".join(f"{v:11.3f}" for v in row[2:])
        )


if __name__ == "__main__":
    main()
