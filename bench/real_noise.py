"""Real human label noise (CIFAR-10N): which detector finds the labels people got wrong?

Data: /work/shared/data/cifar10n/train.parquet, 3,728 CIFAR-10 training images with the
labels three people gave them (Wei et al., ICLR 2022) and CIFAR-10's own `clean_label`, the
truth here. For each given-label column (`aggre_label`: their majority, 9.5% wrong;
`random_label1`, `random_label2`: one annotator each, about 18-19% wrong; `worse_label`: a
wrong vote wherever one exists, 41.9% wrong) an ordinary scoring run trains on those labels
(`--input-col img --label-col COLUMN`; no noise injected), with two model computes:

- `probe`: the default for these images (`--recipe auto`): the bundled EfficientNet-Lite0's
  embeddings and Winnow's probe head, default schedule (5 runs x 20 epochs, 5 folds);
- `cnn32`: trained from scratch on the pixels, a reduced schedule for 2 CPU cores
  (`--cnn-runs 2 --cnn-epochs 15`, 2 cross-fit folds by default).

The file has no test split, so each run carves its seeded, stratified 20% held-out share (by
the given labels, so the rows differ a little between columns). Detection is measured on the
training rows (about 2,982), the rows every detector scores; held-out rows only get
`cl_quality` / `cl_issue` from the runs' held-out predictions. Truth: given != clean_label.

Detectors: those of bench/detectors.py (every label-dependent score that needs no gradient
pass, and `consensus`). Per column and model: each detector's AUROC and precision at k = the
number of wrong labels; "best single" is the best AUROC among the single scores (chosen with
the truth, which consensus never sees); cleanlab is `cl_quality` on the same model's
out-of-fold probabilities. Paired bootstrap over the training rows (`--boot` resamples,
seeded): 95% CIs of consensus minus best single and consensus minus cleanlab. And how many
of the 100 rows consensus ranks most suspect carry a wrong label.

Each run is cached under --cache-dir ($TMPDIR/winnow-real-noise by default): a rerun only
re-reads scores.parquet. The table is printed and written to bench/out/real_noise.md.

    python bench/real_noise.py [--cache-dir DIR] [--labels aggre_label random_label1
        random_label2 worse_label] [--models probe cnn32] [--cnn-runs 2] [--cnn-epochs 15]
        [--cnn-folds 2] [--boot 2000] [--limit N]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/detectors.py
from auroc_diff import auroc  # noqa: E402
from detectors import DATA, DETECTORS, OUT, SINGLE  # noqa: E402

from scoring import store  # noqa: E402
from scoring.config import DataConfig, ScoreConfig, TrainConfig  # noqa: E402
from scoring.data.noise import noise_detection  # noqa: E402
from scoring.scores import REGISTRY  # noqa: E402
from scoring.scores.registry import hardness  # noqa: E402

SOURCE = DATA / "cifar10n" / "train.parquet"
LABELS = ("aggre_label", "random_label1", "random_label2", "worse_label")
TOP = 100  # "N of the top 100 suspects are real errors"


def run_config(label_col: str, model: str, args: argparse.Namespace) -> ScoreConfig:
    """The scoring run of one given-label column and one model compute."""
    data = DataConfig(
        source=str(SOURCE), input_cols=("img",), label_col=label_col, limit=args.limit
    )
    if model == "probe":  # the product's default for 32x32 images: auto = the bundled encoder
        return ScoreConfig(data=data, train=TrainConfig(), scores=DETECTORS)
    train = TrainConfig(recipe="cnn32", runs=args.cnn_runs, epochs=args.cnn_epochs)
    return ScoreConfig(data=data, train=train, scores=DETECTORS, cv_folds=args.cnn_folds)


def clean_labels(ids: np.ndarray) -> np.ndarray:
    """CIFAR-10's own labels of the given row ids (row indices in the source's training split)."""
    import pyarrow.parquet as pq

    return pq.read_table(SOURCE, columns=["clean_label"]).column(0).to_numpy()[ids]


def bootstrap_diff(a: np.ndarray, b: np.ndarray, wrong: np.ndarray, n: int) -> tuple:
    """Paired bootstrap over rows of AUROC(a) - AUROC(b): (point, low, high), 95%."""
    rng = np.random.default_rng(0)
    point = auroc(a, wrong) - auroc(b, wrong)
    diffs = np.empty(n)
    for i in range(n):
        rows = rng.integers(0, len(wrong), len(wrong))
        w = wrong[rows]
        diffs[i] = auroc(a[rows], w) - auroc(b[rows], w)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return point, low, high


def measure(path: Path, boot: int) -> dict:
    """Every detector's AUROC and P@k on the training rows, the CIs and the top-100 count."""
    frame = store.read_scores(path)
    wrong = frame["label"].to_numpy() != clean_labels(frame["id"].to_numpy())  # (N,) bool
    heldout = store.RunDir(path).read_heldout()  # the runs' mean held-out prediction
    hard = {k: hardness(frame[k].to_numpy(), REGISTRY[k].higher_is_harder) for k in DETECTORS}
    det = {k: noise_detection(h, wrong, True) for k, h in hard.items()}
    best = max(SINGLE, key=lambda k: det[k]["noise_auroc"])
    top = np.argsort(-hard["consensus"], kind="stable")[:TOP]
    summary = store.RunDir(path).read_summary()
    return {
        "n_train": int(len(frame)),
        "n_wrong": int(wrong.sum()),
        "test_accuracy": summary["test_accuracy_mean"],  # against the given labels
        "clean_accuracy": float(
            (heldout["suggested"].to_numpy() == clean_labels(heldout["id"].to_numpy())).mean()
        ),
        "detectors": det,
        "best": best,
        "vs_best": bootstrap_diff(hard["consensus"], hard[best], wrong, boot),
        "vs_cleanlab": bootstrap_diff(hard["consensus"], hard["cl_quality"], wrong, boot),
        "top_wrong": int(wrong[top].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache-dir", default=str(Path(tempfile.gettempdir()) / "winnow-real-noise")
    )
    parser.add_argument("--labels", nargs="+", default=list(LABELS))
    parser.add_argument("--models", nargs="+", default=["probe", "cnn32"])
    parser.add_argument("--cnn-runs", type=int, default=2)
    parser.add_argument("--cnn-epochs", type=int, default=15)
    parser.add_argument("--cnn-folds", type=int, default=2)
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--limit", type=int, help="a stratified subset (development only)")
    args = parser.parse_args()
    from scoring.training.pipeline import score

    results: dict[str, dict] = {}
    for model in args.models:
        for col in args.labels:
            t0 = time.perf_counter()
            path = score(run_config(col, model, args), args.cache_dir, show_progress=False)
            results[f"{col}/{model}"] = {
                **measure(path, args.boot),
                "wall_s": round(time.perf_counter() - t0, 1),
                "run": str(path),
            }
            print(f"{col} / {model}: {results[f'{col}/{model}']['wall_s']} s", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "real_noise.json").write_text(json.dumps(results, indent=1))
    table = render(results, args)
    (OUT / "real_noise.md").write_text(table)
    print(table)


def _ci(point: float, low: float, high: float) -> str:
    word = "within" if low <= 0 <= high else ("above" if low > 0 else "below")
    return f"{point:+.4f} [{low:+.4f}, {high:+.4f}] {word}"


def render(results: dict[str, dict], args: argparse.Namespace) -> str:
    """The summary table (one row per column and model), every detector's AUROC, the top-100
    lines."""
    lines = [
        f"CIFAR-10N, training rows; paired bootstrap 95% CIs over rows ({args.boot} resamples);"
        f" cnn32: {args.cnn_runs} runs x {args.cnn_epochs} epochs, {args.cnn_folds} folds.",
        "",
        "| given labels / model | wrong labels | held-out acc (given / clean) | consensus AUROC "
        "| best single "
        "AUROC | cleanlab AUROC | consensus − best [95% CI] | consensus − cleanlab [95% CI] | "
        "consensus P@k | best P@k | cleanlab P@k |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    full = [
        "| given labels / model | " + " | ".join(f"`{k}`" for k in DETECTORS) + " |",
        "|---|" + "---:|" * len(DETECTORS),
    ]
    tops = []
    for cell, r in results.items():
        d, best = r["detectors"], r["best"]
        auc = {k: d[k]["noise_auroc"] for k in DETECTORS}
        pk = {k: d[k]["noise_precision_at_k"] for k in DETECTORS}
        lines.append(
            f"| {cell} | {r['n_wrong']} of {r['n_train']} | {r['test_accuracy']:.3f} / "
            f"{r['clean_accuracy']:.3f} | "
            f"{auc['consensus']:.4f} | {auc[best]:.4f} (`{best}`) | {auc['cl_quality']:.4f} | "
            f"{_ci(*r['vs_best'])} | {_ci(*r['vs_cleanlab'])} | {pk['consensus']:.3f} | "
            f"{pk[best]:.3f} | {pk['cl_quality']:.3f} |"
        )
        full.append(f"| {cell} | " + " | ".join(f"{auc[k]:.4f}" for k in DETECTORS) + " |")
        tops.append(
            f"- {cell}: on real human noise, {r['top_wrong']} of the top {TOP} suspects "
            "(consensus) are real errors"
        )
    return "\n".join([*lines, "", "AUROC of every detector:", "", *full, "", *tops, ""])


if __name__ == "__main__":
    main()
