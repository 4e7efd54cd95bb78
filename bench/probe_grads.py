"""Gradient scores on the probe's head: ghost norms against vmap and the training floor.

The image and text `probe` train a small head (Linear(D, 256), ReLU, Linear(256, K)) over
frozen embeddings, and record GraNd (loss, logit-sum and per-logit targets), TracIn and VoG
on all N training examples for every run. This times, on N unit-norm D-dim inputs (random:
the cost does not depend on the values) and seeded labels, on `--threads` threads:

- fwd+bwd: a training step's forward and backward over the N examples (batch 64, the
  probe's), no optimizer step: the floor of any full-gradient score;
- each GraNd target by `sq_grad_norms` (ghost norms: one batched forward and backward, no
  per-example gradient) and by the vmap path it replaced (`grads._vmap_sq_norms`, per-example
  gradients by torch.func), with their largest relative difference;
- TracIn over 5 checkpoints and VoG over 5 (`tracin_self_influence`, `input_grad_variance`).

    python bench/probe_grads.py [--n 3000] [--dim 1280] [--classes 10] [--threads 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.training import grads  # noqa: E402
from scoring.training.models import build_model  # noqa: E402


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fwd_bwd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 64) -> None:
    for s in range(0, x.shape[0], batch):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[s : s + batch]), y[s : s + batch]).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = F.normalize(torch.randn(args.n, args.dim), dim=1)
    y = torch.randint(0, args.classes, (args.n,))
    model = build_model("probe", (args.dim,), args.classes)
    floor, _ = timed(lambda: fwd_bwd(model, x, y))
    cpu = torch.device("cpu")
    print(
        f"probe head {args.dim} -> 256 -> {args.classes}, {args.n:,} examples, "
        f"{args.threads} threads; fwd+bwd floor {floor:.3f} s ({args.n / floor:,.0f} ex/s)"
    )
    head = ("target", "ghost s", "x floor", "vmap s", "speed-up", "max rel diff")
    print("{:<10} {:>8} {:>8} {:>8} {:>9} {:>13}".format(*head))
    for target in grads.TARGETS:
        ghost_s, ghost = timed(lambda t=target: grads.sq_grad_norms(model, x, y, target=t))
        vmap_s, vmap = timed(lambda t=target: grads._vmap_sq_norms(model, x, y, t, cpu, None, None))
        diff = float(np.max(np.abs(ghost - vmap) / np.maximum(np.abs(vmap), 1e-30)))
        print(
            f"{target:<10} {ghost_s:8.3f} {floor / ghost_s:8.2f} {vmap_s:8.2f} "
            f"{vmap_s / ghost_s:8.0f}x {diff:13.1e}"
        )
    models = [build_model("probe", (args.dim,), args.classes) for _ in range(5)]
    tracin_s, _ = timed(lambda: grads.tracin_self_influence(models, [1e-3] * 5, x, y))
    vog_s, _ = timed(lambda: grads.input_grad_variance(models, x, y))
    print(f"TracIn over 5 checkpoints {tracin_s:.3f} s, VoG over 5 {vog_s:.3f} s")
    print("(x floor: the floor's time over the score's; 1.0 = as fast as a training pass)")


if __name__ == "__main__":
    main()
