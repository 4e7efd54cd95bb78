"""The difference of two scores' noise AUROC on one finished run, with its bootstrap CI.

For a run scored with injected noise (`winnow score ... --noise F`): each score's AUROC
against the run's noise mask (oriented by the registry's direction, as `summary.json`'s
`noise_auroc`), and AUROC(a) − AUROC(b) with a 95% percentile interval from a bootstrap
over the training rows, stratified by noisy / clean (each resample keeps the run's number
of flipped labels). One noise draw and one set of runs: the interval says how sure the
difference is on these examples, nothing about other draws or seeds.

    python bench/auroc_diff.py RUN A B [--boot 2000] [--seed 0]

e.g. `python bench/auroc_diff.py cache/<fingerprint>/<key> aum cl_quality`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring import store  # noqa: E402
from scoring.scores import REGISTRY  # noqa: E402
from scoring.scores.registry import hardness  # noqa: E402


def auroc(h: np.ndarray, noisy: np.ndarray) -> float:
    """Mann-Whitney AUROC of hardness `h` (higher = more suspect) for the mask, ties half.

    Parameters
    ----------
    h : ndarray of shape (n,)
    noisy : ndarray of shape (n,), bool
    """
    r = rankdata(h)
    k = int(noisy.sum())
    return float((r[noisy].sum() - k * (k + 1) / 2) / (k * (len(h) - k)))


def stratified_diff(
    a: np.ndarray, b: np.ndarray, noisy: np.ndarray, boot: int, seed: int
) -> tuple[float, float, float]:
    """AUROC(a) − AUROC(b) and its 95% bootstrap interval, resampling noisy and clean rows
    separately: (point, low, high)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(noisy), np.flatnonzero(~noisy)
    mask = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    diffs = np.empty(boot)
    for i in range(boot):
        rows = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        diffs[i] = auroc(a[rows], mask) - auroc(b[rows], mask)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return auroc(a, noisy) - auroc(b, noisy), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder scored with --noise")
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = store.read_scores(Path(args.run))
    if "noisy" not in frame:
        raise SystemExit(f"{args.run} was scored without injected noise (--noise)")
    noisy = frame["noisy"].to_numpy(bool)
    h = {}
    for key in (args.a, args.b):
        if key not in frame or key not in REGISTRY:
            raise SystemExit(f"{args.run} has no score {key!r}")
        h[key] = hardness(frame[key].to_numpy(np.float64), REGISTRY[key].higher_is_harder)
    point, low, high = stratified_diff(h[args.a], h[args.b], noisy, args.boot, args.seed)
    print(
        f"AUROC {args.a} {auroc(h[args.a], noisy):.4f}, {args.b} {auroc(h[args.b], noisy):.4f}; "
        f"{args.a} − {args.b} = {point:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}] "
        f"({args.boot} stratified resamples of {len(noisy):,} rows, {int(noisy.sum())} noisy)"
    )


if __name__ == "__main__":
    main()
