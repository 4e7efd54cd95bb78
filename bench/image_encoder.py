"""The bundled image encoder (EfficientNet-Lite0, ImageNet): which resolution, crop and pooling.

A seeded, class-balanced sample of CIFAR-10 (default 1,000 training + 500 test images from
/work/shared/data/cifar10) is embedded at each input resolution through the product's own
preprocessing (`scoring.training.efficientnet.preprocess`: the whole central square,
bicubic resize, (x - 127) / 128) on `--threads` CPU threads. One forward pass gives every
pooling compared:

- avg: global average of the last 1x1 conv (1,280), what the ImageNet classifier reads;
- max: global max of the same (1,280);
- avg+max: both, concatenated (2,560);
- pre-head: global average of the last MBConv block, before the 1x1 head conv (320).

Each is L2-normalised (as the product does) and read by two probes: a logistic regression
(standardised features, C = 0.1) and Winnow's own `probe` recipe (256-unit head, Adam 1e-3,
20 epochs, seed 0). Images/s is the whole embedding path (preprocess + forward + pool) over
the train and test images, batch 64. At `--variants-at` (default 224) two more rows check the
preprocessing: TF's eval crop (the central size / (size + 32) of the image, as TensorFlow's
EfficientNet evaluates ImageNet) and the ImageNet mean/std normalisation that the package's
README copies from EfficientNet-B0 (instead of TF-Lite's 127/128). `--digits` adds
scikit-learn's 8x8 digits (1,000 / 500 split): the encoder at `--variants-at` px against
the digits `mlp` recipe trained on the same split from scratch.

    python bench/image_encoder.py [--train 1000] [--test 500] [--sizes 128 160 224]
        [--variants-at 224] [--digits] [--threads 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"

from scoring.training import efficientnet as effnet  # noqa: E402

POOLINGS = ("avg", "max", "avg+max", "pre-head")
_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def sample(path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images, n / 10 per class, seeded: (n, 32, 32, 3) uint8 and (n,) labels."""
    import pandas as pd
    from PIL import Image

    frame = pd.read_parquet(path)
    rng = np.random.default_rng(seed)
    labels = frame["label"].to_numpy()
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), n // 10, replace=False) for c in range(10)]
    )
    rows = rng.permutation(rows)
    images = np.stack(
        [
            np.asarray(Image.open(io.BytesIO(frame["img"].iloc[i]["bytes"])).convert("RGB"))
            for i in rows
        ]
    )
    return images, labels[rows]


def digits(n_train: int, n_test: int) -> tuple[np.ndarray, ...]:
    """Digits as the product holds them (0..16 stretched to 0..255, grey to RGB), split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(data.target))
    grey = np.rint(data.images[rows] / 16 * 255).astype(np.uint8)  # (N, 8, 8)
    rgb = np.repeat(grey[..., None], 3, axis=3)
    y = data.target[rows]
    return (
        rgb[:n_train],
        y[:n_train],
        rgb[n_train : n_train + n_test],
        y[n_train : n_train + n_test],
    )


def _features(encoder: torch.nn.Module, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every pooling from one pass; the stem, blocks and head as `extract_features` runs them."""
    x = encoder._swish(encoder._bn0(encoder._conv_stem(pixels)))
    for block in encoder._blocks:  # eval mode: drop-connect is off
        x = block(x)
    pre = x.mean(dim=(2, 3))  # (B, 320)
    x = encoder._swish(encoder._bn1(encoder._conv_head(x)))  # (B, 1280, h, w)
    avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
    return {"avg": avg, "max": mx, "avg+max": torch.cat([avg, mx], 1), "pre-head": pre}


@torch.inference_mode()
def embed(encoder, images: np.ndarray, size: int, variant: str = "tf") -> tuple[dict, float]:
    """{pooling: (N, D) unit rows} and the seconds of the whole path."""
    out: dict[str, list[np.ndarray]] = {p: [] for p in POOLINGS}
    t0 = time.perf_counter()
    for start in range(0, len(images), 64):
        batch = images[start : start + 64]
        if variant == "tf-crop":  # TF's ImageNet eval: the central size / (size + 32)
            pixels = effnet.preprocess(batch, size, crop_padding=32)
        else:
            pixels = effnet.preprocess(batch, size)
        if variant == "imagenet-norm":  # undo 127/128, apply ImageNet's mean/std
            raw = pixels * effnet.STD + effnet.MEAN
            pixels = ((raw - _IMAGENET_MEAN) / _IMAGENET_STD).contiguous(
                memory_format=torch.channels_last
            )
        for name, value in _features(encoder, pixels).items():
            out[name].append(torch.nn.functional.normalize(value, dim=1).numpy())
    seconds = time.perf_counter() - t0
    return {k: np.concatenate(v) for k, v in out.items()}, seconds


def logistic(x, y, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    return float((model.fit(x, y).predict(x_test) == y_test).mean())


def winnow_probe(x, y, x_test, y_test, recipe: str = "probe") -> float:
    """Winnow's own recipe (seed 0) trained on x, accuracy on x_test."""
    from scoring.training.loop import fit, predict, seed_everything
    from scoring.training.models import build_model, resolve_recipe

    x, x_test = torch.from_numpy(x), torch.from_numpy(x_test)
    gen = seed_everything(0)
    model = build_model(recipe, tuple(x.shape[1:]), 10)
    r = resolve_recipe(recipe, modality="image")
    fit(model, x, torch.from_numpy(y), r, gen=gen, device=torch.device("cpu"), record=False)
    probs = predict(model, x_test, device=torch.device("cpu")).probs
    return float((probs.argmax(1) == y_test).mean())


def row(name, size, feats, seconds, n, y, y_test, n_train) -> list[str]:
    lines = []
    for pooling in POOLINGS:
        f = feats[pooling]
        log = logistic(f[:n_train], y, f[n_train:], y_test)
        probe = winnow_probe(f[:n_train], y, f[n_train:], y_test) if pooling == "avg" else None
        lines.append(
            f"| {name} | {size} | {pooling} | {f.shape[1]} | {log:.3f} | "
            f"{'' if probe is None else f'{probe:.3f}'} | {n / seconds:.1f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 224])
    parser.add_argument("--variants-at", type=int, default=224)
    parser.add_argument("--digits", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = sample(CIFAR / "train.parquet", args.train, seed=0)
    x_test, y_test = sample(CIFAR / "test.parquet", args.test, seed=1)
    images = np.concatenate([x, x_test])
    encoder = effnet.load_encoder()
    embed(encoder, images[:8], 128)  # warm-up: first-call allocations out of the timings
    print(
        f"CIFAR-10: {len(x)} train / {len(x_test)} test images, {args.threads} threads\n\n"
        "| data / preprocessing | px | pooling | width | logistic acc | Winnow probe acc "
        "| images/s |\n|---|---:|---|---:|---:|---:|---:|"
    )
    for size in args.sizes:
        feats, seconds = embed(encoder, images, size)
        row("CIFAR-10 / Winnow", size, feats, seconds, len(images), y, y_test, len(x))
    for variant in ("tf-crop", "imagenet-norm"):
        feats, seconds = embed(encoder, images, args.variants_at, variant)
        shown = {"tf-crop": "TF eval crop", "imagenet-norm": "ImageNet mean, std"}[variant]
        name, n = f"CIFAR-10 / {shown}", len(images)
        row(name, args.variants_at, feats, seconds, n, y, y_test, len(x))
    if args.digits:
        dx, dy, dx_test, dy_test = digits(args.train, args.test)
        feats, seconds = embed(encoder, np.concatenate([dx, dx_test]), args.variants_at)
        n = len(dx) + len(dx_test)
        row("digits / Winnow", args.variants_at, feats, seconds, n, dy, dy_test, len(dx))
        flat = lambda a: (a[..., 0].reshape(len(a), 1, 8, 8) / 255).astype(np.float32)  # noqa: E731
        t0 = time.perf_counter()
        acc = winnow_probe(flat(dx), dy, flat(dx_test), dy_test, recipe="mlp")
        print(f"| digits / `mlp` from scratch | 8 | pixels | 64 | | {acc:.3f} "
              f"| (trained in {time.perf_counter() - t0:.1f} s) |")  # fmt: skip


if __name__ == "__main__":
    main()
