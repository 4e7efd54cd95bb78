"""Duplicates, near duplicates, train/test leaks and outliers injected into CIFAR-10: found?

A seeded sample of CIFAR-10 (default 2,000 training + 500 test images) gets copies injected
by this script, in a temporary parquet pair:

- exact: training images copied (same bytes) into training;
- near: training images shifted by 1-3 pixels (edges replicated) and re-encoded as JPEG
  (quality 75), copied into training;
- leak: test images copied (same bytes) into training;
- leak, near: test images shifted and re-encoded as above, copied into training (no goal:
  how far leakage detection reaches);
- outlier: out-of-distribution images (noise, upscaled tinted digits, stripes).

The training table is shuffled (seeded). Detection runs through the real pipeline
(`scoring.training.pipeline.score`, scores near_dup,outlier,leakage, one 1-epoch run)
on these feature settings, all offline:

- fallback: the label-free features with no model (`--recipe mlp`: pixels under a seeded
  projection);
- effnet: the bundled EfficientNet-Lite0's embeddings (`--recipe probe`, no `--model`: what
  `--recipe auto` uses for these 32x32 images);
- vit-random: `--recipe probe --model FOLDER` with a random-init tiny ViT saved here;
- emb-only: Winnow's rule before the pixel check, for comparison (groups and leaks by the
  embeddings' threshold alone; outliers by the centred 5-NN cosine distance);
- + Datalab: cleanlab's Datalab (near_duplicate, outlier, non_iid, class_imbalance) on the
  very features of the setting above (the run folder's stored label-free features); its
  leaks are near-duplicate sets that join a training and a test row, from one Datalab over
  training + test rows.

Figures: recall of each injected kind (a pair is found when both rows share a duplicate
group / Datalab near-duplicate set, a leak when `leak_of` names its test row), "false groups"
(groups or sets holding no injected pair), "false leaks" (rows flagged as leaks that are
not), outlier precision among the top `n_outliers` and the ROC AUC of the outlier score for
the injected outliers, and the seconds of detection on stored features (Winnow: near_dup +
outlier + dup_group + leak_of; Datalab: find_issues on train, then near_duplicate on train +
test).

    python bench/duplicates.py [--train 2000] [--test 500] [--copies 50] [--settings ...]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CIFAR = Path("/work/shared/data/cifar10")
SETTINGS = ("fallback", "effnet", "vit-random")
KINDS = ("exact", "near", "leak", "leak_near", "outlier")


# -- the injected dataset ------------------------------------------------------------------


def _decode(cell: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB"))  # (32, 32, 3)


def _encode(pixels: np.ndarray, fmt: str, **kw) -> dict:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **kw)
    return {"bytes": buf.getvalue(), "path": None}


def _shift_jpeg(pixels: np.ndarray, rng: np.random.Generator) -> dict:
    """Shifted by 1-3 pixels in each direction with a shift (edges replicated), JPEG q75."""
    while True:
        dy, dx = rng.integers(-3, 4, size=2)
        if dy or dx:
            break
    pad = np.pad(pixels, ((3, 3), (3, 3), (0, 0)), mode="edge")
    moved = pad[3 + dy : 3 + dy + 32, 3 + dx : 3 + dx + 32]
    return _encode(np.ascontiguousarray(moved), "JPEG", quality=75)


def _outliers(n: int, rng: np.random.Generator) -> list[dict]:
    """Out-of-distribution images, unlike each other too (a cluster of outliers is no
    outlier to a kNN): in turn uniform noise, a digit of scikit-learn's 8x8 set upscaled
    and tinted, and stripes of a random period, angle and pair of colours."""
    from sklearn.datasets import load_digits

    digits = load_digits().images  # (1797, 8, 8) in 0..16
    out = []
    yy, xx = np.mgrid[:32, :32]
    for i in range(n):
        if i % 3 == 0:
            pixels = rng.integers(0, 256, size=(32, 32, 3))
        elif i % 3 == 1:
            grey = (digits[rng.integers(len(digits))] / 16).repeat(4, 0).repeat(4, 1)
            pixels = grey[..., None] * rng.integers(64, 256, size=3)
        else:
            angle, period = rng.uniform(0, np.pi), rng.uniform(3, 10)
            on = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0
            a, b = rng.integers(0, 256, size=(2, 3))
            pixels = np.where(on[..., None], a, b)
        out.append(_encode(pixels.astype(np.uint8), "PNG"))
    return out


def build(folder: Path, n_train: int, n_test: int, copies: int, seed: int = 0) -> dict:
    """Writes train.parquet / test.parquet with injected rows; returns where they are.

    Returns
    -------
    dict
        `pairs[kind]`: (original row, copy row) pairs, the original a training row
        (exact, near) or a test row (leak, leak_near), the copy a training row; `outliers`:
        training rows of the injected outliers. Rows are positions in the written files
        (the source's ids).
    """
    rng = np.random.default_rng(seed)
    src_train = pq.read_table(CIFAR / "train.parquet")
    src_test = pq.read_table(CIFAR / "test.parquet")
    schema = src_train.schema  # keeps the Hugging Face Image / ClassLabel metadata
    train = src_train.take(np.sort(rng.choice(src_train.num_rows, n_train, replace=False)))
    test = src_test.take(np.sort(rng.choice(src_test.num_rows, n_test, replace=False)))
    tr_img, tr_lab = train.column("img").to_pylist(), train.column("label").to_pylist()
    te_img, te_lab = test.column("img").to_pylist(), test.column("label").to_pylist()
    new = _injected(tr_img, tr_lab, te_img, te_lab, copies, rng)

    # Shuffled: the copies sit among the originals, not in a block at the end.
    rows = [
        (img, lab, "orig", i) for i, (img, lab) in enumerate(zip(tr_img, tr_lab, strict=True))
    ] + new
    written, pairs, outliers = _shuffled(rows, rng)
    table = pa.Table.from_pydict(
        {"img": [w[0] for w in written], "label": [w[1] for w in written]}, schema=schema
    )
    pq.write_table(table, folder / "train.parquet")
    pq.write_table(test, folder / "test.parquet")
    pixels = [np.stack([_decode(c) for c in cells]).transpose(0, 3, 1, 2)
              for cells in ([w[0] for w in written], te_img)]  # fmt: skip
    return {
        "pairs": pairs, "outliers": outliers, "n_train": len(written), "n_test": n_test,
        "pixels": pixels[0], "test_pixels": pixels[1],
    }  # fmt: skip


def _injected(
    tr_img: list[dict],
    tr_lab: list[int],
    te_img: list[dict],
    te_lab: list[int],
    copies: int,
    rng: np.random.Generator,
) -> list[tuple[dict, int, str, int]]:
    """The rows to inject, as (img, label, kind, original row): `copies` exact, near and
    leaked copies each, half as many leaked near copies, and the outliers."""
    originals = rng.choice(len(tr_img), 2 * copies, replace=False)
    leaked = rng.choice(len(te_img), copies + copies // 2, replace=False)
    new: list[tuple[dict, int, str, int]] = []
    for i in originals[:copies]:
        new.append((tr_img[i], tr_lab[i], "exact", int(i)))
    for i in originals[copies:]:
        new.append((_shift_jpeg(_decode(tr_img[i]), rng), tr_lab[i], "near", int(i)))
    for j in leaked[:copies]:
        new.append((te_img[j], te_lab[j], "leak", int(j)))
    for j in leaked[copies:]:
        new.append((_shift_jpeg(_decode(te_img[j]), rng), te_lab[j], "leak_near", int(j)))
    n_out = max(1, copies * 2 // 5)
    for cell in _outliers(n_out, rng):
        new.append((cell, int(rng.integers(10)), "outlier", -1))
    return new


def _shuffled(
    rows: list[tuple[dict, int, str, int]], rng: np.random.Generator
) -> tuple[list[tuple[dict, int, str, int]], dict[str, list[tuple[int, int]]], list[int]]:
    """`rows` (originals first, by their row) in a seeded order: (written rows, pairs, outliers)
    with `build`'s meaning, the rows named by their written position."""
    order = rng.permutation(len(rows))
    position = np.empty(len(rows), dtype=np.int64)
    position[order] = np.arange(len(rows))  # old row -> written row
    written = [rows[o] for o in order]
    pairs: dict[str, list[tuple[int, int]]] = {k: [] for k in KINDS if k != "outlier"}
    outliers = []
    for row, (_, _, kind, orig) in enumerate(written):
        if kind in ("exact", "near"):
            pairs[kind].append((int(position[orig]), row))
        elif kind in ("leak", "leak_near"):
            pairs[kind].append((orig, row))
        elif kind == "outlier":
            outliers.append(row)
    return written, pairs, outliers


def save_random_vit(folder: Path) -> Path:
    """A random-init tiny ViT (32x32 input, 4x4 patches, width 64, 2 layers) and processor."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32, patch_size=4, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=128,
    )  # fmt: skip
    transformers.ViTModel(config).save_pretrained(folder, safe_serialization=True)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


# -- detection -----------------------------------------------------------------------------


def run_winnow(data: Path, cache: Path, model: Path | str | None) -> tuple[Path, float]:
    from scoring.config import DataConfig, ScoreConfig, TrainConfig
    from scoring.training.pipeline import score

    train = TrainConfig(runs=1, epochs=1, recipe="probe" if model else "mlp",
                        model=str(model) if model else None)  # fmt: skip
    config = ScoreConfig(
        data=DataConfig(source=str(data / "train.parquet"), test=str(data / "test.parquet")),
        train=train,
        scores=("near_dup", "outlier", "leakage"),
    ).validate()
    t0 = time.perf_counter()
    run = score(config, cache, show_progress=False)
    return run, time.perf_counter() - t0


def winnow_detect(run: Path, truth: dict) -> dict:
    """What the run wrote, and the seconds of the detection itself on its stored features."""
    from scoring import store
    from scoring.scores import neighbourhood as nb

    rd = store.RunDir(run)
    frame = store.read_scores(run)
    feats = store.load_arrays(rd.features_free_file)["features"]
    test_feats = store.load_arrays(rd.features_free_test_file)["features"]
    # Timed on the stored features, content keys given: what Datalab is timed on too.
    keys = [str(i) for i in range(len(feats))]
    test_keys = [f"t{i}" for i in range(len(test_feats))]
    t0 = time.perf_counter()
    nb.near_dup(features_free=feats)
    nb.outlier(features_free=feats)
    nb.leakage(features_free=feats, features_free_test=test_feats)
    pixels, test_pixels = truth["pixels"], truth["test_pixels"]
    nb.dup_groups(feats, keys, pixels)
    nb.leak_of(feats, keys, test_feats, test_keys, np.arange(len(test_feats)), pixels, test_pixels)
    seconds = time.perf_counter() - t0
    # The rule before the pixel check (issue 15's first version), for comparison: groups
    # and leaks by the embeddings' threshold alone, outliers by the centred 5-NN distance.
    keys, test_keys = nb.content_keys(pixels), nb.content_keys(test_pixels)
    t0 = time.perf_counter()
    before = {
        "sets": _sets(nb.dup_groups(feats, keys)),
        "leak_of": nb.leak_of(feats, keys, test_feats, test_keys, np.arange(len(test_feats))),
        "outlier": nb._knn(feats, 5)[0].mean(axis=1),
    }
    before["seconds"] = time.perf_counter() - t0
    return {
        "sets": _sets(frame["dup_group"].to_numpy()),
        "leak_of": frame["leak_of"].to_numpy(),
        "outlier": frame["outlier"].to_numpy(),
        "seconds": seconds,
        "features": feats,
        "test_features": test_feats,
        "labels": frame["label"].to_numpy(),
        "before": before,
    }


def _sets(groups: np.ndarray) -> list[set[int]]:
    return [set(np.nonzero(groups == g)[0].tolist()) for g in np.unique(groups[groups >= 0])]


def datalab_detect(feats: np.ndarray, test_feats: np.ndarray, labels: np.ndarray) -> dict:
    """Datalab on the same features: near-duplicate sets, outlier scores, leaks, extras."""
    from cleanlab import Datalab

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(
        features=feats,
        issue_types={"near_duplicate": {}, "outlier": {}, "non_iid": {}, "class_imbalance": {}},
    )
    n = len(feats)
    both = np.concatenate([feats, test_feats])
    lab2 = Datalab(data={"label": np.zeros(len(both), dtype=int)}, label_name="label", verbosity=0)
    lab2.find_issues(features=both, issue_types={"near_duplicate": {}})
    seconds = time.perf_counter() - t0
    nd_sets = lab.get_info("near_duplicate")["near_duplicate_sets"]
    sets = _components([[i, *map(int, s)] for i, s in enumerate(nd_sets) if len(s)], n)
    leak = np.full(n, -1, dtype=np.int64)
    for i, s in enumerate(lab2.get_info("near_duplicate")["near_duplicate_sets"][:n]):
        test_rows = sorted(int(j) - n for j in s if j >= n)
        if test_rows:
            leak[i] = test_rows[0]
    summary = lab.get_issue_summary().set_index("issue_type")
    non_iid = lab.get_info("non_iid")
    return {
        "sets": sets,
        "leak_of": leak,
        # Datalab's outlier score is a quality: lower = more outlying.
        "outlier": -lab.get_issues("outlier")["outlier_score"].to_numpy(),
        "seconds": seconds,
        "non_iid_p": float(non_iid.get("p-value", summary.loc["non_iid", "score"])),
        "class_imbalance_flagged": int(summary.loc["class_imbalance", "num_issues"]),
    }


def _components(groups: list[list[int]], n: int) -> list[set[int]]:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for g in groups:
        for j in g[1:]:
            a, b = find(g[0]), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    comps: dict[int, set[int]] = {}
    for g in groups:
        for i in g:
            comps.setdefault(find(i), set()).add(i)
    return list(comps.values())


# -- figures -------------------------------------------------------------------------------


def figures(found: dict, truth: dict) -> dict:
    """Recall per injected kind, false groups / leaks, outlier precision and AUC."""
    from sklearn.metrics import roc_auc_score

    pos = {i: k for k, s in enumerate(found["sets"]) for i in s}
    out: dict[str, float] = {}
    for kind in ("exact", "near"):
        hits = [pos.get(a, -1) == pos.get(b, -2) for a, b in truth["pairs"][kind]]
        out[kind] = float(np.mean(hits))
    for kind in ("leak", "leak_near"):
        hits = [found["leak_of"][row] == t for t, row in truth["pairs"][kind]]
        out[kind] = float(np.mean(hits))
    injected = {frozenset(p) for k in ("exact", "near") for p in truth["pairs"][k]}
    in_pairs = {r for p in injected for r in p}
    out["extra_rows"] = sum(len(s - in_pairs) for s in found["sets"])
    out["false_groups"] = sum(
        not any(p <= s for p in injected) for s in found["sets"]
    )  # fmt: skip
    leak_rows = {row for k in ("leak", "leak_near") for _, row in truth["pairs"][k]}
    out["false_leaks"] = int(sum(1 for i in np.nonzero(found["leak_of"] >= 0)[0]
                                 if i not in leak_rows))  # fmt: skip
    is_out = np.zeros(truth["n_train"], dtype=bool)
    is_out[truth["outliers"]] = True
    top = np.argsort(-found["outlier"], kind="stable")[: is_out.sum()]
    out["outlier_p"] = float(is_out[top].mean())
    out["outlier_auc"] = float(roc_auc_score(is_out, found["outlier"]))
    out["seconds"] = found["seconds"]
    out["groups"] = len(found["sets"])
    return out


HEADER = (
    f"{'features':<12}{'detector':<9}{'exact':>7}{'near':>7}{'leak':>7}{'leak~':>7}"
    f"{'groups':>8}{'false g':>8}{'extra':>7}{'false l':>8}{'out P':>7}{'out AUC':>8}"
    f"{'det s':>7}{'run s':>7}"
)
LEGEND = (
    "\nexact/near: share of injected pairs in one duplicate group (Datalab: one "
    "near-duplicate set); leak / leak~: share of test copies (exact / shifted + JPEG) "
    "whose leak_of names their test row; false g: groups holding no injected pair; "
    "extra: rows in groups that are in no injected pair; "
    "false l: rows flagged as leaks that are not; out P: precision of the top-n outlier "
    "scores for the n injected outliers; det s: detection on stored features; run s: the "
    "whole `score` call. emb-only: groups and leaks by the embeddings' threshold alone "
    "and the centred 5-NN outlier distance (before the pixel check). Timings from a "
    "shared machine."
)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--copies", type=int, default=50, help="exact, near and leaked each")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--no-datalab", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        truth = build(tmp, args.train, args.test, args.copies)
        print(
            f"{truth['n_train']} training rows ({args.train} CIFAR-10 + {args.copies} exact, "
            f"{args.copies} near, {args.copies} leaked, {args.copies // 2} leaked near, "
            f"{len(truth['outliers'])} outliers), {args.test} test rows; built in "
            f"{time.perf_counter() - t0:.1f} s\n"
        )
        print(HEADER)
        print("-" * len(HEADER))
        for setting in args.settings.split(","):
            results += _bench_setting(tmp, setting, truth, datalab=not args.no_datalab)
    print(LEGEND)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def _bench_setting(tmp: Path, setting: str, truth: dict, *, datalab: bool) -> list[dict]:
    """One feature setting: score the data, print each detector's figures, return them."""
    model = {
        "vit-random": lambda: save_random_vit(tmp / "vit"),
        "effnet": lambda: "efficientnet-lite0",
    }.get(setting, lambda: None)()
    run, run_s = run_winnow(tmp, tmp / "cache", model)
    ours = winnow_detect(run, truth)
    rows = [
        ("winnow", figures(ours, truth), run_s),
        ("emb-only", figures(ours["before"], truth), float("nan")),
    ]
    if datalab:
        theirs = datalab_detect(ours["features"], ours["test_features"], ours["labels"])
        rows.append(("datalab", figures(theirs, truth), float("nan")))
    results = []
    for detector, f, seconds in rows:
        print(
            f"{setting:<12}{detector:<9}{f['exact']:>7.2f}{f['near']:>7.2f}"
            f"{f['leak']:>7.2f}{f['leak_near']:>7.2f}{f['groups']:>8}"
            f"{f['false_groups']:>8}{f['extra_rows']:>7}{f['false_leaks']:>8}{f['outlier_p']:>7.2f}"
            f"{f['outlier_auc']:>8.3f}{f['seconds']:>7.2f}{seconds:>7.1f}",
            flush=True,
        )
        results.append({"features": setting, "detector": detector, **f, "run_s": seconds})
    if datalab:
        print(
            f"{'':<12}datalab: non_iid p-value {theirs['non_iid_p']:.3f}, "
            f"class_imbalance flags {theirs['class_imbalance_flagged']} rows"
        )
    return results


if __name__ == "__main__":
    main()
