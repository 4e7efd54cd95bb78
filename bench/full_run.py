"""A whole dataset through the product, stage by stage, against the encoder's floor.

`cifar10`: the 50,000 training and 10,000 test images of ../shared/data/cifar10, scored by
the real pipeline with the defaults (`--recipe auto`, the image `probe` on the bundled
EfficientNet-Lite0, every default score). `sst2`: the 6,920 training sentences of
../shared/data/sst2 with its 1,821 test sentences (the probe on the bundled MiniLM; the
67k-phrase training set is not among the offline files). Each invocation starts from an
empty cache (bench/out/full-run/<dataset>/), so the embedding is computed, not read back.

Printed, in seconds: each stage of the run and its peak memory (this process's peak RSS
once the run is done, ru_maxrss):

- decode: reading the source and decoding it (`steps.prepare`);
- embed: the encoder over train + test (`steps.tensor_inputs`: preprocessing + forward);
- runs, cross_fit: the R recorded runs and the K cross-fit folds;
- scores: every score but the neighbourhood ones;
- neighbourhood: near_dup, outlier and leakage (kNN over the label-free embeddings) and
  the duplicate groups and leaks (`results.neighbourhood_columns`: content keys, groups,
  the shift-registered pixel check);
- write: the result files and health.json, less the neighbourhood columns;

then the floor: the encoder's forward pass alone (inputs preprocessed beforehand, the
product's batch size, one warm-up batch) over `--floor-sample` examples (default 2,000;
0 = all of them), scaled linearly to all N + M examples, and the ratio of the whole run to
it (goal: <= 1.5). Last, unless `--no-pages`, the embedding map (`winnow map`, timed apart:
not part of `score`) and every page's first draw (reading the run) and warm median,
through `bench/page_render.py`'s AppTest driver (goal: first draw <= 1 s).

    python bench/full_run.py cifar10 [--limit N] [--floor-sample 2000] [--no-pages]
    python bench/full_run.py sst2 [--floor-sample 0]

`--limit N` keeps a stratified N of the training examples (the test split stays whole); a
quick check of the script itself, not a figure to quote.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out" / "full-run"
NEIGHBOURHOOD_SCORES = ("near_dup", "outlier", "leakage")
SOURCES = {
    "cifar10": ("cifar10/train.parquet", "cifar10/test.parquet"),
    "sst2": ("sst2/train.parquet", "sst2/test.parquet"),
}


def peak_rss_gb() -> float:
    """This process's peak resident memory so far, GB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


class Stopwatch:
    """Wall seconds per named stage, accumulated over every call of the wrapped functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def timing(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def wrap(self, module: Any, attr: str, name: Callable[..., str] | str) -> None:
        """Replace `module.attr` by a timed call; `name` may read the call's arguments."""
        inner = getattr(module, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.timing(name(*args, **kwargs) if callable(name) else name):
                return inner(*args, **kwargs)

        setattr(module, attr, timed)


def run_pipeline(config: Any, cache: Path) -> tuple[Path, Any, dict, dict, float]:
    """Score `config` into `cache`.

    Returns (run folder, its `Prepared` (the decoded data), stage seconds, seconds per
    score, wall seconds).
    """
    from scoring import store
    from scoring.training import pipeline, results

    watch = Stopwatch()
    watch.wrap(pipeline, "prepare", "decode")
    prepared: list[Any] = []
    inner_prepare = pipeline.prepare
    pipeline.prepare = lambda *a, **kw: prepared.append(inner_prepare(*a, **kw)) or prepared[-1]
    watch.wrap(results, "neighbourhood_columns", "neighbourhood_columns")
    watch.wrap(results, "compute", lambda key, arrays: f"score:{key}")
    t0 = time.perf_counter()
    run = pipeline.score(config, cache, show_progress=True)
    wall = time.perf_counter() - t0
    timings = json.loads(store.RunDir(run).summary_file.read_text())["timings_s"]
    shown = watch.seconds
    per_score = {k[6:]: v for k, v in shown.items() if k.startswith("score:")}
    near = sum(per_score.get(k, 0.0) for k in NEIGHBOURHOOD_SCORES)
    stages = {
        "decode": shown["decode"],
        "embed": timings.get("inputs", 0.0),
        "runs": timings["runs"],
        "cross_fit": timings.get("cross_fit", 0.0),
        "scores": timings["scores"] - near,
        "neighbourhood": near + shown["neighbourhood_columns"],
        "write": timings["write"] + timings.get("health", 0.0) - shown["neighbourhood_columns"],
    }
    stages["other"] = wall - sum(stages.values())  # locks, setup, summary, manifest
    return run, prepared[-1], stages, per_score, wall


def image_floor(images: np.ndarray, sample: int, device: Any) -> tuple[float, float, int]:
    """Seconds per image of the bundled encoder's forward alone, and of its preprocessing.

    Returns (forward s/image, preprocessing s/image, images timed).
    """
    import torch

    from scoring.data.decode import display_pixels
    from scoring.training import efficientnet
    from scoring.training.image_encoders import (
        CPU_BATCH,
        GPU_BATCH,
        load_image_model,
        to_uint8_rgb,
    )
    from scoring.training.steps import cpu_threads

    torch.set_num_threads(cpu_threads())
    device = torch.device(device)
    size = CPU_BATCH if device.type == "cpu" else GPU_BATCH  # as embed_images picks it
    n = len(images) if sample <= 0 else min(sample, len(images))
    to_pixels, encoder, _ = load_image_model(None)
    encoder.to(device).eval()
    t0 = time.perf_counter()
    batches = [
        to_pixels(to_uint8_rgb(display_pixels(images[s : s + size], 255))).to(device)
        for s in range(0, n, size)
    ]
    prep_s = time.perf_counter() - t0
    with torch.inference_mode():
        efficientnet.pool(encoder, batches[0])  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for pixels in batches:
            efficientnet.pool(encoder, pixels)
        _sync(device)
        forward_s = time.perf_counter() - t0
    return forward_s / n, prep_s / n, n


def text_floor(texts: list, sample: int, device: Any) -> tuple[float, float, int]:
    """Seconds per sentence of the bundled MiniLM's forward alone (inputs tokenized and
    padded beforehand, length-sorted batches as the product makes them), and of tokenizing.

    Returns (forward s/sentence, tokenizing s/sentence, sentences timed).
    """
    import torch

    from scoring.training import embed
    from scoring.training.steps import DEFAULT_MAX_LENGTH, cpu_threads

    torch.set_num_threads(cpu_threads())
    device = torch.device(device)
    n = len(texts) if sample <= 0 else min(sample, len(texts))
    tok, enc = embed._load(None)
    enc.to(device).eval()
    t0 = time.perf_counter()
    ids, types, _ = embed.text_windows(
        tok, texts[:n], max_length=DEFAULT_MAX_LENGTH, long_text="chunk"
    )
    order = np.argsort([len(w) for w in ids], kind="stable")
    batches = [
        {
            k: v.to(device)
            for k, v in embed._pad(
                [ids[i] for i in order[s : s + 64]], None, tok.pad_token_id or 0
            ).items()
        }
        for s in range(0, len(ids), 64)
    ]
    prep_s = time.perf_counter() - t0
    with torch.inference_mode():
        enc(**batches[0])  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for batch in batches:
            enc(**batch)
        _sync(device)
        forward_s = time.perf_counter() - t0
    return forward_s / n, prep_s / n, n


def _sync(device: Any) -> None:
    """Wait for queued GPU work, so that a timer reads finished work."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def page_times(run: Path, cache: Path, repeats: int) -> tuple[float, list]:
    """(map seconds, [(page, first draw s, warm median s)])."""
    from page_render import render_times

    from scoring import store
    from scoring.read.maps import compute_map

    t0 = time.perf_counter()
    if not store.RunDir(run).map_file.exists():
        compute_map(run)
    return time.perf_counter() - t0, render_times(run, repeats, cache)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(SOURCES))
    parser.add_argument("--data", type=Path, help="folder with train.parquet, test.parquet")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--recipe", default="auto")
    parser.add_argument("--runs", type=int, default=None, help="default: the product's")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scores", default=None, help="default: the product's")
    parser.add_argument("--floor-sample", type=int, default=2000)
    parser.add_argument("--no-floor", action="store_true", help="skip the encoder's floor")
    parser.add_argument("--no-pages", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def _config(args: argparse.Namespace) -> Any:
    """The run's ScoreConfig: the product's defaults but for the options given."""
    from scoring.config import DataConfig, ScoreConfig, TrainConfig

    data = args.data or DATA / args.dataset
    train = {"recipe": args.recipe, "runs": args.runs, "epochs": args.epochs}
    train["device"] = args.device
    scores = {} if args.scores is None else {"scores": tuple(args.scores.split(","))}
    return ScoreConfig(
        **scores,
        data=DataConfig(
            source=str(data / "train.parquet"), test=str(data / "test.parquet"), limit=args.limit
        ),
        train=TrainConfig(**{k: v for k, v in train.items() if v is not None}),
    )


def _report_run(figures: dict[str, Any], summary: dict, unit: str, device: str) -> None:
    """Print the run's stages, per-epoch and per-score times and memory (from `figures`)."""
    f, wall = figures, figures["wall_s"]
    print(
        f"\n{f['dataset']} ({f['recipe']}, {device}): {f['n_train']:,} training + "
        f"{f['n_test']:,} test {unit}, {f['runs']} runs x {f['epochs']} epochs"
    )
    print(f"test accuracy {summary['test_accuracy_mean']:.4f} (mean over runs)")
    print(f"{'stage':<14} {'seconds':>9} {'share':>7}")
    for name, secs in f["stages_s"].items():
        print(f"{name:<14} {secs:9.1f} {secs / wall:7.1%}")
    print(f"{'whole run':<14} {wall:9.1f}")
    if summary.get("training_s"):
        f["epoch_s"] = summary["training_s"] / (f["runs"] * f["epochs"])
        print(f"training: {f['epoch_s']:.2f} s per epoch ({summary['training_s']:.1f} s in all)")
    if summary.get("gradient_scores_s"):
        print(f"gradient scores during the runs: {summary['gradient_scores_s']:.1f} s")
    ranked = sorted(f["scores_s"].items(), key=lambda kv: -kv[1])
    print("per score (from the recorded runs): " + ", ".join(f"{k} {v:.2f} s" for k, v in ranked))
    print(f"peak memory (RSS) after the run: {f['peak_rss_gb']:.2f} GB (goal <= 3 GB)")
    if f["gpu_peak_gb"] is not None:
        print(f"peak GPU memory allocated: {f['gpu_peak_gb']:.2f} GB")


def main() -> None:
    args = _args()
    from scoring import store

    cache = OUT / f"{args.dataset}-{args.recipe}-{args.device}"
    shutil.rmtree(cache, ignore_errors=True)  # an empty cache: the embedding is computed
    cache.mkdir(parents=True)
    run, prep, stages, per_score, wall = run_pipeline(_config(args), cache)
    summary = json.loads(store.RunDir(run).summary_file.read_text())
    n_train, n_test = len(prep.dataset.train.labels), len(prep.dataset.test.labels)
    figures: dict[str, Any] = {
        "dataset": args.dataset, "recipe": prep.recipe.name, "run": run.name,
        "peak_rss_gb": peak_rss_gb(), "gpu_peak_gb": _gpu_peak_gb(args.device),
        "n_train": n_train, "n_test": n_test, "runs": prep.n_runs, "epochs": prep.recipe.epochs,
        "wall_s": wall, "stages_s": stages, "scores_s": per_score,
        "timings_s": summary["timings_s"], "test_accuracy_mean": summary["test_accuracy_mean"],
    }  # fmt: skip
    unit = "images" if prep.dataset.modality == "image" else "sentences"
    _report_run(figures, summary, unit, args.device)
    if not args.no_floor and prep.recipe.name == "probe":
        floor_fn = image_floor if prep.dataset.modality == "image" else text_floor
        per_example, prep_per_example, timed = floor_fn(
            prep.dataset.train.inputs, args.floor_sample, prep.device
        )
        floor = per_example * (n_train + n_test)
        figures.update(floor_s=floor, ratio=wall / floor)
        print(
            f"floor: the encoder's forward alone, {1 / per_example:.1f} {unit}/s over {timed:,} "
            f"{unit}, scaled to {n_train + n_test:,}: {floor:.1f} s "
            f"(input preprocessing {prep_per_example * (n_train + n_test):.1f} s more)"
        )
        print(f"whole run / floor: {wall / floor:.2f}x (goal <= 1.5x)")
    del prep
    if not args.no_pages:
        map_s, rows = page_times(run, cache, args.repeats)
        figures.update(map_s=map_s, pages=rows)
        print(f"\nembedding map (winnow map, not part of score): {map_s:.1f} s")
        print(f"{'page':<14} {'first draw':>11} {'warm median':>12}   (goal: first draw <= 1 s)")
        for page, first, warm in rows:
            print(f"{page:<14} {first:11.2f} {warm:12.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))


def _gpu_peak_gb(device: str) -> float | None:
    """Peak GPU memory torch allocated in this process, GB; None off CUDA."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 1024**3


if __name__ == "__main__":
    main()
