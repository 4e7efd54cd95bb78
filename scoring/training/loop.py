"""The one training loop: seeded runs that record what happens to every example.

Recording happens in the training pass itself, from the logits each step already computed:
they are copied into an (N, K) epoch buffer, and per-example losses, margins and
probabilities are derived from it once per epoch (forgetting, AUM, data maps and loss are
defined on this pass). EL2N's probabilities are the one exception: Data Diet scores every
example with the same weights w_t, so right after the last step of the early epoch t the
loop makes one eval-mode pass over the training set (no augmentation) and keeps its softmax.
`bench/recording_overhead.py` measures the cost of both against the same training without
recording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scoring.training.models import Recipe
from scoring.training.pixels import Inputs, to_device
from scoring.training.text_models import is_tokens

# Row order of the per-epoch statistics buffer (one float32 row each).
_STATS = ("loss", "logit_given", "logit_other", "prob_given")


@dataclass
class Dynamics:
    """What one run recorded in its training passes.

    Attributes
    ----------
    loss, logit_given, logit_other, prob_given : ndarray of shape (n_epochs, n_examples)
        Per-example cross-entropy, logit of the given label, largest other logit and
        softmax probability of the given label, each from the training pass of that epoch.
    correct : ndarray of shape (n_epochs, n_examples), bool
        Whether the given label had the largest logit in that training pass.
    probs_early : ndarray of shape (n_examples, n_classes)
        Softmax of one eval-mode pass over the training set (in row order, no augmentation)
        with the weights after the last step of the recipe's early epoch: every example
        scored by the same weights w_t, as EL2N is defined. These are the weights the
        `--grad-at early` snapshot holds (the step `early_epoch * steps_per_epoch`).
    """

    loss: np.ndarray
    logit_given: np.ndarray
    logit_other: np.ndarray
    prob_given: np.ndarray
    correct: np.ndarray
    probs_early: np.ndarray


@dataclass
class Outputs:
    """An eval-mode pass of a trained model over some inputs.

    Attributes
    ----------
    probs : ndarray of shape (n_examples, n_classes)
    features : ndarray of shape (n_examples, n_features)
        Penultimate activations (the model's `body`).
    """

    probs: np.ndarray
    features: np.ndarray


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init) and return a generator for data order."""
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _optimizer(model: nn.Module, recipe: Recipe, total_steps: int):
    if recipe.optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=recipe.weight_decay,
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
        return opt, sched
    if recipe.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        warmup = max(1, round(0.1 * total_steps))

        def schedule(step: int) -> float:  # step = optimizer steps taken so far
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return opt, None


def _augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips, per example (only for natural images, never digits)."""
    flip = torch.rand(xb.shape[0], generator=gen) < 0.5  # (B,)
    flip = flip.to(xb.device).view(-1, *([1] * (xb.dim() - 1)))
    return torch.where(flip, xb.flip(-1), xb)


# Longer than 60 lines: the docstring documents every argument, and the body is the training
# loop kept whole, so the order of data draws, optimizer steps, callbacks and recording reads
# top to bottom in one place (each part is a helper below).
def fit(
    model: nn.Module,
    inputs: Inputs,
    labels: torch.Tensor,
    recipe: Recipe,
    *,
    gen: torch.Generator,
    device: torch.device,
    record: bool = True,
    augment: bool = False,
    on_step: Callable[[float], None] | None = None,
    on_update: Callable[[int, float], None] | None = None,
    steps: int | None = None,
) -> Dynamics | None:
    """Train `model` in place for `recipe.epochs` epochs; optionally record dynamics.

    Parameters
    ----------
    inputs : tensor or Pixels of shape (n_examples, ...)
        On CPU; batches move to `device` as they are drawn (uint8 `Pixels` become float32
        there, `scoring.training.pixels`).
    labels : tensor of shape (n_examples,), int64
    gen : torch.Generator
        Drives the data order (and augmentation), so a run is reproducible from its seed.
    record : bool
        False trains the same way without recording (the benchmark's baseline).
    on_step : callable, optional
        Called after every optimizer step with the fraction of an epoch it covered.
    on_update : callable, optional
        Called after every optimizer step with its number (1-based) and the learning rate
        it used; the weights are the updated ones (checkpoints hook in here).
    steps : int, optional
        Train for exactly this many optimizer steps instead (as many epochs as that takes,
        the last one cut short): Data Diet's step-matched schedule for a pruned subset. The
        learning-rate schedule spans these steps. Not with `record`.

    Returns
    -------
    Dynamics or None
    """
    n = labels.shape[0]
    epochs, steps_per_epoch, total_steps = _schedule(n, recipe, steps, record=record)
    opt, sched = _optimizer(model, recipe, total_steps)
    model.to(device).train()
    if device.type == "cuda" and inputs.dim() == 4:
        model.to(memory_format=torch.channels_last)  # NHWC: faster cuDNN convolutions
    labels_dev = labels.to(device)
    recording = _EpochRecording(n, epochs, device) if record else None
    done = 0
    for epoch in range(epochs):
        left = total_steps - done  # a step-matched schedule cuts the last epoch short
        batches = _epoch_batches(inputs, labels_dev, recipe.batch_size, left, gen, augment, device)
        for idx, xb, yb in batches:
            logits, lr_used = _train_step(model, opt, sched, xb, yb, device)
            done += 1
            if on_update is not None:
                on_update(done, lr_used)
            if on_step is not None:
                on_step(1.0 / steps_per_epoch)
            if recording is not None:
                recording.add(idx, logits)
        if recording is not None:
            recording.end_epoch(epoch, labels_dev)
            if epoch + 1 == recipe.early_epoch:
                recording.early_pass(model, inputs, device)
    return None if recording is None else recording.dynamics()


def _schedule(n: int, recipe: Recipe, steps: int | None, *, record: bool) -> tuple[int, int, int]:
    """(epochs, steps per epoch, total optimizer steps) of `fit` over `n` examples."""
    steps_per_epoch = (n + recipe.batch_size - 1) // recipe.batch_size
    if steps is None:
        return recipe.epochs, steps_per_epoch, steps_per_epoch * recipe.epochs
    if record:
        raise ValueError("a step-matched schedule cuts the last epoch short: no recording")
    return -(-steps // steps_per_epoch), steps_per_epoch, steps


def _epoch_batches(
    inputs: Inputs,
    labels: torch.Tensor,
    batch_size: int,
    limit: int,
    gen: torch.Generator,
    augment: bool,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch in a fresh random order, at most `limit` batches.

    Every draw from `gen` happens here, in this order: the epoch's permutation, then each
    batch's flips (with `augment`). The limit is checked before a batch is built, so a step
    budget that ends mid-epoch draws nothing more.

    Yields
    ------
    idx : tensor of shape (B,), int64
        The batch's rows, on `device` (where `labels` are).
    xb : tensor of shape (B, ...)
        Their inputs, moved to `device` as the batch is drawn.
    yb : tensor of shape (B,)
        Their labels.
    """
    n = labels.shape[0]
    order = torch.randperm(n, generator=gen)
    order_dev = order.to(device)
    for drawn, start in enumerate(range(0, n, batch_size)):
        if drawn == limit:
            return
        idx = order_dev[start : start + batch_size]
        xb = to_device(inputs[order[start : start + batch_size]], device, non_blocking=True)
        if augment:
            xb = _augment(xb, gen)
        yield idx, xb, labels[idx]


def _train_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler | None,
    xb: torch.Tensor,
    yb: torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, float]:
    """One optimizer step on a batch: its logits (B, K) and the learning rate the step used."""
    with _autocast(device, xb):
        logits = model(xb)  # (B, K)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # the loss and the recording in full precision
    loss = F.cross_entropy(logits, yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    lr_used = opt.param_groups[0]["lr"]
    if sched is not None:
        sched.step()
    return logits, lr_used


class _EpochRecording:
    """The statistics one recording `fit` gathers, epoch by epoch.

    One copy per batch into an (N, K) epoch buffer; the statistics are derived once per epoch,
    vectorised over N, which keeps the per-step cost to a single index_copy_.
    """

    def __init__(self, n: int, epochs: int, device: torch.device) -> None:
        self.n, self.device = n, device
        self.stats = torch.empty(len(_STATS), epochs, n, device=device)  # (4, T, N)
        self.logits: torch.Tensor | None = None  # (N, K): K is known at the first batch
        self.probs_early: np.ndarray | None = None

    def add(self, idx: torch.Tensor, logits: torch.Tensor) -> None:
        """Copy a batch's logits (B, K) into the epoch buffer at rows `idx` (B,)."""
        if self.logits is None:
            self.logits = torch.empty(self.n, logits.shape[1], device=self.device)
        self.logits.index_copy_(0, idx, logits.detach().float())

    def end_epoch(self, epoch: int, labels: torch.Tensor) -> None:
        """Reduce the epoch buffer to its row of statistics (labels (N,) on the device)."""
        with torch.no_grad():
            _epoch_stats(self.logits, labels, out=self.stats[:, epoch])

    def early_pass(self, model: nn.Module, inputs: Inputs, device: torch.device) -> None:
        """EL2N's probabilities, right after the early epoch's last step."""
        # Fixed weights w_t for every example (not the moving training-pass ones).
        # Eval mode neither updates BatchNorm's running statistics nor draws dropout
        # or data-order randomness, so the rest of training is unchanged by it.
        self.probs_early = predict(model, inputs, device=device).probs
        model.train()

    def dynamics(self) -> Dynamics:
        """Everything recorded, on the CPU as numpy arrays."""
        stats_np = self.stats.cpu().numpy()
        return Dynamics(
            **{name: stats_np[i] for i, name in enumerate(_STATS)},
            # Correct = the given label's logit beats every other one (argmax without tie games).
            correct=stats_np[1] > stats_np[2],
            probs_early=self.probs_early,
        )


def _epoch_stats(logits: torch.Tensor, labels: torch.Tensor, *, out: torch.Tensor) -> None:
    """Fill out (4, N) with loss, logit_given, logit_other, prob_given from logits (N, K)."""
    logp = torch.log_softmax(logits, dim=1)  # (N, K)
    out[0] = -logp.gather(1, labels[:, None]).squeeze(1)  # = cross_entropy(reduction='none')
    out[1] = logits.gather(1, labels[:, None]).squeeze(1)
    out[2] = logits.scatter(1, labels[:, None], float("-inf")).amax(1)
    out[3] = torch.exp(-out[0])


def _autocast(device: torch.device, xb: torch.Tensor):
    """Mixed precision (bfloat16 autocast) on CUDA, for every recipe; off on CPU."""
    enabled = device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.inference_mode()
def predict(
    model: nn.Module, inputs: Inputs, *, device: torch.device, batch_size: int | None = None
) -> Outputs:
    """Eval-mode softmax and penultimate features for every input, in batches."""
    model.to(device).eval()
    if batch_size is None:  # a transformer's attention maps grow with B x L x L
        batch_size = 64 if is_tokens(inputs[:1]) else 1024
    probs, feats = [], []
    for start in range(0, inputs.shape[0], batch_size):
        xb = to_device(inputs[start : start + batch_size], device, non_blocking=True)
        h = model.features(xb)  # (B, D)
        probs.append(torch.softmax(model.head(h), dim=1).float().cpu())
        feats.append(h.float().cpu())
    return Outputs(probs=torch.cat(probs).numpy(), features=torch.cat(feats).numpy())
