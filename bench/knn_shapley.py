"""KNN-Shapley (`knn_shapley`): its AUROC for injected label noise, and its time and memory
against cleanlab's `data_shapley_knn`, which it equals.

    python bench/knn_shapley.py [--seeds 5] [--rows 50000] [--cleanlab-rows 5000]

1. Detection: the 1,797 scikit-learn digits, their 64 pixels as the label-independent
   embedding, 10% of the labels flipped uniformly to another class, one draw per seed; the
   AUROC of -knn_shapley for the flipped rows (ties half), mean over seeds with a 95%
   t-interval.
2. Cost: random Gaussian embeddings (384 wide, as MiniLM's) with 10 classes; ours at
   `--rows` and at `--cleanlab-rows`, cleanlab's at `--cleanlab-rows` only (it builds an
   (N, N) float64 matrix: 20 GB at 50,000 rows), with peak memory above the inputs from
   tracemalloc (numpy's allocations). The two must agree to 1e-12 where both run.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/auroc_diff.py

from auroc_diff import auroc  # noqa: E402

from scoring.scores.data_value import K_SHAPLEY, shapley_values  # noqa: E402


def detection(seeds: int) -> tuple[float, float, list[float]]:
    """Mean AUROC over seeds, the 95% t half-width, and each seed's AUROC."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    values = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        flipped = rng.choice(len(y), len(y) // 10, replace=False)
        noisy = y.copy()
        noisy[flipped] = (y[flipped] + rng.integers(1, 10, len(flipped))) % 10
        mask = np.zeros(len(y), bool)
        mask[flipped] = True
        values.append(auroc(-shapley_values(noisy, x, K_SHAPLEY), mask))
    half = stats.t.ppf(0.975, seeds - 1) * np.std(values, ddof=1) / np.sqrt(seeds)
    return float(np.mean(values)), float(half), values


def _timed(fn, *args) -> tuple[np.ndarray, float, float]:
    """fn(*args), its wall seconds and the peak MB numpy allocated meanwhile."""
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args)
    took = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, took, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--cleanlab-rows", type=int, default=5_000)
    args = parser.parse_args()

    mean, half, each = detection(args.seeds)
    print(
        f"digits, 10% uniform noise, {args.seeds} seeds: knn_shapley AUROC {mean:.3f} ± {half:.3f}"
    )
    print("  per seed: " + ", ".join(f"{v:.3f}" for v in each))

    from cleanlab.data_valuation import data_shapley_knn

    rng = np.random.default_rng(0)
    for n in (args.cleanlab_rows, args.rows):
        x = rng.normal(size=(n, 384)).astype(np.float32)
        y = rng.integers(0, 10, n)
        ours, took, peak = _timed(shapley_values, y, x, K_SHAPLEY)
        line = f"{n:>7,} rows x 384: ours {took:6.1f} s, peak {peak:7.1f} MB"
        if n == args.cleanlab_rows:
            theirs, took_c, peak_c = _timed(
                lambda a, b: data_shapley_knn(a, features=b, metric="cosine", k=K_SHAPLEY), y, x
            )
            gap = float(np.abs(ours - theirs).max())
            line += f"; cleanlab {took_c:6.1f} s, peak {peak_c:7.1f} MB; max |diff| {gap:.1e}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
