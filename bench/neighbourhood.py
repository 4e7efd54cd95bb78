"""The neighbourhood step alone at full size: CIFAR-10's 50,000 training + 10,000 test images.

What `score` does after training for duplicates, leaks and outliers, part by part, on the
real images of ../shared/data/cifar10 (`--limit N` keeps a stratified N of the training
rows), with the label-free embeddings a from-scratch image run uses (the pixels projected
to 256 dimensions, `free_features.pixel_features`) or, with `--dim D`, seeded random unit
vectors of width D in their place (the cost of a D-wide encoder's kNN; the encoder itself
is not run, so the candidates it would add are random here):

- scores: `near_dup`, `outlier`, `leakage` (kNN over the embeddings);
- keys: exact-copy content keys of both splits;
- shift index: the training rows' pooled pixels, perceptual features, their kNN, the
  embeddings' kNN, and every candidate pair's registered distance
  (`neighbourhood.shift_index`, once per run since this issue; it was computed twice);
- groups: `dup_groups` given the shift index (the union of copies);
- leaks: `leak_of` given the shift index (the test side of the pixel check: the test
  rows' pooled pixels and features, their kNN from the training rows, registered pairs).

    python bench/neighbourhood.py [--limit N] [--dim D]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--dim", type=int, default=None, help="random D-wide embeddings")
    parser.add_argument("--data", type=Path, default=CIFAR)
    args = parser.parse_args()
    from scoring.config import DataConfig
    from scoring.data import load
    from scoring.scores import neighbourhood as nb
    from scoring.training.free_features import pixel_features

    t0 = time.perf_counter()
    ds = load(
        DataConfig(
            source=str(args.data / "train.parquet"),
            test=str(args.data / "test.parquet"),
            limit=args.limit,
        )
    )
    train, test = ds.train.inputs, ds.test.inputs
    times = {"decode": time.perf_counter() - t0}

    def timed(name: str, fn):
        start = time.perf_counter()
        out = fn()
        times[name] = times.get(name, 0.0) + time.perf_counter() - start
        return out

    if args.dim:
        rng = np.random.default_rng(0)
        feats, feats_t = (
            rng.normal(size=(len(x), args.dim)).astype(np.float32) for x in (train, test)
        )
        what = f"random unit vectors, {args.dim} wide"
    else:
        feats = timed("features", lambda: pixel_features(train, ds.pixel_divisor))
        feats_t = timed("features", lambda: pixel_features(test, ds.pixel_divisor))
        what = f"pixels projected to {feats.shape[1]}"
    timed("scores", lambda: nb.near_dup(features_free=feats))
    timed("scores", lambda: nb.outlier(features_free=feats))
    timed("scores", lambda: nb.leakage(features_free=feats, features_free_test=feats_t))
    keys = timed("keys", lambda: nb.content_keys(train))
    keys_t = timed("keys", lambda: nb.content_keys(test))
    shift = timed("shift index", lambda: nb.shift_index(train, feats))
    groups = timed("groups", lambda: nb.dup_groups(feats, keys, train, shift))
    ids = np.arange(len(test))
    leaks = timed(
        "leaks",
        lambda: nb.leak_of(feats, keys, feats_t, keys_t, ids, train, test, shift),
    )
    step = sum(v for k, v in times.items() if k != "decode")
    print(f"{len(train):,} training + {len(test):,} test images; embeddings: {what}")
    for name, secs in times.items():
        print(f"{name:<16} {secs:8.1f} s")
    print(f"{'step (no decode)':<16} {step:8.1f} s   (goal <= 60 s at 50,000)")
    print(
        f"{int((np.bincount(groups[groups >= 0]) > 1).sum())} duplicate groups, "
        f"{int((leaks >= 0).sum())} leaks; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB"
    )


if __name__ == "__main__":
    main()
