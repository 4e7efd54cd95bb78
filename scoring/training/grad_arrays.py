"""The gradient arrays a run records for the gradient scores, from its weight snapshots.

A run that is asked for `grand`, its label-free variants, `tracin` or `vog` takes weight
snapshots while it trains (the initialization or EL2N's early epoch, and K checkpoints evenly
spaced in optimizer steps), then computes one (N,) array per gradient quantity with
`scoring.training.grads`. The score functions in `scoring/scores/` only read these arrays,
like every other score, so the registry stays a table of pure functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from scoring.config import GradConfig
from scoring.errors import InputError
from scoring.training.checkpoints import Snapshots
from scoring.training.grads import (
    calibrate_batchnorm,
    input_grad_variance,
    sq_grad_norms,
    tracin_self_influence,
)
from scoring.training.models import Recipe
from scoring.training.pixels import Inputs

# Recorded array -> what its per-example gradient is taken of (see scoring.training.grads.TARGETS).
# The first three are taken at one point (init or early); the last two over K checkpoints.
AT_ARRAYS = {"grad_norm": "loss", "grad_free_norm": "logit_sum", "grad_logit_sq": "logits"}
CHECKPOINT_ARRAYS = ("tracin_self", "input_grad_var")
GRAD_ARRAYS = (*AT_ARRAYS, *CHECKPOINT_ARRAYS)
DEFAULT_CHECKPOINTS = 5


@dataclass(frozen=True)
class GradPlan:
    """Which gradient arrays a run records, and the optimizer steps it snapshots for them."""

    arrays: tuple[str, ...]  # subset of GRAD_ARRAYS
    # 0 = initialization, else the step ending EL2N's early epoch: the snapshot then holds
    # the weights of EL2N's eval pass (`loop.fit`), and GraNd is taken in eval mode too.
    at_step: int | None
    params: str  # "all" | "last"
    checkpoint_steps: tuple[int, ...]  # K steps, 1-based, increasing; () when not needed

    @property
    def snapshot_steps(self) -> set[int]:
        steps = set(self.checkpoint_steps)
        if self.at_step is not None:
            steps.add(self.at_step)
        return steps

    @property
    def passes(self) -> int:
        """Gradient passes over the training set per run (progress units)."""
        k = len(self.checkpoint_steps)
        return sum(1 for a in self.arrays if a in AT_ARRAYS) + k * sum(
            1 for a in self.arrays if a in CHECKPOINT_ARRAYS
        )


def plan(needed: set[str], grads: GradConfig, recipe: Recipe, n_train: int) -> GradPlan:
    """Resolve and check the gradient options for the arrays the requested scores need.

    Raises
    ------
    InputError
        For an unknown `at` or `params`, or a checkpoint count the schedule cannot hold.
    """
    if grads.at not in ("init", "early"):
        raise InputError(f"--grad-at must be init or early, got {grads.at!r}")
    if grads.params not in ("all", "last"):
        raise InputError(f"--grad-params must be all or last, got {grads.params!r}")
    arrays = tuple(a for a in GRAD_ARRAYS if a in needed)
    steps_per_epoch = -(-n_train // recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    at_step = None
    if any(a in AT_ARRAYS for a in arrays):
        at_step = 0 if grads.at == "init" else recipe.early_epoch * steps_per_epoch
    checkpoint_steps: tuple[int, ...] = ()
    if any(a in CHECKPOINT_ARRAYS for a in arrays):
        k = grads.checkpoints if grads.checkpoints is not None else min(DEFAULT_CHECKPOINTS, total)
        low = 2 if "input_grad_var" in arrays else 1  # a variance over one checkpoint is always 0
        if not low <= k <= total:
            raise InputError(
                f"--checkpoints must be between {low} and the run's {total} optimizer steps "
                f"({recipe.epochs} epochs x {steps_per_epoch} batches), got {k}"
            )
        # Evenly spaced over the whole schedule, the last one at the end of training.
        checkpoint_steps = tuple(round((i + 1) * total / k) for i in range(k))
    return GradPlan(arrays, at_step, grads.params, checkpoint_steps)


def record(
    grad_plan: GradPlan,
    snaps: Snapshots,
    build: Callable[[dict[str, torch.Tensor]], nn.Module],
    inputs: Inputs,
    labels: torch.Tensor,
    *,
    device: torch.device,
    on_pass: Callable[[float], None] | None = None,
) -> dict[str, np.ndarray]:
    """Compute the planned arrays from a finished run's snapshots.

    Parameters
    ----------
    snaps : Snapshots
        Taken during training at `grad_plan.snapshot_steps`.
    build : callable
        State dict -> model with those weights.
    inputs : tensor or Pixels of shape (n_examples, ...)
    labels : tensor of shape (n_examples,), int64
        The labels trained on.
    on_pass : callable, optional
        Called with the fraction of one gradient pass each chunk covered.

    Returns
    -------
    dict of str to ndarray
        Each planned array, shape (n_examples,), plus `checkpoint_steps` (K,) and
        `checkpoint_lrs` (K,) when checkpoints were used.
    """
    n = inputs.shape[0]

    def tick(weight: int) -> Callable[[int], None] | None:
        return None if on_pass is None else (lambda done: on_pass(weight * done / n))

    out: dict[str, np.ndarray] = {}
    if grad_plan.at_step is not None:
        model = build(snaps.states[grad_plan.at_step])
        out.update(_at_arrays(grad_plan, model, inputs, labels, device, tick))
    if grad_plan.checkpoint_steps:
        out.update(_checkpoint_arrays(grad_plan, snaps, build, inputs, labels, device, tick))
    return out


_Tick = Callable[[int], Callable[[int], None] | None]  # weight -> a chunk callback, or None


def _at_arrays(
    grad_plan: GradPlan,
    model: nn.Module,
    inputs: Inputs,
    labels: torch.Tensor,
    device: torch.device,
    tick: _Tick,
) -> dict[str, np.ndarray]:
    """The planned `AT_ARRAYS`, each (N,), with the weights of the snapshot at `at_step`."""
    out: dict[str, np.ndarray] = {}
    if grad_plan.at_step == 0:
        # A seeded shuffle: data sorted by class (image folders are) would give deeper
        # layers batch statistics no training batch ever has. See scoring.training.grads' note.
        order = torch.randperm(inputs.shape[0], generator=torch.Generator().manual_seed(0))
        calibrate_batchnorm(model, inputs[order], device=device)
    for name, target in AT_ARRAYS.items():
        if name not in grad_plan.arrays:
            continue
        sq = sq_grad_norms(
            model,
            inputs,
            labels,
            target=target,
            params=grad_plan.params,
            device=device,
            on_chunk=tick(1),
        )
        # GraNd and its label-free sum are norms; Data Diet's eq. 12 is a sum of squares.
        out[name] = sq if name == "grad_logit_sq" else np.sqrt(sq)
    return out


def _checkpoint_arrays(
    grad_plan: GradPlan,
    snaps: Snapshots,
    build: Callable[[dict[str, torch.Tensor]], nn.Module],
    inputs: Inputs,
    labels: torch.Tensor,
    device: torch.device,
    tick: _Tick,
) -> dict[str, np.ndarray]:
    """The planned `CHECKPOINT_ARRAYS` (each (N,)) over the K checkpoints, with their steps
    and mean learning rates (each (K,))."""
    steps = grad_plan.checkpoint_steps
    models = [build(snaps.states[s]) for s in steps]
    lrs = [snaps.mean_lr(prev, s) for prev, s in zip((0, *steps[:-1]), steps, strict=True)]
    out = {"checkpoint_steps": np.asarray(steps, dtype=np.int64), "checkpoint_lrs": np.asarray(lrs)}
    if "tracin_self" in grad_plan.arrays:
        out["tracin_self"] = tracin_self_influence(
            models,
            lrs,
            inputs,
            labels,
            params=grad_plan.params,
            device=device,
            on_chunk=tick(1),
        )
    if "input_grad_var" in grad_plan.arrays:
        out["input_grad_var"] = input_grad_variance(
            models, inputs, labels, device=device, on_chunk=tick(len(models))
        )
    return out
