"""Does pruning by a score beat random subsets of the same size? Prints the tables with CIs.

    python bench/pruning.py [--seeds 5] [--split test] [--cifar] [--cifar-n 1000]
                            [--cifar-seeds 1]

1. digits: keep-hardest by EL2N and by forgetting vs random at 20-80% kept;
2. digits with 10% injected label noise: the offset rule (offset = the run's own noise
   estimate, the share cl_issue flags) vs keep-hardest, random after the same offset and
   random, at 40% kept;
3. with --cifar: a CIFAR-10 subset (../shared/data/cifar10, --cifar-n training examples,
   the full test split): keep-hardest, keep-easiest, stratified and random at 20-80% by EL2N.

Each point: accuracy mean ± std over seeds on `--split` (test by default; validation is the
10% of training rows every sweep holds out) and the paired difference to random (same seeds,
same size) with its 95% CI (a t-interval over seeds plus the test examples' sampling noise,
scoring/prune/intervals.py), from the sweep's
`summary.parquet`; "~" marks a CI that contains 0 (indistinguishable from random). Everything
goes through the real pipeline and sweeps (step-matched schedules), cached under
bench/out/cache, so a second invocation only prints.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring import store  # noqa: E402
from scoring.config import DataConfig, NoiseConfig, ScoreConfig, TrainConfig  # noqa: E402
from scoring.prune.select import SelectionConfig, auto_offset  # noqa: E402
from scoring.prune.sweeps import SPLITS, SweepConfig, indistinguishable  # noqa: E402
from scoring.read.views import load_run  # noqa: E402
from scoring.training.pipeline import score  # noqa: E402
from scoring.training.retrain import sweep  # noqa: E402

CACHE = ROOT / "bench" / "out" / "cache"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
FRACTIONS = (0.2, 0.4, 0.6, 0.8)


def _table(summaries: list[pd.DataFrame], full: float, title: str, split: str) -> None:
    """One markdown table of every sweep's `summary.parquet` rows on `split`."""
    rows = pd.concat([x[x["split"] == split] for x in summaries], ignore_index=True)
    # Random (and a shared baseline) appear in several sweeps' summaries: count each once.
    rows = rows.drop_duplicates(["rule", "score", "fraction"])
    print(f"\n## {title}\nfull-data test accuracy (same recipe, all examples): {full:.3f}")
    print(
        f"{split} accuracy mean ± std over seeds; difference to random (paired by seed) "
        "with its 95% CI (t-interval over seeds + examples); ~ = CI contains 0"
    )
    baseline = rows["baseline"].dropna()
    head = ["rule", "kept", "seeds", f"{split} accuracy", "− random [95% CI]"]
    if not baseline.empty:
        head.append(f"− {baseline.iloc[0]} [95% CI]")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows.itertuples():
        name = row.rule if pd.isna(row.score) else f"{row.rule} by {row.score}"
        cells = [
            name,
            f"{row.fraction:.0%}",
            str(row.seeds),
            f"{row.accuracy_mean:.4f} ± {row.accuracy_std:.4f}",
            _ci(row.diff_vs_random, row.ci_low, row.ci_high),
        ]
        if not baseline.empty:
            cells.append(_ci(row.diff_vs_baseline, row.baseline_ci_low, row.baseline_ci_high))
        print("| " + " | ".join(cells) + " |")


def _ci(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return "–"
    flag = " ~" if indistinguishable(low, high) else ""
    return f"{value:+.4f} [{low:+.4f}, {high:+.4f}]{flag}"


def _sweep(run: Path, rule: str, score_key: str | None, fractions, seeds: int, **kw):
    """Run (or read back) one sweep; its summary.parquet."""
    sel = SelectionConfig(rule=rule, fraction=1.0, score=score_key, **kw)
    trials = sweep(run, SweepConfig(sel, tuple(fractions), seeds), show_progress=False)
    return pd.read_parquet(store.SweepDir(trials.parent).summary_file)


def digits(seeds: int, split: str) -> None:
    run = score(ScoreConfig(data=DataConfig(source="digits")), CACHE, show_progress=False)
    full = load_run(run).summary["test_accuracy_mean"]
    summaries = [_sweep(run, "hardest", key, FRACTIONS, seeds) for key in ("el2n", "forgetting")]
    _table(summaries, full, "digits: keep-hardest vs random", split)


def digits_noisy(seeds: int, split: str) -> None:
    cfg = ScoreConfig(data=DataConfig(source="digits"), noise=NoiseConfig(fraction=0.1, seed=0))
    run = score(cfg, CACHE, show_progress=False)
    view = load_run(run)
    offset = round(auto_offset(view), 4)
    summaries = [
        _sweep(run, "offset", "el2n", (0.4,), seeds, offset=offset),
        _sweep(run, "hardest", "el2n", (0.4,), seeds),
    ]
    _table(
        summaries,
        view.summary["test_accuracy_mean"],
        f"digits, 10% noise: offset (auto = {offset:.3f}) vs its baselines, 40% kept",
        split,
    )


def cifar(seeds: int, n: int, split: str) -> None:
    cfg = ScoreConfig(
        data=DataConfig(
            source=str(CIFAR / "train.parquet"), test=str(CIFAR / "test.parquet"), limit=n
        ),
        train=TrainConfig(runs=2, epochs=8),
        scores=("el2n", "aum", "forgetting"),
    )
    run = score(cfg, CACHE, show_progress=True)
    full = load_run(run).summary["test_accuracy_mean"]
    summaries = [
        _sweep(run, rule, "el2n", FRACTIONS, seeds) for rule in ("hardest", "easiest", "stratified")
    ]
    _table(summaries, full, f"CIFAR-10, {n:,} training examples, cnn32 8 epochs", split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="retraining seeds per point")
    parser.add_argument("--split", choices=SPLITS, default="test", help="what the tables show")
    parser.add_argument("--cifar", action="store_true")
    parser.add_argument("--cifar-n", type=int, default=1000)
    parser.add_argument("--cifar-seeds", type=int, default=1, help="CPU trials are slow")
    args = parser.parse_args()
    if args.seeds < 1 or args.cifar_seeds < 1:
        parser.error("--seeds and --cifar-seeds must be at least 1")
    digits(args.seeds, args.split)
    digits_noisy(args.seeds, args.split)
    if args.cifar:
        cifar(args.cifar_seeds, args.cifar_n, args.split)


if __name__ == "__main__":
    main()
