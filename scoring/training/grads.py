"""Exact per-example gradients, batched: the arithmetic behind GraNd, TracIn and VoG.

Per-example parameter gradients come from `torch.func` (`functional_call` + `vmap(grad)`,
or `vmap(jacrev)` for one gradient per logit), a chunk of examples at a time, so memory is
bounded by `chunk x n_params` and no (N, P) matrix is ever built. For the last layer the
closed forms are exact and need only features and probabilities: a linear head
`logits = W h + b` has ∇_W ℓ = (p − y) hᵀ and ∇_b ℓ = p − y, so ‖∇ℓ‖² = ‖p − y‖²(‖h‖² + 1).

BatchNorm: a per-example gradient only exists when examples do not see each other, so every
model here is put in eval mode (running statistics) first; in training mode BatchNorm mixes
the batch and "the gradient of example i" would depend on its batch mates. A fresh model's
running statistics are the defaults (mean 0, variance 1), which would leave its activations
unnormalised, so `calibrate_batchnorm` first sets them from one pass over the data
(no weight update) — the init model then normalises as it does in its first training steps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from scoring.training import ghost
from scoring.training.pixels import Inputs, to_device
from scoring.training.text_models import is_tokens, trim_padding

# What a per-example gradient is taken of (f_k are the logits):
#   loss: ℓ(f(x), y), cross-entropy     -> GraNd, TracIn
#   logit_sum: Σ_k f_k(x)                -> ‖Σ_k ∇f_k‖, label-free GraNd (Data Diet eq. 10)
#   logits: each f_k(x) separately        -> Σ_k ‖∇f_k‖² (Data Diet eq. 12)
TARGETS = ("loss", "logit_sum", "logits")
PARAMS = ("all", "last")

# Memory for one chunk's per-example gradients (and the vmap intermediates beside them).
_CHUNK_BYTES = 256 * 2**20
_MAX_CHUNK = 64  # measured on cnn32 (2 cores): 32-64 per chunk ~0.84x fwd+bwd, 128 0.65x
# A forward batch: on 2 CPU cores cnn32 runs batch 128 about 1.7x faster per example than 512.
_LAST_LAYER_CHUNK = 128
_TOKEN_CHUNK = 16  # sentences per ghost-norm batch (a fine-tuning batch's size)
# Examples per ghost-norm batch of an all-Linear model over flat inputs (the probe's head,
# mlp): one forward and backward per batch, as training does; 512 rows of 1,280 floats.
_FLAT_GHOST_CHUNK = 512
# Images per ghost-norm batch of a CNN: one forward and backward per batch.
_IMAGE_GHOST_CHUNK = 64


def calibrate_batchnorm(
    model: nn.Module, inputs: Inputs, *, device: torch.device, batch_size: int = 256
) -> None:
    """Set every BatchNorm's running statistics to its input's over the data, in place.

    One pass in training mode (each layer sees its input as in a training step), no gradients,
    no updates. The statistics are the whole pass's per-channel mean and unbiased variance,
    every example weighted alike: a cumulative average of batch statistics would give a short
    last batch the weight of a full one and miss the spread between batch means.

    Parameters
    ----------
    inputs : tensor or Pixels of shape (n_examples, ...)
        The training inputs, in batches of `batch_size` (a last batch of one joins the one
        before it: BatchNorm1d cannot normalise a single example in training mode).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    stats: dict[nn.Module, tuple[int, torch.Tensor, torch.Tensor]] = {}  # count, mean, M2

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].detach().double().transpose(0, 1).reshape(args[0].shape[1], -1)  # (C, n)
        n_b, mean_b = x.shape[1], x.mean(1)
        m2_b = (x - mean_b[:, None]).pow(2).sum(1)
        if module not in stats:
            stats[module] = (n_b, mean_b, m2_b)
            return
        n, mean, m2 = stats[module]  # merge (Chan et al.): exact, and no E[x²] − E[x]² loss
        delta, total = mean_b - mean, n + n_b
        stats[module] = (total, mean + delta * n_b / total, m2 + m2_b + delta**2 * n * n_b / total)

    handles = [m.register_forward_pre_hook(record) for m in norms]
    starts = list(range(0, inputs.shape[0], batch_size))
    if len(starts) > 1 and inputs.shape[0] - starts[-1] == 1:
        starts.pop()
    model.to(device).train()
    try:
        with torch.no_grad():
            for start, stop in zip(starts, [*starts[1:], inputs.shape[0]], strict=True):
                model(to_device(inputs[start:stop], device))
    finally:
        for handle in handles:
            handle.remove()
    for m in norms:
        if m in stats and m.track_running_stats:
            n, mean, m2 = stats[m]
            m.running_mean.copy_(mean)
            m.running_var.copy_(m2 / max(n - 1, 1))  # unbiased, as PyTorch keeps it
    model.eval()


def _channels_last(model: nn.Module, example: Inputs) -> nn.Module:
    """For image batches, a copy of `model` in channels-last memory format, else `model`.

    oneDNN's convolutions run much faster on NHWC tensors: measured on cnn32, 2 cores, eval
    forward 1.6-1.9x. Same arithmetic, so results agree to float rounding; used for the
    forward-only and input-gradient paths (the vmap path works per example, where it does not
    pay).
    """
    if example.dim() != 4:
        return model
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def _batch(inputs: Inputs, start: int, stop: int, device: torch.device) -> torch.Tensor:
    xb = to_device(inputs[start:stop], device)
    return xb.contiguous(memory_format=torch.channels_last) if xb.dim() == 4 else xb


def auto_chunk(model: nn.Module, n_outputs: int = 1) -> int:
    """Examples per chunk so that chunk x n_outputs per-example gradients fit the budget."""
    n_params = sum(p.numel() for p in model.parameters())
    per_example = 3 * 4 * n_params * n_outputs  # gradient + vmap intermediates, float32
    return int(max(1, min(_MAX_CHUNK, _CHUNK_BYTES // per_example)))


def sq_grad_norms(
    model: nn.Module,
    inputs: Inputs,
    labels: torch.Tensor,
    *,
    target: str = "loss",
    params: str = "all",
    device: torch.device | None = None,
    chunk: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Squared norm of each example's gradient with respect to the weights.

    Parameters
    ----------
    model : Classifier
        `head(body(x))` with a linear `head`; put in eval mode here (see the module note).
    inputs : tensor or Pixels of shape (n_examples, ...)
    labels : tensor of shape (n_examples,), int64
        Only read for ``target="loss"``.
    target : {"loss", "logit_sum", "logits"}
        ``loss``: ‖∇_w ℓ(f(x), y)‖²; ``logit_sum``: ‖∇_w Σ_k f_k(x)‖²;
        ``logits``: Σ_k ‖∇_w f_k(x)‖².
    params : {"all", "last"}
        Every parameter (batched `torch.func`), or the last linear layer (closed form).
    chunk : int, optional
        Examples per vmap call; bounds memory. Default from the parameter count.
    on_chunk : callable, optional
        Called with the number of examples done after each chunk.

    Returns
    -------
    ndarray of shape (n_examples,), float64
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if params not in PARAMS:
        raise ValueError(f"params must be one of {PARAMS}, got {params!r}")
    device = device or next(model.parameters()).device
    model.to(device).eval()
    if params == "last":
        return _last_layer_sq_norms(model, inputs, labels, target, device, chunk, on_chunk)
    tokens = is_tokens(inputs[:1])
    # Ghost norms when every weight sits in a supported layer: HF encoders, the probe's head
    # and mlp (130-410x faster than vmap, bench/probe_grads.py), cnn32 (on par with vmap) and
    # resnet18 (1.7x vmap; bench/grad_scores.py). Other models take vmap.
    if ghost.supports(model):
        return _ghost_sq_norms(model, inputs, labels, target, device, chunk, on_chunk, tokens)
    if tokens:
        return _loop_sq_norms(model, inputs, labels, target, device, on_chunk)
    return _vmap_sq_norms(model, inputs, labels, target, device, chunk, on_chunk)


def _ghost_sq_norms(model, inputs, labels, target, device, chunk, on_chunk, tokens):
    """(N,) `ghost.batched_sq_norms`, image models on a channels-last copy: oneDNN's
    convolutions and im2col run faster on NHWC (cnn32: about 1.3x)."""
    model = _channels_last(model, inputs[:1])  # the model itself unless the inputs are images
    return ghost.batched_sq_norms(
        model,
        inputs,
        labels,
        target=target,
        n_classes=_n_classes(model),
        device=device,
        chunk=chunk or _ghost_chunk(inputs, tokens),
        prepare=trim_padding if tokens else (lambda xb: _batch(xb, 0, xb.shape[0], device)),
        on_chunk=on_chunk,
    )


def _ghost_chunk(inputs: Inputs, tokens: bool) -> int:
    if tokens:
        return _TOKEN_CHUNK
    return _IMAGE_GHOST_CHUNK if inputs.dim() == 4 else _FLAT_GHOST_CHUNK


def _vmap_sq_norms(
    model: nn.Module,
    inputs: Inputs,
    labels: torch.Tensor,
    target: str,
    device: torch.device,
    chunk: int | None,
    on_chunk: Callable[[int], None] | None,
) -> np.ndarray:
    """(N,) squared gradient norms over every parameter: per-example grads by `torch.func` vmap."""
    fn = _per_example_fn(model, target)
    weights = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    n_out = 1 if target != "logits" else _n_classes(model)
    chunk = chunk or auto_chunk(model, n_out)
    out = np.empty(inputs.shape[0])  # filled in place: see _fill
    # The outer no_grad keeps autograd from taping the vmap; torch.func.grad ignores it.
    with torch.no_grad():
        for start in range(0, inputs.shape[0], chunk):
            xb = to_device(inputs[start : start + chunk], device)
            yb = labels[start : start + chunk].to(device)
            _fill(out, start, fn(weights, buffers, xb, yb))
            if on_chunk is not None:
                on_chunk(xb.shape[0])
    return out


def _fill(out: np.ndarray, start: int, values: torch.Tensor) -> None:
    """Copy a chunk's (B,) results into the preallocated output.

    Keeping one small tensor per chunk alive instead (and concatenating at the end) made
    the heap grow by ~70 KB per chunk: each small block pinned the space of the chunk's
    large, freed temporaries (measured: +1 GB over 200k examples; now flat).
    """
    out[start : start + values.shape[0]] = values.detach().double().cpu().numpy()


def _loop_sq_norms(model, inputs, labels, target, device, on_chunk) -> np.ndarray:
    """One backward per example (K per example for `logits`): token models ghost norms
    cannot handle.

    Hugging Face encoders branch on their attention mask's values, which `vmap` cannot
    trace; one example at a time, cut to its own length, is exact and wastes no work on
    padding.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    out = np.empty(inputs.shape[0])
    for i in range(inputs.shape[0]):
        x = trim_padding(inputs[i : i + 1]).to(device)
        logits = model(x)[0]  # (K,)
        if target == "loss":
            outputs = [F.cross_entropy(logits[None], labels[i : i + 1].to(device))]
        elif target == "logit_sum":
            outputs = [logits.sum()]
        else:
            outputs = list(logits)
        total = 0.0
        for j, value in enumerate(outputs):
            # allow_unused: parts of a pretrained model the classifier skips (BERT's pooler).
            grads = torch.autograd.grad(
                value, params, retain_graph=j + 1 < len(outputs), allow_unused=True
            )
            total += float(sum(g.double().pow(2).sum() for g in grads if g is not None))
        out[i] = total
        if on_chunk is not None:
            on_chunk(1)
    return out


def _n_classes(model: nn.Module) -> int:
    return int(model.head.out_features)


def _per_example_fn(model: nn.Module, target: str):
    """vmap-ed function (weights, buffers, x (B, ...), y (B,)) -> (B,) squared norms."""

    def output(weights, buffers, x, y):
        logits = functional_call(model, (weights, buffers), (x.unsqueeze(0),)).squeeze(0)  # (K,)
        if target == "loss":
            return F.cross_entropy(logits.unsqueeze(0), y.unsqueeze(0))
        if target == "logit_sum":
            return logits.sum()
        return logits

    differentiate = jacrev if target == "logits" else grad

    def sq_norm(weights, buffers, x, y):
        grads = differentiate(output)(weights, buffers, x, y)  # {name: ([K,] *param.shape)}
        return sum(g.pow(2).sum() for g in grads.values())

    return vmap(sq_norm, in_dims=(None, None, 0, 0))


def _last_layer_sq_norms(model, inputs, labels, target, device, chunk, on_chunk) -> np.ndarray:
    """Closed forms for a linear head (weights W and bias b)."""
    out = np.empty(inputs.shape[0])
    chunk = chunk or _LAST_LAYER_CHUNK
    model = _channels_last(model, inputs)
    with torch.inference_mode():
        for start in range(0, inputs.shape[0], chunk):
            h = model.features(_batch(inputs, start, start + chunk, device)).double()  # (B, D)
            probs = torch.softmax(model.head(h.to(model.head.weight.dtype)).double(), 1)
            _fill(out, start, last_layer_sq_norm(h, probs, labels[start : start + chunk], target))
            if on_chunk is not None:
                on_chunk(h.shape[0])
    return out


def last_layer_sq_norm(
    features: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor, target: str
) -> torch.Tensor:
    """Exact squared gradient norms of a linear head's weights and bias.

    Parameters
    ----------
    features : tensor of shape (n_examples, n_features)
        The head's input h.
    probs : tensor of shape (n_examples, n_classes)
        softmax(W h + b).
    labels : tensor of shape (n_examples,)
    target : {"loss", "logit_sum", "logits"}

    Returns
    -------
    tensor of shape (n_examples,)
        loss: ‖p − y‖²(‖h‖² + 1); logit_sum and logits: K(‖h‖² + 1) (∇_W f_k = e_k hᵀ, so
        the sum of the K gradients and the sum of their squared norms agree).
    """
    h_sq = features.pow(2).sum(1) + 1.0  # (N,): the bias acts on a constant input 1
    if target == "loss":
        err = probs.clone()
        err[torch.arange(err.shape[0]), labels.to(err.device)] -= 1.0  # p − onehot(y)
        return err.pow(2).sum(1) * h_sq
    return probs.shape[1] * h_sq


def tracin_self_influence(
    models: Sequence[nn.Module],
    lrs: Sequence[float],
    inputs: Inputs,
    labels: torch.Tensor,
    *,
    params: str = "all",
    device: torch.device | None = None,
    chunk: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """TracIn self-influence Σ_k η_k ‖∇_w ℓ(f(x; w_k), y)‖² over checkpoints (Pruthi et al.).

    Parameters
    ----------
    models : sequence of K classifiers
        The checkpoints w_k.
    lrs : sequence of K floats
        η_k, the learning rate that led to checkpoint k.
    inputs : tensor or Pixels of shape (n_examples, ...)
    labels : tensor of shape (n_examples,), int64
    params : {"all", "last"}
        Every parameter, or the last linear layer by its closed form.

    Returns
    -------
    ndarray of shape (n_examples,), float64
    """
    if len(models) != len(lrs) or not models:
        raise ValueError(f"need one learning rate per checkpoint, got {len(models)} and {len(lrs)}")
    total = np.zeros(inputs.shape[0])
    for model, lr in zip(models, lrs, strict=True):
        total += float(lr) * sq_grad_norms(
            model, inputs, labels, params=params, device=device, chunk=chunk, on_chunk=on_chunk
        )
    return total


def input_grad_variance(
    models: Sequence[nn.Module],
    inputs: Inputs,
    labels: torch.Tensor,
    *,
    device: torch.device | None = None,
    chunk: int = 256,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """VoG: variance over checkpoints of ∂ logit_y / ∂ x, averaged over input dimensions.

    Parameters
    ----------
    models : sequence of K >= 2 classifiers
        The checkpoints, in training order; each is put in eval mode.
    inputs : tensor or Pixels of shape (n_examples, ...)
        The model's input (pixels; a probe's sentence embeddings), or token tensors
        (n_examples, 3, L) for a `TextClassifier`, whose input token embeddings are used.
    labels : tensor of shape (n_examples,), int64
        The given labels: the logit differentiated is the given label's.

    Returns
    -------
    ndarray of shape (n_examples,), float64
        (1/D) Σ_d (1/K) Σ_k (g_kd − ḡ_d)², g_k = ∂ f_y(x; w_k) / ∂ x flattened to D values;
        for tokens, the mean over the example's real (non-padding) tokens and embedding
        dimensions.
    """
    if len(models) < 2:
        raise ValueError(f"VoG needs at least 2 checkpoints, got {len(models)}")
    device = device or next(models[0].parameters()).device
    models = [_channels_last(m.to(device).eval(), inputs) for m in models]
    out = np.empty(inputs.shape[0])
    for start in range(0, inputs.shape[0], chunk):
        xb = _batch(inputs, start, start + chunk, device)
        yb = labels[start : start + chunk].to(device)
        # Checkpoints inside the chunk loop: memory is chunk x K x D, never N x K x D.
        grads = torch.stack([_input_grad(m, xb, yb) for m in models]).double()  # (K, B, D)
        var = grads.var(dim=0, unbiased=False)  # (B, D)
        weights = _input_weights(models[0], xb, var.shape[1]).double()  # (B, D)
        _fill(out, start, (var * weights).sum(1) / weights.sum(1).clamp(min=1))  # (B,)
        if on_chunk is not None:
            on_chunk(xb.shape[0])
    return out


def _input_weights(model: nn.Module, x: torch.Tensor, n_dims: int) -> torch.Tensor:
    """(B, D) weight of each input dimension in VoG's average: 0 for padding tokens."""
    if not hasattr(model, "input_weights"):
        return torch.ones(x.shape[0], n_dims, device=x.device)
    per_token = model.input_weights(x)  # (B, L)
    return per_token.repeat_interleave(n_dims // per_token.shape[1], dim=1)  # (B, L * E)


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂ f_y(x_i) / ∂ x_i for each row, flattened: (B, D). Eval mode keeps rows independent.

    For token inputs the gradient is taken with respect to the input token embeddings
    (B, L, E), flattened to D = L * E (Influence Scores at Scale, 2023).
    """
    with torch.enable_grad():
        if hasattr(model, "input_embeddings"):
            leaf = model.input_embeddings(x).detach().requires_grad_(True)  # (B, L, E)
            logits = model.head(model.features_from_embeddings(leaf, x))
        else:
            leaf = x.detach().requires_grad_(True)
            logits = model(leaf)  # (B, K)
        # Row i's given logit depends on x_i only, so one backward of the sum gives every row.
        (g,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), leaf)
    return g.contiguous().reshape(g.shape[0], -1)  # (B, D) in the input's own order
