"""scoring.training.grads against independent computations: plain per-example backward loops, hand
closed forms, Captum's TracIn, and hand-built linear checkpoints. Float64 for exactness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from scoring.training.grads import (
    auto_chunk,
    calibrate_batchnorm,
    input_grad_variance,
    last_layer_sq_norm,
    sq_grad_norms,
    tracin_self_influence,
)
from scoring.training.models import Classifier

CPU = torch.device("cpu")
N, K = 13, 3  # 13 examples: chunks of 5 leave a short last chunk
RTOL = 1e-10


def _mlp(seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Flatten(), nn.Linear(12, 10), nn.Tanh(), nn.Linear(10, 6), nn.ReLU())
    return Classifier(body, 6, K).double()


def _conv_body() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=1),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def _conv_bn(seed: int = 0, x: torch.Tensor | None = None) -> Classifier:
    """Conv + BatchNorm model whose eval-mode BatchNorm is far from the identity."""
    torch.manual_seed(seed)
    model = Classifier(_conv_body(), 5, K).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
    calibrate_batchnorm(model, _images() if x is None else x, device=CPU, batch_size=5)
    for bn in (model.body[1], model.body[4]):
        assert bn.running_mean.abs().max() > 0.05 and (bn.running_var - 1).abs().max() > 0.1
    return model


def _images(seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 2.0 * torch.randn(N, 3, 5, 5, generator=gen, dtype=torch.float64) + 0.5


def _vectors(seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(N, 3, 2, 2, generator=gen, dtype=torch.float64)  # flattened to 12


def _labels() -> torch.Tensor:
    return torch.arange(N) % K


def _loop_sq_norms(model, x, y, target, params=None) -> np.ndarray:
    """Reference: one example at a time, model.zero_grad() + backward(), sum of p.grad**2."""
    model.eval()
    params = list(model.parameters()) if params is None else list(params)
    n_out = K if target == "logits" else 1
    out = []
    for i in range(x.shape[0]):
        total = 0.0
        for k in range(n_out):  # "logits": K separate backward passes
            model.zero_grad()
            logits = model(x[i : i + 1])
            if target == "loss":
                value = F.cross_entropy(logits, y[i : i + 1])
            elif target == "logit_sum":
                value = logits.sum()
            else:
                value = logits[0, k]
            value.backward()
            total += sum(float(p.grad.pow(2).sum()) for p in params)
        out.append(total)
    model.zero_grad()
    return np.array(out)


MODELS = {"mlp": (_mlp, _vectors), "conv_bn": (_conv_bn, _images)}


@pytest.mark.parametrize("path", ["ghost", "vmap"])
@pytest.mark.parametrize("target", ["loss", "logit_sum", "logits"])
@pytest.mark.parametrize("arch", ["mlp", "conv_bn"])
def test_sq_grad_norms_all_params_match_a_per_example_backward_loop(
    arch, target, path, monkeypatch
):
    """Ghost norms and batched vmap gradients (the fallback, forced here) each = one backward
    per example (K per example for "logits"), eval-mode BatchNorm with non-trivial running
    stats, chunks of 5 over 13 examples."""
    import scoring.training.grads as grads_mod

    taken = _record_paths(monkeypatch)
    if path == "vmap":
        monkeypatch.setattr(grads_mod.ghost, "supports", lambda model: False)
    build, data = MODELS[arch]
    model, x, y = build(), data(), _labels()
    model.train()  # sq_grad_norms must switch to eval mode itself
    done = []
    got = sq_grad_norms(model, x, y, target=target, params="all", chunk=5, on_chunk=done.append)
    assert not model.training
    assert done == [5, 5, 3]
    assert got.dtype == np.float64 and got.shape == (N,)
    want = _loop_sq_norms(model, x, y, target)
    assert (want > 0).all()
    np.testing.assert_allclose(got, want, rtol=RTOL)
    # The default (automatic) chunk gives the same numbers.
    np.testing.assert_allclose(sq_grad_norms(model, x, y, target=target), want, rtol=RTOL)
    assert set(taken) == {path}


def _record_paths(monkeypatch) -> list[str]:
    """Which of sq_grad_norms' paths ran: "ghost" or "vmap", one entry per call."""
    import scoring.training.grads as grads_mod

    taken: list[str] = []
    for name, attr, owner in (
        ("ghost", "batched_sq_norms", grads_mod.ghost),
        ("vmap", "_vmap_sq_norms", grads_mod),
    ):
        real = getattr(owner, attr)

        def spy(*args, _real=real, _name=name, **kwargs):
            taken.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, attr, spy)
    return taken


def test_targets_differ_from_each_other():
    """The three targets are different quantities (guards against a target being ignored)."""
    model, x, y = _conv_bn(), _images(), _labels()
    loss, logit_sum, logits = (
        sq_grad_norms(model, x, y, target=t) for t in ("loss", "logit_sum", "logits")
    )
    assert not np.allclose(loss, logit_sum) and not np.allclose(logit_sum, logits)


@pytest.mark.parametrize("target", ["loss", "logit_sum", "logits"])
@pytest.mark.parametrize("arch", ["mlp", "conv_bn"])
def test_last_layer_closed_form_matches_autograd_on_the_head(arch, target):
    """params="last" = autograd restricted to head.weight and head.bias, per example."""
    build, data = MODELS[arch]
    model, x, y = build(), data(), _labels()
    got = sq_grad_norms(model, x, y, target=target, params="last", chunk=5)
    want = _loop_sq_norms(model, x, y, target, params=[model.head.weight, model.head.bias])
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_last_layer_sq_norm_hand_example():
    """h = [1, 2], p = [0.25, 0.75], y = 0: ‖p − y‖²(‖h‖² + 1) = 1.125 x 6; logits: K x 6."""
    h = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    p = torch.tensor([[0.25, 0.75]], dtype=torch.float64)
    y = torch.tensor([0])
    assert last_layer_sq_norm(h, p, y, "loss").item() == pytest.approx(6.75, rel=1e-15)
    assert last_layer_sq_norm(h, p, y, "logits").item() == pytest.approx(12.0, rel=1e-15)
    assert last_layer_sq_norm(h, p, y, "logit_sum").item() == pytest.approx(12.0, rel=1e-15)
    # The input probabilities are not modified in place.
    assert p.tolist() == [[0.25, 0.75]]


@pytest.mark.parametrize("batch_size", [4, 5, 13, 64])
def test_calibrate_batchnorm_sets_whole_dataset_statistics(batch_size):
    """Running mean / unbiased variance = the BN input's over all examples, every example
    weighted alike, whatever the batch size (13 examples: batches of 5 leave a batch of 3;
    of 4, a last batch of one that joins the one before). The deeper BN's input is replayed
    by hand: the first BN normalises each training-mode batch by its mean and biased variance."""
    torch.manual_seed(0)
    model = Classifier(_conv_body(), 5, K).double()
    conv1, bn1, _, conv2, bn2 = list(model.body)[:5]
    with torch.no_grad():
        bn1.weight.uniform_(0.5, 1.5)
        bn1.bias.normal_()
    bn1.momentum, bn2.momentum = 0.3, None
    x = _images()
    calibrate_batchnorm(model, x, device=CPU, batch_size=batch_size)
    assert not model.training
    assert (bn1.momentum, bn2.momentum) == (0.3, None)

    with torch.no_grad():
        z1 = F.conv2d(x, conv1.weight, padding=1)  # (N, 4, 5, 5)
        z2 = []
        bounds = list(range(0, N, batch_size))
        if N - bounds[-1] == 1 and len(bounds) > 1:
            bounds.pop()
        for start, stop in zip(bounds, [*bounds[1:], N], strict=True):
            zb = z1[start:stop]
            mean = zb.mean((0, 2, 3), keepdim=True)
            var = zb.var((0, 2, 3), unbiased=False, keepdim=True)
            a = (zb - mean) / torch.sqrt(var + bn1.eps)
            a = torch.relu(a * bn1.weight[:, None, None] + bn1.bias[:, None, None])
            z2.append(F.conv2d(a, conv2.weight, conv2.bias, padding=1))
        z2 = torch.cat(z2)
    for bn, z in ((bn1, z1), (bn2, z2)):
        np.testing.assert_allclose(bn.running_mean, z.mean((0, 2, 3)), rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(bn.running_var, z.var((0, 2, 3), unbiased=True), rtol=RTOL)


def test_calibrate_batchnorm_1d_and_no_batchnorm():
    """BatchNorm1d: statistics over examples, and a last batch of one (13 = 4+4+4+1) does not
    crash training-mode BatchNorm1d; a model without BatchNorm is left untouched."""
    torch.manual_seed(0)
    body = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.BatchNorm1d(6), nn.ReLU())
    model = Classifier(body, 6, K).double()
    x = 3.0 * _vectors() + 1.0
    calibrate_batchnorm(model, x, device=CPU, batch_size=4)
    lin, bn = body[1], body[2]
    z = x.flatten(1) @ lin.weight.T + lin.bias
    np.testing.assert_allclose(bn.running_mean, z.mean(0).detach(), rtol=RTOL)
    np.testing.assert_allclose(bn.running_var, z.var(0).detach(), rtol=RTOL)

    plain = _mlp()
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    plain.train()
    calibrate_batchnorm(plain, _vectors(), device=CPU)
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())


def _checkpoints(tmp_path, build, x, lrs):
    """K differently seeded models saved as state dicts; returns (models, paths, lr by path)."""
    models, paths = [], []
    for k in range(len(lrs)):
        model = build(seed=10 + k) if build is _mlp else _conv_bn(seed=10 + k, x=x)
        path = str(tmp_path / f"ckpt{k}.pt")
        torch.save(model.state_dict(), path)
        models.append(model)
        paths.append(path)
    return models, paths, dict(zip(paths, lrs, strict=True))


@pytest.mark.parametrize("arch", ["mlp", "conv_bn"])
def test_tracin_matches_captum_tracincp(tmp_path, arch):
    """Σ_k η_k ‖∇ℓ‖² over all parameters = Captum TracInCP.self_influence (exact per-example
    loop, sample_wise_grads_per_batch=False), float64. Captum never changes the model's mode,
    so its model is put in eval mode here: both use BatchNorm's running statistics."""
    from captum.influence import TracInCP

    build, data = MODELS[arch]
    x, y = data(), _labels()
    lrs = [0.5, 0.25, 0.1]
    models, paths, lr_of = _checkpoints(tmp_path, build, x, lrs)

    def load(model, path):
        model.load_state_dict(torch.load(path, weights_only=True))
        return lr_of[path]

    ours = tracin_self_influence(models, lrs, x, y, chunk=5)
    captum_model = build(seed=99).eval() if build is _mlp else _conv_bn(seed=99).eval()
    tracin = TracInCP(
        captum_model,
        TensorDataset(x, y),
        paths,
        checkpoints_load_func=load,
        loss_fn=nn.CrossEntropyLoss(reduction="none"),
        batch_size=5,
        sample_wise_grads_per_batch=False,
    )
    theirs = tracin.self_influence(DataLoader(TensorDataset(x, y), batch_size=5))
    assert theirs.dtype == torch.float64
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=RTOL)
    # ... and the sum over checkpoints is weighted by each checkpoint's own learning rate.
    each = [sq_grad_norms(m, x, y) for m in models]
    np.testing.assert_allclose(
        ours, sum(lr * s for lr, s in zip(lrs, each, strict=True)), rtol=RTOL
    )


def test_tracin_last_layer_is_captum_fast_plus_the_bias_term(tmp_path):
    """params="last": ours = TracInCPFast + Σ_k η_k ‖p_k − y‖². Captum's fast variant keeps
    only the head weight (‖∂ℓ/∂f‖² ‖h‖²); the bias gradient p − y adds ‖p − y‖² exactly."""
    from captum.influence import TracInCPFast

    x, y = _images(), _labels()
    lrs = [0.5, 0.25, 0.1]
    models, paths, lr_of = _checkpoints(tmp_path, _conv_bn, x, lrs)

    def load(model, path):
        model.load_state_dict(torch.load(path, weights_only=True))
        return lr_of[path]

    ours = tracin_self_influence(models, lrs, x, y, params="last")
    captum_model = _conv_bn(seed=99).eval()
    fast = TracInCPFast(
        captum_model,
        captum_model.head,
        TensorDataset(x, y),
        paths,
        checkpoints_load_func=load,
        loss_fn=nn.CrossEntropyLoss(reduction="sum"),
        batch_size=5,
    )
    theirs = fast.self_influence(DataLoader(TensorDataset(x, y), batch_size=5)).numpy()
    bias = np.zeros(N)
    with torch.no_grad():
        for model, lr in zip(models, lrs, strict=True):
            err = torch.softmax(model.eval()(x), 1) - F.one_hot(y, K)
            bias += lr * err.pow(2).sum(1).numpy()
    assert (bias > 0.01 * theirs).all()  # the bias term is not negligible here
    np.testing.assert_allclose(ours, theirs + bias, rtol=RTOL)


def test_vog_matches_per_example_autograd():
    """VoG = mean over input dims of the population variance (1/K) over checkpoints of
    ∂ logit_y / ∂ x, each gradient taken on one example alone; chunks of 4 over 13."""
    x, y = _images(), _labels()
    models = [_conv_bn(seed=s, x=x) for s in (3, 4, 5)]
    for m in models:
        m.train()  # input_grad_variance must switch to eval mode itself
    done = []
    got = input_grad_variance(models, x, y, chunk=4, on_chunk=done.append)
    assert done == [4, 4, 4, 1]
    assert all(not m.training for m in models)
    want = []
    for i in range(N):
        grads = []
        for m in models:
            xi = x[i : i + 1].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(m(xi)[0, y[i]], xi)
            grads.append(g.flatten())
        g = torch.stack(grads)  # (K, D)
        want.append(float(((g - g.mean(0)) ** 2).sum(0).div(len(models)).mean()))
    assert got.dtype == np.float64 and got.shape == (N,)
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_vog_hand_computed_on_linear_checkpoints():
    """Linear models: ∂ logit_y/∂x = W[y]. Checkpoints with W[1] = [0, 2] and [2, 0] give a
    per-dimension variance of 1 and 1, so VoG 1; W[0] is shared, so label 0 gives VoG 0."""
    weights = ([[1.0, -1.0], [0.0, 2.0]], [[1.0, -1.0], [2.0, 0.0]])
    models = []
    for w in weights:
        model = Classifier(nn.Flatten(), 2, 2).double()
        with torch.no_grad():
            model.head.weight.copy_(torch.tensor(w))
            model.head.bias.normal_()
        models.append(model)
    x = torch.randn(4, 2, dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 0])
    np.testing.assert_allclose(input_grad_variance(models, x, y), [1.0, 0.0, 1.0, 0.0], atol=1e-15)
    # Three checkpoints, W[1, 0] = 0, 3, 6: variance 6; W[1, 1] = 0: variance 0 -> VoG 3.
    models3 = []
    for a in (0.0, 3.0, 6.0):
        model = Classifier(nn.Flatten(), 2, 2).double()
        with torch.no_grad():
            model.head.weight.copy_(torch.tensor([[0.0, 0.0], [a, 0.0]]))
        models3.append(model)
    np.testing.assert_allclose(input_grad_variance(models3, x[:1], y[:1]), [3.0], rtol=1e-15)


def test_bad_arguments_raise_value_error():
    """Unknown target or params, VoG with one checkpoint, one learning rate per checkpoint."""
    model, x, y = _mlp(), _vectors(), _labels()
    with pytest.raises(ValueError, match="target"):
        sq_grad_norms(model, x, y, target="margin")
    with pytest.raises(ValueError, match="params"):
        sq_grad_norms(model, x, y, params="first")
    with pytest.raises(ValueError, match="params"):
        tracin_self_influence([model], [0.1], x, y, params="first")
    with pytest.raises(ValueError, match="2 checkpoints"):
        input_grad_variance([model], x, y)
    with pytest.raises(ValueError, match="learning rate"):
        tracin_self_influence([model, _mlp(1)], [0.1], x, y)
    with pytest.raises(ValueError, match="learning rate"):
        tracin_self_influence([], [], x, y)


def test_auto_chunk_shrinks_with_model_size_and_outputs():
    """At least 1; fewer examples per chunk for more parameters or more outputs per example."""
    tiny = _mlp()
    big = nn.Linear(1000, 1000, device="meta")  # ~1 M parameters, no memory
    huge = nn.Linear(10_000, 10_000, device="meta")  # ~100 M
    assert auto_chunk(tiny) == auto_chunk(tiny, 3) >= 1  # both at the cap
    assert 1 <= auto_chunk(big, 10) < auto_chunk(big) < auto_chunk(tiny)
    assert auto_chunk(huge) == auto_chunk(huge, 100) == 1
    # Budget: chunk x outputs x parameters x 12 bytes stays within 256 MiB when above 1.
    n_params = sum(p.numel() for p in big.parameters())
    assert auto_chunk(big, 10) * 10 * n_params * 12 <= 256 * 2**20


def test_all_linear_models_take_ghost_norms_and_match_the_loop_in_float32(monkeypatch):
    """The probe's head (Linear, ReLU, Linear) over float32 embeddings: ghost norms (one
    batched backward, no per-example gradient), never the vmap path, and the loop's numbers
    to float32 precision; a grouped convolution still goes through vmap."""
    from scoring.training.models import build_model

    taken = _record_paths(monkeypatch)
    torch.manual_seed(0)
    probe = build_model("probe", (20,), K)
    x = F.normalize(torch.randn(N, 20), dim=1)
    y = _labels()
    for target in ("loss", "logit_sum", "logits"):
        got = sq_grad_norms(probe, x, y, target=target, chunk=5)
        np.testing.assert_allclose(got, _loop_sq_norms(probe, x, y, target), rtol=1e-5)
    assert taken == ["ghost"] * 3
    grouped = Classifier(
        nn.Sequential(nn.Conv2d(3, 6, 3, groups=3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), 6, K
    ).double()
    got = sq_grad_norms(grouped, _images(), y)
    np.testing.assert_allclose(got, _loop_sq_norms(grouped, _images(), y, "loss"), rtol=RTOL)
    assert taken[3:] == ["vmap"]


class _ConvZoo(nn.Module):
    """Every convolution case the unfold rule must get right: stride, dilation, padding, a
    non-square kernel and image, a bias, a 1x1 shortcut, one conv applied twice, an in-place ReLU
    after a BatchNorm, and layers whose cheaper rule is the Gram form (deep, 2x2 map) or the
    per-example gradient (wide, 6x6 map)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, (3, 2), bias=True)  # 8x7 -> 6x6
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU(inplace=True)
        self.shared = nn.Conv2d(4, 4, 3, padding=2, dilation=2)  # used twice, 6x6 -> 6x6
        self.down = nn.Conv2d(4, 40, 3, stride=3)  # -> 2x2: T (4) x 80 < 40 x 36
        self.short = nn.Conv2d(4, 40, 1, stride=3, bias=False)
        self.bn2 = nn.BatchNorm2d(40)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn(self.stem(x)))
        h = self.shared(torch.tanh(self.shared(h)))
        h = self.bn2(self.down(h)) + self.short(h)
        return h.mean((2, 3))  # (B, 40)


def _calibrated(model: nn.Module, x: torch.Tensor) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
    calibrate_batchnorm(model, x, device=CPU, batch_size=5)
    return model


@pytest.mark.parametrize("target", ["loss", "logits"])
def test_ghost_norms_of_convolutions_match_the_loop(target, monkeypatch):
    """Unfolded-patch ghost norms over `_ConvZoo` (float64) = one backward per example, and
    the ghost path is the one taken."""
    taken = _record_paths(monkeypatch)
    torch.manual_seed(3)
    x = 2.0 * torch.randn(N, 3, 8, 7, dtype=torch.float64) + 0.5
    model = _calibrated(Classifier(_ConvZoo(), 40, K).double(), x)
    got = sq_grad_norms(model, x, _labels(), target=target, chunk=4)
    want = _loop_sq_norms(model, x, _labels(), target)
    np.testing.assert_allclose(got, want, rtol=RTOL)
    assert taken == ["ghost"]


def test_ghost_norms_of_winnows_resnet18_match_the_loop(monkeypatch):
    """The product's CIFAR ResNet-18 (float64, 8x8 images so that the loop stays short):
    every layer's rule at once, shortcuts included."""
    from scoring.training.models import build_model

    taken = _record_paths(monkeypatch)
    torch.manual_seed(4)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    model = _calibrated(build_model("resnet18", (3, 8, 8), K).double(), x)
    y = torch.tensor([0, 2, 1, 2])
    got = sq_grad_norms(model, x, y)
    np.testing.assert_allclose(got, _loop_sq_norms(model, x, y, "loss"), rtol=1e-9)
    assert taken == ["ghost"]


def test_ghost_norms_refuse_batch_statistics_and_grouped_or_padded_by_name_convs():
    from scoring.training import ghost

    bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert not ghost.supports(bn.train()) and ghost.supports(bn.eval())
    assert not ghost.supports(nn.BatchNorm2d(4, track_running_stats=False).eval())
    assert not ghost.supports(nn.Conv2d(4, 4, 3, groups=2))
    assert not ghost.supports(nn.Conv2d(4, 4, 3, padding="same"))
    assert not ghost.supports(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"))
