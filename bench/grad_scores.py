"""Gradient-score throughput: GraNd, TracIn and VoG (scoring/grads.py) vs the baselines.

One run, one model (`cnn32`, BatchNorm statistics calibrated, eval mode for every
per-example computation), the same real CIFAR-10 images for every row; examples/s of

- forward (inference, batch 128) and forward+backward (a training step's work, batch 128,
  no per-example gradients: the floor for any full-gradient score);
- EL2N (forward + softmax + ‖p − onehot‖), goal >= 0.95 x forward;
- GraNd, all parameters: ours (`sq_grad_norms`: ghost norms, one batched forward and
  backward, no per-example gradient for the Gram-form layers) vs ours by `torch.func` vmap
  (the fallback for other models, and the path before ghost norms for convolutions) vs a
  per-example backward loop vs opacus `GradSampleModule`; goal >= 0.9 x forward+backward
  (issue 26) and faster than the baselines;
- TracIn self-influence over 3 checkpoints: ours vs Captum `TracInCP` in its exact mode
  (`sample_wise_grads_per_batch=False`; its batched mode hooks only Linear/Conv2d and skips
  BatchNorm's parameters, so it is timed too but marked inexact), goal >= 1.2 x; last layer:
  ours (`params="last"`) vs Captum
  `TracInCPFast`, goal >= 1.1 x;
- VoG over the same K = 3 checkpoints, goal >= 0.8 x (forward+backward / K).

Slow baselines (the loop, Captum's exact mode) are timed on the first --n-slow examples.
Every method is warmed up once, then timed in each of --repeats interleaved rounds (so a
busy spell on the machine hits all rows alike; a row under 1.5 s runs up to 3 times a
round); each figure is the best time. Captum's
exact mode backpropagates its whole batch once per example, so its batch size is picked as
the fastest of 1, 2, 4 unless --captum-batch is given. The rel. diff column checks
each baseline's scores against ours. The table is also written to bench/out/grad_scores.md.

    python bench/grad_scores.py [--n 512] [--n-slow 128] [--threads 2] [--repeats 2]

opacus refuses BatchNorm (buffers) even with strict=False, and `ModuleValidator.fix` would
swap it for GroupNorm, a different model. So its copy of the model has each BatchNorm2d
replaced by `_FrozenBatchNorm2d`: the same weight and bias parameters and running
statistics, the same eval-mode arithmetic, so the same function and parameters, plus a
closed-form opacus grad sampler for it (as opacus has for GroupNorm).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import copy  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "train.parquet"
LRS = (0.05, 0.03, 0.01)
# --ours-only rows
OURS = ("forward", "fb", "el2n", "grand", "grand_vmap", "tracin", "tracin_last", "vog")

from scoring.training import grads  # noqa: E402
from scoring.training.grads import (  # noqa: E402
    calibrate_batchnorm,
    input_grad_variance,
    sq_grad_norms,
    tracin_self_influence,
)
from scoring.training.models import build_model  # noqa: E402

# --- data and checkpoints ---------------------------------------------------------------


def load_images(source: Path, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n real training images (stratified subset, shuffled: the file is sorted by label)."""
    from scoring.config import DataConfig
    from scoring.data import load
    from scoring.data.decode import to_float

    if not source.exists():
        raise SystemExit(f"{source} not found; pass --data PATH to CIFAR-10's train.parquet")
    ds = load(DataConfig(source=str(source), limit=n))
    split = ds.train
    order = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(0))
    x = torch.from_numpy(to_float(split.inputs, ds.pixel_divisor))[order]  # float32, [0, 1]
    return x, torch.from_numpy(split.labels)[order]


def make_checkpoints(
    x: torch.Tensor, y: torch.Tensor, steps: int, batch: int, name: str = "cnn32"
) -> list[nn.Module]:
    """Init (BN calibrated), then `steps` SGD steps at each of LRS; each checkpoint calibrated.

    On the device `x` is on (the models follow it)."""
    device = x.device
    torch.manual_seed(0)
    model = build_model(name, tuple(x.shape[1:]), 10).to(device)
    calibrate_batchnorm(model, x, device=device)
    gen = torch.Generator().manual_seed(1)
    checkpoints = []
    for lr in LRS:
        model = copy.deepcopy(model).train()
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        for _ in range(steps):
            idx = torch.randint(0, x.shape[0], (batch,), generator=gen).to(device)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        calibrate_batchnorm(model, x, device=device)  # also leaves it in eval mode
        checkpoints.append(model)
    return checkpoints


# --- reference computations -----------------------------------------------------------


def forward_only(model: nn.Module, x, y, batch: int) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, x.shape[0], batch):
            out.append(model(x[s : s + batch]).max(1).values)
    return torch.cat(out).cpu().numpy()


def forward_backward(model: nn.Module, x, y, batch: int) -> np.ndarray:
    """A training step's gradient work (train mode, mean loss), no optimiser step."""
    model.train()
    out = []
    for s in range(0, x.shape[0], batch):
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[s : s + batch]), y[s : s + batch])
        loss.backward()
        out.append(loss.detach().reshape(1))
    return torch.cat(out).cpu().numpy()


def el2n(model: nn.Module, x, y, batch: int) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, x.shape[0], batch):
            probs = torch.softmax(model(x[s : s + batch]), 1)
            onehot = F.one_hot(y[s : s + batch], probs.shape[1]).to(probs.dtype)
            out.append((probs - onehot).norm(dim=1))
    return torch.cat(out).cpu().numpy()


def loop_sq_norms(model: nn.Module, x, y) -> np.ndarray:
    """One backward per example (batch of 1, eval mode): Σ_p ‖∂ℓ_i/∂p‖²."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        out[i] = float(sum(p.grad.pow(2).sum() for p in params))
    return out


def vmap_sq_norms(model: nn.Module, x, y) -> np.ndarray:
    """Ours by `torch.func` vmap: the path models ghost norms do not support take."""
    model.eval()
    return grads._vmap_sq_norms(model, x, y, "loss", x.device, None, None)


# --- opacus -----------------------------------------------------------------------------


class _FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d in eval mode, statistics held as plain tensors (opacus rejects buffers)."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps
        self.mean = bn.running_mean.detach().clone()
        self.var = bn.running_var.detach().clone()

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.mean, self.var, None, None, False, 0.0, self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.mean, self.var, self.weight, self.bias, False, 0.0, self.eps)


def _frozen_bn_grad_sample(layer: _FrozenBatchNorm2d, activations, backprops) -> dict:
    """Per-sample ∂ℓ/∂γ_c = Σ_hw δ · x̂, ∂ℓ/∂β_c = Σ_hw δ (cf. opacus's GroupNorm sampler)."""
    x_hat = layer.normalise(activations[0])
    return {
        layer.weight: torch.einsum("nchw->nc", x_hat * backprops),
        layer.bias: torch.einsum("nchw->nc", backprops),
    }


def opacus_model(model: nn.Module):
    """GradSampleModule over a copy of `model` whose BatchNorms are frozen (same function)."""
    from opacus import GradSampleModule
    from opacus.grad_sample import register_grad_sampler

    register_grad_sampler(_FrozenBatchNorm2d)(_frozen_bn_grad_sample)
    m = copy.deepcopy(model).eval()
    for module in list(m.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, child_name, _FrozenBatchNorm2d(child))
    logging.getLogger("opacus").setLevel(logging.ERROR)
    # opacus's hooks only record in training mode; no module here behaves differently in it.
    return GradSampleModule(m, loss_reduction="sum").train()


def opacus_sq_norms(gsm, x, y, batch: int) -> np.ndarray:
    out = []
    for s in range(0, x.shape[0], batch):
        gsm.zero_grad(set_to_none=True)  # also drops p.grad_sample
        F.cross_entropy(gsm(x[s : s + batch]), y[s : s + batch], reduction="sum").backward()
        sq = sum(p.grad_sample.flatten(1).pow(2).sum(1) for p in gsm.parameters())
        out.append(sq.double())
    return torch.cat(out).numpy()


# --- Captum -----------------------------------------------------------------------------


def captum_setup(checkpoints: list[nn.Module], tmp: Path) -> tuple[nn.Module, list[str]]:
    paths = []
    for k, (m, lr) in enumerate(zip(checkpoints, LRS, strict=True)):
        path = tmp / f"ckpt{k}.pt"
        torch.save({"state_dict": m.state_dict(), "lr": lr}, path)
        paths.append(str(path))
    return copy.deepcopy(checkpoints[0]).eval(), paths


def _load_checkpoint(model: nn.Module, path: str) -> float:
    ckpt = torch.load(path, weights_only=True)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return float(ckpt["lr"])


def captum_tracin(model, paths, x, y, batch: int, *, batched: bool) -> np.ndarray:
    """TracInCP.self_influence; batched=True is the hook mode (Linear/Conv2d params only)."""
    from captum.influence import TracInCP
    from torch.utils.data import DataLoader, TensorDataset

    data = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)
    tracin = TracInCP(
        model,
        data,
        paths,
        checkpoints_load_func=_load_checkpoint,
        loss_fn=nn.CrossEntropyLoss(reduction="sum" if batched else "none"),
        batch_size=batch,
        sample_wise_grads_per_batch=batched,
    )
    return tracin.self_influence(data, outer_loop_by_checkpoints=True).double().numpy()


def captum_tracin_fast(model, paths, x, y, batch: int) -> np.ndarray:
    """TracInCPFast.self_influence: last layer, ‖∂ℓ/∂logits‖² ‖h‖² (no bias term)."""
    from captum.influence import TracInCPFast
    from torch.utils.data import DataLoader, TensorDataset

    data = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)
    tracin = TracInCPFast(
        model,
        model.head,
        data,
        paths,
        checkpoints_load_func=_load_checkpoint,
        loss_fn=nn.CrossEntropyLoss(reduction="sum"),
        batch_size=batch,
        vectorize=True,
    )
    return tracin.self_influence(data, outer_loop_by_checkpoints=True).double().numpy()


# --- timing and report ------------------------------------------------------------------


def pick_captum_batch(model, paths, x, y) -> int:
    """Captum's exact mode backpropagates the whole batch once per example (O(B²)): the
    fastest batch size is tiny; pick it among 1, 2, 4 (best of 2 on 16 examples)."""
    captum_tracin(model, paths, x[:4], y[:4], 1, batched=False)  # warm-up
    times = {}
    for _ in range(2):
        for batch in (1, 2, 4):
            t0 = time.perf_counter()
            captum_tracin(model, paths, x[:16], y[:16], batch, batched=False)
            times[batch] = min(times.get(batch, float("inf")), time.perf_counter() - t0)
    return min(times, key=times.get)


def rel_diff(a: np.ndarray, ref: np.ndarray) -> str:
    """Median and max of |a − ref| / |ref| over the examples a covers."""
    a, ref = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)[: len(a)]
    d = np.abs(a - ref) / np.maximum(np.abs(ref), 1e-30)
    return f"{np.median(d):.0e} / {d.max():.0e}"


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="examples (real CIFAR-10 images)")
    parser.add_argument("--n-slow", type=int, default=128, help="examples for slow baselines")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--captum-batch", type=int, default=0, help="Captum exact mode's batch; 0 = fastest"
    )
    parser.add_argument("--steps", type=int, default=4, help="SGD steps between checkpoints")
    parser.add_argument("--data", type=Path, default=CIFAR)
    parser.add_argument("--model", default="cnn32", help="a from-scratch recipe's model")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="only Winnow's rows and their floors (no opacus, Captum or loop baselines)",
    )
    return parser.parse_args()


# Longer than 60 lines: one table row per method, each a name and the call it times; split,
# the rows would only be scattered over functions that each build a few of them.
def _methods(
    checkpoints: list[nn.Module],
    cmodel: nn.Module,
    paths: list[str],
    *,
    bs: int,
    cb: int,
    n: int,
    n_slow: int,
    ours_only: bool = False,
) -> dict[str, dict]:
    """The rows of the table, in its order, keyed by a short name; each row's `fn(x, y)` is
    the call timed, `ref` the key of the row its scores are checked against. `ours_only`
    keeps the floors and Winnow's rows (no opacus, Captum or per-example loop)."""
    model = checkpoints[-1]  # the single-model rows use the last checkpoint
    gsm = None if ours_only else opacus_model(model)
    fb_model = copy.deepcopy(model)  # train mode updates BN statistics: keep them off `model`
    K = len(checkpoints)

    def row(name, fn, *, slow=False, ref=None, inexact=False) -> dict:
        """fn(x, y) -> scores; slow: timed on the first n_slow; ref: row to compare with."""
        return {"name": name, "fn": fn, "slow": slow, "ref": ref, "inexact": inexact,
                "n": n_slow if slow else n, "secs": float("inf"), "out": None}  # fmt: skip

    rows = {
        "forward": row("forward", lambda a, b: forward_only(model, a, b, bs)),
        "fb": row("forward+backward (batched)", lambda a, b: forward_backward(fb_model, a, b, bs)),
        "el2n": row("EL2N", lambda a, b: el2n(model, a, b, bs)),
        "grand": row("GraNd all params, ours", lambda a, b: np.sqrt(sq_grad_norms(model, a, b))),
        "grand_vmap": row(
            "GraNd all params, ours by vmap (fallback)",
            lambda a, b: np.sqrt(vmap_sq_norms(model, a, b)),
            ref="grand",
        ),
        "loop": row(
            "GraNd, per-example backward loop",
            lambda a, b: np.sqrt(loop_sq_norms(model, a, b)),
            slow=True,
            ref="grand",
        ),
        "opacus": row(
            "GraNd, opacus GradSampleModule",
            lambda a, b: np.sqrt(opacus_sq_norms(gsm, a, b, bs)),
            ref="grand",
        ),
        "tracin": row(
            "TracIn all params, ours", lambda a, b: tracin_self_influence(checkpoints, LRS, a, b)
        ),
        "captum_exact": row(
            f"TracIn, Captum TracInCP exact (per-example, batch {cb})",
            lambda a, b: captum_tracin(cmodel, paths, a, b, cb, batched=False),
            slow=True,
            ref="tracin",
        ),
        "captum_batched": row(
            "TracIn, Captum TracInCP batched",
            lambda a, b: captum_tracin(cmodel, paths, a, b, bs, batched=True),
            ref="tracin",
            inexact=True,
        ),
        "tracin_last": row(
            "TracIn last layer, ours",
            lambda a, b: tracin_self_influence(checkpoints, LRS, a, b, params="last"),
        ),
        "captum_fast": row(
            "TracIn last layer, Captum TracInCPFast",
            lambda a, b: captum_tracin_fast(cmodel, paths, a, b, bs),
            ref="tracin_last",
        ),
        "vog": row(f"VoG, ours (K={K})", lambda a, b: input_grad_variance(checkpoints, a, b)),
    }
    if ours_only:
        return {k: r for k, r in rows.items() if k in OURS}
    return rows


def _time_rows(
    rows: dict[str, dict], x: torch.Tensor, y: torch.Tensor, n_slow: int, bs: int, rep: int
) -> None:
    """Fills each row's best `secs`, its `out` and its examples/s `eps`."""
    xs, ys = x[:n_slow], y[:n_slow]
    n = x.shape[0]
    for r in rows.values():  # warm-up: first-call allocations, vmap tracing, hooks
        w = 8 if r["slow"] else min(n, bs)
        r["fn"](x[:w], y[:w])
    # Rounds: every method once per round, so a busy spell on the machine hits all alike.
    for k in range(rep):
        for r in rows.values():
            xx, yy = (xs, ys) if r["slow"] else (x, y)
            for _ in range(3):  # a short row runs up to 3 times a round: ~1 s figures are noisy
                t0 = time.perf_counter()
                r["out"] = r["fn"](xx, yy)
                secs = time.perf_counter() - t0
                r["secs"] = min(r["secs"], secs)
                if secs > 1.5:
                    break
            print(f"  round {k + 1}: {r['name']:<56} {r['n'] / secs:8.1f} ex/s", file=sys.stderr)
    for r in rows.values():
        r["eps"] = r["n"] / r["secs"]


def _goals(rows: dict[str, dict], K: int) -> dict[str, tuple[dict, float, str]]:
    """Row name -> (its row, the examples/s it must reach, that goal in words)."""
    fwd, fb = rows["forward"], rows["fb"]
    goals = {
        "EL2N": (rows["el2n"], 0.95 * fwd["eps"], "0.95 x forward"),
        "GraNd all params, ours": (rows["grand"], 0.9 * fb["eps"], "0.9 x fwd+bwd"),
        f"VoG, ours (K={K})": (rows["vog"], 0.8 * fb["eps"] / K, f"0.8 x fwd+bwd / {K}"),
    }
    if "captum_exact" in rows:  # the goals against baselines, when they were timed
        goals["TracIn all params, ours"] = (
            rows["tracin"],
            1.2 * rows["captum_exact"]["eps"],
            "1.2 x Captum exact",
        )
        goals["TracIn last layer, ours"] = (
            rows["tracin_last"],
            1.1 * rows["captum_fast"]["eps"],
            "1.1 x TracInCPFast",
        )
    return goals  # fmt: skip


def _table(rows: dict[str, dict], goals: dict[str, tuple[dict, float, str]]) -> list[str]:
    """The markdown table: one line per row, its speed, goal and difference to its ref."""
    fwd, fb = rows["forward"], rows["fb"]
    lines = [
        "| method | examples | examples/s | × forward | × fwd+bwd | goal "
        "| rel. diff median / max |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows.values():
        goal = ""
        if r["name"] in goals:
            _, need, what = goals[r["name"]]
            goal = f"≥ {what} = {need:.0f}: {'met' if r['eps'] >= need else 'NOT met'}"
        diff = ""
        if r["ref"] is not None:
            ref = rows[r["ref"]]
            diff = f"{rel_diff(r['out'], ref['out'])} vs {ref['name']}"
        name = r["name"] + (" — skips BN params (inexact)" if r["inexact"] else "")
        lines.append(
            f"| {name} | {r['n']} | {r['eps']:.1f} | {r['eps'] / fwd['eps']:.3f} "
            f"| {r['eps'] / fb['eps']:.3f} | {goal} | {diff} |"
        )
    return lines


def _verdicts(rows: dict[str, dict], goals: dict[str, tuple[dict, float, str]]) -> list[str]:
    """Below the table: each goal met or not, GraNd against its baselines, and notes."""
    lines = []
    for name, (row, need, what) in goals.items():
        ok = "met" if row["eps"] >= need else "NOT met"
        lines.append(f"- {name}: {row['eps']:.1f} ex/s vs goal {what} = {need:.1f} ex/s: {ok}")
    if "loop" not in rows:  # --ours-only: no baselines to compare with
        return lines
    g = rows["grand"]["eps"]
    for base in (rows["grand_vmap"], rows["loop"], rows["opacus"]):
        ok = "met" if g > base["eps"] else "NOT met"
        lines.append(
            f"- GraNd ours faster than {base['name'].split(', ')[1]}: "
            f"{g:.1f} vs {base['eps']:.1f} ex/s ({g / base['eps']:.1f}x): {ok}"
        )
    batched = rows["captum_batched"]["eps"] / rows["captum_exact"]["eps"]
    return lines + [
        f"- Captum TracInCP batched mode: {batched:.1f}x its exact "
        "mode, but its hooks cover Linear/Conv2d only, so BatchNorm's weights and biases are "
        "left out of the gradient (the rel. diff column).",
        "- Ours runs its forward-only and input-gradient passes (last layer, VoG) in "
        "channels-last memory format (oneDNN convolutions are faster on NHWC); Captum runs "
        "the model as given.",
        "- TracInCPFast drops the head's bias (‖∂ℓ/∂z‖²‖h‖² instead of ‖∂ℓ/∂z‖²(‖h‖²+1)), "
        "hence its difference; Captum's rows include loading each checkpoint from disk.",
        "- opacus: BatchNorm2d swapped for an eval-mode equivalent with the same parameters "
        "and statistics plus a closed-form grad sampler (opacus itself refuses BatchNorm, "
        "strict or not); same function, per-example gradients exact.",
    ]


def main() -> None:
    args = _parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    t_start = time.perf_counter()

    device = torch.device(args.device)
    x, y = load_images(args.data, args.n)
    x, y = x.to(device), y.to(device)
    n, n_slow = x.shape[0], min(args.n_slow, x.shape[0])
    checkpoints = make_checkpoints(x, y, args.steps, args.batch, args.model)
    n_params = sum(p.numel() for p in checkpoints[-1].parameters())
    bs, rep = args.batch, args.repeats
    K = len(checkpoints)

    tmp = tempfile.TemporaryDirectory()
    cmodel, paths, cb = None, [], 0
    if not args.ours_only:
        cmodel, paths = captum_setup(checkpoints, Path(tmp.name))
        cb = args.captum_batch or pick_captum_batch(cmodel, paths, x, y)
    rows = _methods(
        checkpoints, cmodel, paths, bs=bs, cb=cb, n=n, n_slow=n_slow, ours_only=args.ours_only
    )
    print(f"timing on {n} CIFAR-10 images ({n_slow} for slow baselines)", file=sys.stderr)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _time_rows(rows, x, y, n_slow, bs, rep)
    tmp.cleanup()

    goals = _goals(rows, K)
    where = f"on {args.device}"
    if device.type == "cuda":
        gb = torch.cuda.max_memory_allocated(device) / 1024**3
        where = f"on {torch.cuda.get_device_name(device)} (peak {gb:.2f} GB allocated)"
    baselines = (
        "no baselines (--ours-only)"
        if args.ours_only
        else f"{n_slow} for the per-example baselines; Captum exact batch {cb}"
        f"{'' if args.captum_batch else ', the fastest of 1/2/4'}"
    )
    lines = [
        f"{args.model} ({n_params:,} parameters) {where}, {n} CIFAR-10 training images "
        f"({baselines}), batch {bs}; {args.threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
        f"torch {torch.__version__}; best of {rep} interleaved rounds after a warm-up; "
        f"TracIn/VoG over {K} checkpoints (lr {', '.join(map(str, LRS))}).",
        "",
        *_table(rows, goals),
        "",
        *_verdicts(rows, goals),
        f"- total bench time {time.perf_counter() - t_start:.0f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    name = "grad_scores.md" if args.device == "cpu" else f"grad_scores_{device.type}.md"
    (OUT / name).write_text(text + "\n")


if __name__ == "__main__":
    main()
