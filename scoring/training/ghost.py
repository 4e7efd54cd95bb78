"""Per-example gradient norms without all of the per-example gradients ("ghost norms").

For a linear layer applied to a sequence, example i's weight gradient is Σ_t δ_t a_tᵀ
(a_t the layer's input at token t, δ_t the loss gradient at its output), so

    ‖∇_W ℓ_i‖² = Σ_{t,s} (a_t · a_s)(δ_t · δ_s)

needs only two T x T Gram matrices per example, never the d_out x d_in gradient (Li et al.,
"Large Language Models Can Be Strong Differentially Private Learners", 2022, the ghost-norm
trick). A convolution is the same linear map over its unfolded input patches (a_t the
C_in·k·k patch at output position t, T = H_out·W_out), as in opacus's fast gradient clipping.
Each layer takes whichever is cheaper: the Gram matrices (T² (d_in + d_out) products) or
that one layer's per-example gradient (d_out·d_in·T) — the Gram form wins on a ResNet's
deep, small feature maps, the gradient on its wide early ones (Bu et al., "mixed ghost
clipping", 2022). Embeddings are the Linear rule with a_t one-hot in the token id (Σ over
t, s with equal ids); LayerNorm's and eval-mode BatchNorm's per-example gradients are small
(B, C) tensors and are formed directly. One batched forward and one backward (to the
layers' outputs only) give every example's norm at once, exactly, with the model in eval
mode so that examples do not interact. The products run in the model's dtype; each layer's
per-example sums are added in float64.

Supported: models whose parameters all sit in `nn.Linear`, `nn.LayerNorm`, `nn.Embedding`,
`nn.Conv2d` (one group, zero padding given as numbers) and eval-mode `nn.BatchNorm2d` with
running statistics (Hugging Face encoders, the probe's head and Winnow's CNNs are);
`supports` says whether a model is. In-place ops after a layer (a ReLU with inplace=True)
are fine: the model goes on with a copy of each layer's output.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _supported(module: nn.Module) -> bool:
    if isinstance(module, nn.Conv2d):
        # F.unfold covers one group and numeric zero padding; others take the vmap path.
        return (
            module.groups == 1
            and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
        )
    if isinstance(module, nn.BatchNorm2d):
        # Batch statistics would couple the examples; running statistics make it affine.
        return not module.training and module.running_mean is not None
    return isinstance(module, (nn.Linear, nn.LayerNorm, nn.Embedding))


def supports(model: nn.Module) -> bool:
    """Whether every trainable parameter belongs to a supported layer (see the module note)."""
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own and not _supported(module):
            return False
    return True


def sq_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: str,
    n_classes: int,
) -> torch.Tensor:
    """Per-example squared gradient norms over every parameter, for one batch.

    Parameters
    ----------
    model : nn.Module
        In eval mode; see `supports`.
    x : tensor of shape (B, ...)
    y : tensor of shape (B,), int64
    target : {"loss", "logit_sum", "logits"}
        As in `scoring.training.grads.sq_grad_norms`.
    n_classes : int
        K, for ``target="logits"`` (one backward per class).

    Returns
    -------
    tensor of shape (B,), float64
    """
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []  # (module, input, output)
    batch = x.shape[0]

    def hook(module: nn.Module, args: tuple, output: torch.Tensor):
        inp = args[0]
        if output.shape[0] != batch:  # e.g. position embeddings broadcast over the batch
            output = output.expand(batch, *output.shape[1:])
            inp = inp.expand(batch, *inp.shape[1:])
        calls.append((module, inp.detach(), output))
        # The model goes on with a copy: an in-place ReLU would move `output`'s autograd
        # history past itself (the gradient "at the output" would be the ReLU's).
        return output.clone()

    handles = [m.register_forward_hook(hook) for m in model.modules() if _owns_params(m)]
    try:
        with torch.enable_grad():
            logits = model(x)  # (B, K)
            if target == "loss":
                # Summed, so each example's δ is its own loss gradient, unscaled.
                outputs = [F.cross_entropy(logits, y, reduction="sum")]
            elif target == "logit_sum":
                outputs = [logits.sum()]
            else:
                outputs = [logits[:, k].sum() for k in range(n_classes)]
            total = torch.zeros(batch, dtype=torch.float64, device=x.device)
            tensors = [out for _, _, out in calls]
            for j, value in enumerate(outputs):
                # Gradients to the layers' outputs only: no weight gradient is ever formed.
                deltas = torch.autograd.grad(
                    value, tensors, retain_graph=j + 1 < len(outputs), allow_unused=True
                )
                total += _sum_over_modules(calls, deltas)
    finally:
        for handle in handles:
            handle.remove()
    return total


def _owns_params(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters(recurse=False))


def _sum_over_modules(calls, deltas) -> torch.Tensor:
    """Σ over modules of each example's squared gradient norm; a module called twice sums
    its calls' contributions before squaring, by joining them along the position axis.

    Each layer's input is put in its rule's layout (unfolded patches, normalised
    activations) only while that layer is summed, so one layer's patches are alive at a
    time; recomputing them for each of ``target="logits"``'s K passes costs a copy, small
    beside the products.
    """
    by_module: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for (module, inp, _), delta in zip(calls, deltas, strict=True):
        if delta is not None:
            by_module.setdefault(module, []).append((inp, delta))
    total = 0.0
    for module, pairs in by_module.items():
        a = _join([_prepare(module, inp) for inp, _ in pairs])
        delta = _join([_positions(module, d) for _, d in pairs])
        total = total + _module_sq_norm(module, a, delta)
    return total


def _join(parts: list[torch.Tensor]) -> torch.Tensor:
    """Along the position axis; a layer called once keeps its (often transposed) view, where
    `torch.cat` would copy it: 31% of cnn32's ghost-norm time was that copy."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def _positions(module: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """A layer's output (or output gradient) as (B, T, C): one row per position the layer's
    weights were applied at (a token, a pixel of a feature map)."""
    if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):  # (B, C, H, W)
        return t.flatten(2).transpose(1, 2)
    if isinstance(module, nn.LayerNorm):  # (B, ..., *normalized_shape)
        return t.reshape(t.shape[0], -1, math.prod(module.normalized_shape))
    return t.reshape(t.shape[0], -1, t.shape[-1])  # (B, ..., d)


def _prepare(module: nn.Module, inp: torch.Tensor) -> torch.Tensor:
    """What the layer's weights multiply, per position: (B, T, d_in), or (B, T) token ids."""
    if isinstance(module, nn.Embedding):
        return inp.reshape(inp.shape[0], -1)
    if isinstance(module, nn.Conv2d):  # the C_in·kh·kw patch under each output position
        patches = F.unfold(
            inp, module.kernel_size, module.dilation, module.padding, module.stride
        )  # (B, C_in·kh·kw, T)
        return patches.transpose(1, 2)
    if isinstance(module, nn.LayerNorm):
        dims = tuple(range(-len(module.normalized_shape), 0))
        mean = inp.mean(dims, keepdim=True)
        var = inp.var(dims, unbiased=False, keepdim=True)
        return _positions(module, (inp - mean) / torch.sqrt(var + module.eps))
    if isinstance(module, nn.BatchNorm2d):  # eval mode: the running statistics
        mean = module.running_mean[:, None, None]
        var = module.running_var[:, None, None]
        return _positions(module, (inp - mean) / torch.sqrt(var + module.eps))
    return _positions(module, inp)  # nn.Linear


def _module_sq_norm(module: nn.Module, a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """(B,) squared norm of one layer's per-example gradient.

    Parameters
    ----------
    a : tensor of shape (B, T, d_in), or (B, T) token ids for an Embedding
        From `_prepare`.
    delta : tensor of shape (B, T, d_out)
        The gradient at the layer's output, from `_positions`.
    """
    out = torch.zeros(delta.shape[0], dtype=torch.float64, device=delta.device)
    if isinstance(module, nn.Embedding):
        if module.padding_idx is not None:  # the padding row never receives a gradient
            delta = delta * (a != module.padding_idx).unsqueeze(-1)
        same = (a[:, :, None] == a[:, None, :]).to(delta.dtype)  # (B, T, T)
        return out + (same * (delta @ delta.transpose(1, 2))).sum((1, 2)).double()
    weight, bias = module.weight, module.bias
    if weight is not None and weight.requires_grad:
        if isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):  # elementwise scale
            out = out + (delta * a).sum(1).pow(2).sum(1).double()
        else:  # nn.Linear, nn.Conv2d
            t, d_in, d_out = a.shape[1], a.shape[2], delta.shape[2]
            if t * (d_in + d_out) < d_in * d_out:  # Gram matrices are cheaper than the gradient
                gram = (a @ a.transpose(1, 2)) * (delta @ delta.transpose(1, 2))  # (B, T, T)
                out = out + gram.sum((1, 2)).double()
            else:
                grad = delta.transpose(1, 2) @ a  # (B, d_out, d_in): this layer's only
                out = out + grad.pow(2).sum((1, 2)).double()
    if bias is not None and bias.requires_grad:
        out = out + delta.sum(1).pow(2).sum(1).double()
    return out


def batched_sq_norms(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    target: str,
    n_classes: int,
    device: torch.device,
    chunk: int,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """`sq_norms` over all inputs, `chunk` examples per batch, each batch `prepare`d."""
    out = np.empty(inputs.shape[0])  # filled in place (see scoring.training.grads._fill)
    for start in range(0, inputs.shape[0], chunk):
        xb = prepare(inputs[start : start + chunk]).to(device)
        yb = labels[start : start + chunk].to(device)
        out[start : start + xb.shape[0]] = sq_norms(model, xb, yb, target, n_classes).cpu().numpy()
        if on_chunk is not None:
            on_chunk(xb.shape[0])
    return out
