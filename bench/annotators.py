"""Several annotators on real human labels: CIFAR-10N's three `random_label` annotators.

One ordinary scoring run (scoring.training.pipeline.score, cached under --cache-dir, by
default $TMPDIR/winnow-annotators) of ../shared/data/cifar10n/train.parquet with
`--annotator-cols random_label1,random_label2,random_label3`: the given label is the majority
vote (Winnow's tie rule: the rarest tied class, then the lowest id), and the run's
out-of-fold probabilities (K-fold cross-fitting on that label) feed CROWDLAB. Then, on the
run's training rows (the carved held-out rows have no out-of-fold probabilities), against
CIFAR-10's own `clean_label`:

- consensus-label accuracy of the majority vote, CROWDLAB (`consensus_label` of the run),
  Dawid–Skene (scoring/data/dawid_skene.py, votes only), and the out-of-fold model alone,
  each with a bootstrap 95% CI over examples, and CROWDLAB minus each other method, paired,
  with its CI;
- the annotators ranked by their true accuracy against `clean_label`, beside CROWDLAB's
  annotator quality, Dawid–Skene's estimated accuracy and their agreement with the majority.

The CROWDLAB paper (Goh et al. 2022) reports, on CIFAR-10H with its worst annotators,
consensus accuracy 0.967 for CROWDLAB against 0.946 for Dawid–Skene; the table says where
Winnow stands on CIFAR-10N.

    python bench/annotators.py [--recipe probe|cnn32|...] [--runs 1] [--epochs E]
        [--cv-folds 5] [--limit N] [--bootstrap 2000] [--cache-dir DIR]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "cifar10n" / "train.parquet"
OUT = ROOT / "bench" / "out"
ANNOTATORS = ("random_label1", "random_label2", "random_label3")
SCORES = ("cl_quality", "consensus_label", "consensus_quality", "annotator_agreement")

from scoring import store  # noqa: E402
from scoring.config import DataConfig, ScoreConfig, TrainConfig  # noqa: E402
from scoring.data.dawid_skene import dawid_skene  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--recipe", default="auto", help="as `winnow score --recipe` (default auto)")
    p.add_argument("--runs", type=int, default=1, help="recorded runs (CROWDLAB reads the folds)")
    p.add_argument("--epochs", type=int, help="default: the recipe's")
    p.add_argument("--cv-folds", type=int, default=5)
    p.add_argument("--limit", type=int, help="training rows (default: all)")
    p.add_argument("--bootstrap", type=int, default=2000)
    default_cache = Path(tempfile.gettempdir()) / "winnow-annotators"
    p.add_argument("--cache-dir", default=str(default_cache))
    return p.parse_args()


def score_run(args: argparse.Namespace) -> Path:
    """The scoring run (cached): CROWDLAB's scores on the majority vote's cross-fitting."""
    from scoring.training.pipeline import score

    config = ScoreConfig(
        data=DataConfig(source=args.data, annotator_cols=ANNOTATORS, limit=args.limit),
        train=TrainConfig(recipe=args.recipe, runs=args.runs, epochs=args.epochs),
        scores=SCORES,
        cv_folds=args.cv_folds,
    )
    t0 = time.perf_counter()
    path = score(config, args.cache_dir, show_progress=True)
    print(f"run {path} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return path


def read_run(path: Path, data: str) -> dict[str, np.ndarray]:
    """The training rows' votes, truth, out-of-fold probabilities and CROWDLAB's labels."""
    import pyarrow.parquet as pq

    rd = store.RunDir(path)
    split, votes = rd.read_split(), rd.read_votes()
    assert votes is not None, "the run has no annotators"
    n_folds = store.read_json(rd.config_file)["config"]["cv_folds"]
    folds = [rd.read_fold(f) for f in range(n_folds)]
    n_classes = folds[0]["probs"].shape[1]
    oof = np.zeros((len(split.train_ids), n_classes))
    for fold in folds:
        oof[fold["index"]] = fold["probs"]
    # Label names are the classes' integer spellings sorted numerically: name = class id.
    names = np.array([int(n) for n in store.read_json(rd.config_file)["dataset"]["label_names"]])
    table = pq.read_table(data, columns=["clean_label", "aggre_label"])
    clean = table.column("clean_label").to_numpy()
    scores = rd.read_scores(["id", "label", "consensus_label"])
    assert (scores["id"].to_numpy() == split.train_ids).all()
    return {
        "truth": np.searchsorted(names, clean[split.train_ids]),  # (N,) class ids
        # CIFAR-10N's own aggregate of the same three votes, for reference.
        "aggre": np.searchsorted(names, table.column("aggre_label").to_numpy()[split.train_ids]),
        "votes": votes.votes,  # (N, A)
        "annotators": votes.annotators,
        "given": split.labels,  # the majority vote the run trained on
        "crowdlab": scores["consensus_label"].to_numpy(),
        "oof": oof,
        "accuracy": np.asarray(store.read_json(rd.summary_file)["test_accuracy"]),
    }


def bootstrap(correct: dict[str, np.ndarray], n_boot: int, seed: int = 0) -> dict:
    """Accuracy and its 95% CI per method, and CROWDLAB minus each other, paired."""
    rng = np.random.default_rng(seed)
    n = len(next(iter(correct.values())))
    idx = rng.integers(0, n, size=(n_boot, n))  # (B, N) resampled examples
    out = {}
    for name, hits in correct.items():
        boots = hits[idx].mean(axis=1)
        diff = (correct["CROWDLAB"][idx] - hits[idx]).mean(axis=1)
        out[name] = {
            "accuracy": hits.mean(),
            "ci": np.percentile(boots, [2.5, 97.5]),
            "diff": correct["CROWDLAB"].mean() - hits.mean(),
            "diff_ci": np.percentile(diff, [2.5, 97.5]),
        }
    return out


def report(run: dict, args: argparse.Namespace, path: Path) -> str:
    """The two tables, as markdown."""
    k = run["oof"].shape[1]
    ds = dawid_skene(run["votes"], k)
    labels = {
        "majority vote (Winnow's given label)": run["given"],
        "Dawid–Skene (votes only)": ds.labels,
        "CROWDLAB (votes + Winnow's out-of-fold model)": run["crowdlab"],
        "out-of-fold model alone": run["oof"].argmax(axis=1),
        "CIFAR-10N's `aggre_label` (its own majority of the same votes)": run["aggre"],
    }
    correct = {name: (y == run["truth"]).astype(float) for name, y in labels.items()}
    correct["CROWDLAB"] = correct["CROWDLAB (votes + Winnow's out-of-fold model)"]
    stats = bootstrap(correct, args.bootstrap)
    del stats["CROWDLAB"]
    config = store.read_json(store.RunDir(path).config_file)
    recipe = config["recipe"]["name"]
    lines = [
        f"Training rows: {len(run['truth']):,} (CIFAR-10N; the carved 20% held-out rows have "
        f"no out-of-fold probabilities); recipe `{recipe}`, {config['config']['train']['runs']} "
        f"run(s) x {config['recipe']['epochs']} epochs, {config['config']['cv_folds']}-fold "
        f"cross-fitting; held-out accuracy of the scoring model(s) "
        f"{run['accuracy'].mean():.3f}. Bootstrap 95% CIs over examples ({args.bootstrap:,}).",
        "",
        "| consensus label | accuracy vs clean_label | 95% CI | CROWDLAB minus it | 95% CI |",
        "|---|---|---|---|---|",
    ]
    for name, s in stats.items():
        diff = "—" if name.startswith("CROWDLAB") else f"{s['diff']:+.3f}"
        diff_ci = "—" if name.startswith("CROWDLAB") else _ci(s["diff_ci"], signed=True)
        lines.append(f"| {name} | {s['accuracy']:.3f} | {_ci(s['ci'])} | {diff} | {diff_ci} |")
    lines += ["", *split_table(run), "", *annotator_table(run, ds, path)]
    return "\n".join(lines)


def split_table(run: dict) -> list[str]:
    """Where CROWDLAB differs from the majority: by how many annotators agree."""
    votes, truth, given, agreed = run["votes"], run["truth"], run["given"], run["crowdlab"]
    k = run["oof"].shape[1]
    top = np.array([np.bincount(v[v >= 0], minlength=k).max() for v in votes])  # (N,)
    lines = [
        "| largest vote share | rows | majority accuracy | CROWDLAB accuracy | fixed | broken |",
        "|---|---|---|---|---|---|",
    ]
    for n in sorted(set(top.tolist())):
        m = top == n
        right, fixed = given[m] == truth[m], agreed[m] == truth[m]
        lines.append(
            f"| {n} of {votes.shape[1]} | {m.sum():,} | {right.mean():.3f} | {fixed.mean():.3f} "
            f"| {(~right & fixed).sum()} | {(right & ~fixed).sum()} |"
        )
    return lines


def annotator_table(run: dict, ds, path: Path) -> list[str]:
    """Annotators by true accuracy, beside CROWDLAB's quality and Dawid–Skene's estimate."""
    summary = {
        r["annotator"]: r for r in store.read_json(store.RunDir(path).summary_file)["annotators"]
    }
    names = [str(a) for a in run["annotators"]]
    votes, truth, given = run["votes"], run["truth"], run["given"]
    rows = []
    for a, name in enumerate(names):
        voted = votes[:, a] >= 0
        true = (votes[voted, a] == truth[voted]).mean()
        majority = (votes[voted, a] == given[voted]).mean()
        rows.append((name, true, summary[name]["quality"], ds.accuracy[a], majority))
    rows.sort(key=lambda r: -r[1])
    lines = [
        "| annotator | true accuracy | CROWDLAB quality | Dawid–Skene accuracy "
        "| agrees with majority |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {t:.3f} | {q:.3f} | {d:.3f} | {m:.3f} |" for n, t, q, d, m in rows]
    true = [r[1] for r in rows]
    rho_c = spearmanr(true, [r[2] for r in rows]).statistic
    rho_d = spearmanr(true, [r[3] for r in rows]).statistic
    lines += [
        "",
        f"Spearman of the estimated against the true accuracy over the {len(rows)} annotators: "
        f"CROWDLAB {rho_c:+.2f}, Dawid–Skene {rho_d:+.2f}.",
    ]
    return lines


def _ci(bounds: np.ndarray, signed: bool = False) -> str:
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"[{fmt.format(bounds[0])}, {fmt.format(bounds[1])}]"


def main() -> None:
    args = parse_args()
    path = score_run(args)
    table = report(read_run(path, args.data), args, path)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "annotators.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
