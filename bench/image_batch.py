"""Images per second of the bundled image encoder by batch size, on this machine's CPU.

    python bench/image_batch.py [--images 64]

Why: `image_encoders.embed_images` picks its CPU batch size (CPU_BATCH) from these figures;
small batches were the faster ones on 2 cores at 224 px, and they also make the progress
count move often. Random 32x32 uint8 images (resized to 224 px like CIFAR-10's), one warm-up
pass first, the same loaded encoder for every batch size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from scoring.training.image_encoders import embed_images, load_image_model
from scoring.training.steps import cpu_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--sizes", default="4,8,16,64", help="batch sizes, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(cpu_threads())
    images = np.random.default_rng(0).integers(0, 255, (args.images, 3, 32, 32), dtype=np.uint8)
    loaded = load_image_model(None)
    embed_images(images[:4], model=None, batch_size=4, loaded=loaded)  # warm-up
    print(f"{args.images} images, {torch.get_num_threads()} threads")
    for size in (int(s) for s in args.sizes.split(",")):
        start = time.perf_counter()
        embed_images(images, model=None, batch_size=size, loaded=loaded)
        print(f"batch {size:>3}: {args.images / (time.perf_counter() - start):6.1f} images/s")


if __name__ == "__main__":
    main()
