"""Does pruning by a score beat random subsets of the same size? Prints the tables.

    python bench/pruning.py [--seeds 3] [--cifar] [--cifar-n 1000] [--cifar-seeds 1]

1. digits: keep-hardest by EL2N and by forgetting vs random at 20-80% kept, mean ± std over
   seeds, and the full-data accuracy of the same recipe;
2. digits with 10% injected label noise: the offset rule (offset = the run's own noise
   estimate, the share cl_issue flags) vs keep-hardest and random at 40% kept;
3. with --cifar: a CIFAR-10 subset (../shared/data/cifar10, --cifar-n training examples,
   the full test split): keep-hardest, keep-easiest, stratified and random at 20-80% by EL2N.

Everything goes through the real pipeline and sweeps (step-matched schedules), cached under
bench/out/cache, so a second invocation only prints.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring.config import DataConfig, NoiseConfig, ScoreConfig, TrainConfig  # noqa: E402
from scoring.prune.select import SelectionConfig, auto_offset  # noqa: E402
from scoring.prune.sweeps import SweepConfig  # noqa: E402
from scoring.read.views import load_run  # noqa: E402
from scoring.training.pipeline import score  # noqa: E402
from scoring.training.retrain import sweep  # noqa: E402

CACHE = ROOT / "bench" / "out" / "cache"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
FRACTIONS = (0.2, 0.4, 0.6, 0.8)


def _table(frames: list[pd.DataFrame], full: float, title: str) -> None:
    # Random trials are shared between sweeps (same cached trial): count each once.
    frame = pd.concat(frames).drop_duplicates(["rule", "score", "fraction", "seed"])
    frame["rule"] = frame["rule"] + frame["score"].map(lambda s: f" ({s})" if pd.notna(s) else "")
    stats = frame.groupby(["rule", "fraction"])["accuracy"].agg(["mean", "std", "count"])
    table = stats.apply(lambda r: f"{r['mean']:.3f} ± {r['std']:.3f}", axis=1).unstack("fraction")
    print(f"\n## {title}\nfull-data accuracy (same recipe, all examples): {full:.3f}")
    print(f"seeds per point: {int(stats['count'].min())}; test accuracy mean ± std (n/a: 1 seed)")
    print(table.to_string())


def _sweep(run: Path, rule: str, score_key: str | None, fractions, seeds: int, **kw):
    sel = SelectionConfig(rule=rule, fraction=1.0, score=score_key, **kw)
    return pd.read_parquet(
        sweep(run, SweepConfig(sel, tuple(fractions), seeds), show_progress=False)
    )


def digits(seeds: int) -> None:
    run = score(ScoreConfig(data=DataConfig(source="digits")), CACHE, show_progress=False)
    full = load_run(run).summary["test_accuracy_mean"]
    frames = [_sweep(run, "hardest", key, FRACTIONS, seeds) for key in ("el2n", "forgetting")]
    _table(frames, full, "digits: keep-hardest vs random")


def digits_noisy(seeds: int) -> None:
    cfg = ScoreConfig(data=DataConfig(source="digits"), noise=NoiseConfig(fraction=0.1, seed=0))
    run = score(cfg, CACHE, show_progress=False)
    view = load_run(run)
    offset = round(auto_offset(view), 4)
    frames = [
        _sweep(run, "hardest", "el2n", (0.4,), seeds),
        _sweep(run, "offset", "el2n", (0.4,), seeds, offset=offset),
    ]
    _table(
        frames,
        view.summary["test_accuracy_mean"],
        f"digits, 10% noise: offset (auto = {offset:.3f}) vs keep-hardest vs random, 40% kept",
    )


def cifar(seeds: int, n: int) -> None:
    cfg = ScoreConfig(
        data=DataConfig(
            source=str(CIFAR / "train.parquet"), test=str(CIFAR / "test.parquet"), limit=n
        ),
        train=TrainConfig(runs=2, epochs=8),
        scores=("el2n", "aum", "forgetting"),
    )
    run = score(cfg, CACHE, show_progress=True)
    full = load_run(run).summary["test_accuracy_mean"]
    frames = [
        _sweep(run, rule, "el2n", FRACTIONS, seeds) for rule in ("hardest", "easiest", "stratified")
    ]
    _table(frames, full, f"CIFAR-10, {n:,} training examples, cnn32 8 epochs: rules by EL2N")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cifar", action="store_true")
    parser.add_argument("--cifar-n", type=int, default=1000)
    parser.add_argument("--cifar-seeds", type=int, default=1, help="CPU trials are slow")
    args = parser.parse_args()
    digits(args.seeds)
    digits_noisy(args.seeds)
    if args.cifar:
        cifar(args.cifar_seeds, args.cifar_n)


if __name__ == "__main__":
    main()
