"""Per-example gradient norms of a transformer without per-example gradients ("ghost norms").

For a linear layer applied to a sequence, example i's weight gradient is Σ_t δ_t a_tᵀ
(a_t the layer's input at token t, δ_t the loss gradient at its output), so

    ‖∇_W ℓ_i‖² = Σ_{t,s} (a_t · a_s)(δ_t · δ_s)

needs only two T x T Gram matrices per example, never the d_out x d_in gradient (Li et al.,
"Large Language Models Can Be Strong Differentially Private Learners", 2022, the ghost-norm
trick). Embeddings are the same with a_t one-hot in the token id (Σ over t, s with equal
ids); LayerNorm's per-example gradients are small (B, d) tensors and are formed directly.
One batched forward and one backward (to the layers' outputs only) give every example's
norm at once, exactly, with the model in eval mode so that examples do not interact. The
products run in the model's dtype; each layer's per-example sums are added in float64.

Only models whose parameters all sit in `nn.Linear`, `nn.LayerNorm` and `nn.Embedding`
modules are supported (Hugging Face encoders are); `supports` says whether a model is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_SUPPORTED = (nn.Linear, nn.LayerNorm, nn.Embedding)


def supports(model: nn.Module) -> bool:
    """Whether every trainable parameter belongs to a Linear, LayerNorm or Embedding."""
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own and not isinstance(module, _SUPPORTED):
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
        return output

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
    its calls' contributions before squaring, by joining them along the token axis."""
    by_module: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for (module, inp, _), delta in zip(calls, deltas, strict=True):
        if delta is not None:
            by_module.setdefault(module, []).append((inp, delta))
    total = 0.0
    for module, pairs in by_module.items():
        total = total + _module_sq_norm(module, pairs)
    return total


def _tokens(t: torch.Tensor) -> torch.Tensor:
    """(B, ..., d) -> (B, T, d): every middle axis is a token axis."""
    return t.reshape(t.shape[0], -1, t.shape[-1])


def _module_sq_norm(module: nn.Module, pairs) -> torch.Tensor:
    if isinstance(module, nn.Embedding):
        ids = torch.cat([inp.reshape(inp.shape[0], -1) for inp, _ in pairs], 1)  # (B, T)
        delta = torch.cat([_tokens(d) for _, d in pairs], 1)  # (B, T, d)
        if module.padding_idx is not None:  # the padding row never receives a gradient
            delta = delta * (ids != module.padding_idx).unsqueeze(-1)
        same = (ids[:, :, None] == ids[:, None, :]).to(delta.dtype)  # (B, T, T)
        return (same * (delta @ delta.transpose(1, 2))).sum((1, 2)).double()
    if isinstance(module, nn.LayerNorm):
        shape = module.normalized_shape
        dims = tuple(range(-len(shape), 0))
        grads_w, grads_b = 0.0, 0.0
        for inp, delta in pairs:
            xh = (inp - inp.mean(dims, keepdim=True)) / torch.sqrt(
                inp.var(dims, unbiased=False, keepdim=True) + module.eps
            )
            lead = tuple(range(1, inp.dim() - len(shape)))  # token axes
            grads_w = grads_w + (delta * xh).sum(lead)  # (B, *shape)
            grads_b = grads_b + delta.sum(lead)
        out = torch.zeros(pairs[0][0].shape[0], dtype=torch.float64, device=pairs[0][0].device)
        if module.weight is not None and module.weight.requires_grad:
            out = out + grads_w.reshape(out.shape[0], -1).pow(2).sum(1).double()
        if module.bias is not None and module.bias.requires_grad:
            out = out + grads_b.reshape(out.shape[0], -1).pow(2).sum(1).double()
        return out
    # nn.Linear
    a = torch.cat([_tokens(inp) for inp, _ in pairs], 1)  # (B, T, d_in)
    delta = torch.cat([_tokens(d) for _, d in pairs], 1)  # (B, T, d_out)
    out = torch.zeros(a.shape[0], dtype=torch.float64, device=a.device)
    if module.weight.requires_grad:
        t, d_in, d_out = a.shape[1], a.shape[2], delta.shape[2]
        if t * (d_in + d_out) < d_in * d_out:  # Gram matrices are cheaper than the gradient
            gram = (a @ a.transpose(1, 2)) * (delta @ delta.transpose(1, 2))  # (B, T, T)
            out = out + gram.sum((1, 2)).double()
        else:
            out = out + torch.einsum("bto,bti->boi", delta, a).pow(2).sum((1, 2)).double()
    if module.bias is not None and module.bias.requires_grad:
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
