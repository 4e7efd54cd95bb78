"""Recording overhead: training with per-example dynamics recording vs the same training without.

Same model, data, seed and schedule; the two variants alternate (ABAB...) so drift in machine
load hits both alike, and the median of the per-pair ratios is reported. Goal: <= 1.05.
Recording includes EL2N's fixed-weight pass (one eval-mode forward over the training set
after the early epoch); its own cost is timed apart (`eval s`, median) and given as a share
of the plain training time (`eval %`).

    python bench/recording_overhead.py [--repeats 5] [--recipes mlp,cnn32]

mlp runs on the digits (1,437 training images); cnn32 on 32x32 images: the first 5,000 of
../shared/data/cifar10/train.parquet when present, otherwise random tensors of that shape
(timing does not depend on pixel values).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from scoring.training.loop import fit, predict, seed_everything  # noqa: E402
from scoring.training.models import SINGLE_THREAD_RECIPES, build_model, resolve_recipe  # noqa: E402

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train.parquet"


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)[:, None])  # (N, 1, 8, 8)
    return x[:1437], torch.from_numpy(d.target[:1437].astype(np.int64))


def _images32(n: int = 5000) -> tuple[torch.Tensor, torch.Tensor, str]:
    if CIFAR.exists():
        import pyarrow.parquet as pq
        from PIL import Image

        table = pq.read_table(CIFAR).slice(0, n).to_pydict()
        imgs = [np.asarray(Image.open(io.BytesIO(r["bytes"])).convert("RGB")) for r in table["img"]]
        x = torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        return x, torch.tensor(table["label"], dtype=torch.int64), "cifar10 (first 5,000)"
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 32, 32, generator=gen)
    return x, torch.randint(0, 10, (n,), generator=gen), "random 32x32 tensors"


def _time_fit(recipe_name: str, x, y, epochs: int, record: bool) -> tuple[float, torch.nn.Module]:
    recipe = resolve_recipe(recipe_name, modality="image", epochs=epochs)
    gen = seed_everything(0)
    model = build_model(recipe_name, tuple(x.shape[1:]), 10)
    t0 = time.perf_counter()
    fit(model, x, y, recipe, gen=gen, device=torch.device("cpu"), record=record)
    return time.perf_counter() - t0, model


def _time_eval_pass(model: torch.nn.Module, x) -> float:
    """EL2N's fixed-weight pass alone: the eval-mode forward `fit` makes after epoch t."""
    t0 = time.perf_counter()
    predict(model, x, device=torch.device("cpu"))
    model.train()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--recipes", default="mlp,cnn32")
    args = parser.parse_args()
    print(
        f"{'recipe':<8} {'data':<24} {'plain s':>8} {'record s':>9} {'ratio':>6} "
        f"{'eval s':>7} {'eval %':>6}"
    )
    for name in args.recipes.split(","):
        if name == "mlp":
            (x, y), what, epochs = _digits(), "digits (1,437)", 10
        else:
            x, y, what = _images32()
            epochs = 1
        torch.set_num_threads(1 if name in SINGLE_THREAD_RECIPES else os.cpu_count() or 1)
        _time_fit(name, x[:256], y[:256], 1, True)  # warm-up: first-call allocations
        ratios, plain, rec, evals = [], [], [], []
        for _ in range(args.repeats):
            a, _ = _time_fit(name, x, y, epochs, record=False)
            b, model = _time_fit(name, x, y, epochs, record=True)
            plain.append(a)
            rec.append(b)
            ratios.append(b / a)
            evals.append(_time_eval_pass(model, x))
        ev, pl = statistics.median(evals), statistics.median(plain)
        print(
            f"{name:<8} {what:<24} {pl:8.2f} {statistics.median(rec):9.2f} "
            f"{statistics.median(ratios):6.3f} {ev:7.3f} {100 * ev / pl:6.2f}"
        )


if __name__ == "__main__":
    main()
