import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scoring.training.loop import fit, predict, seed_everything
from scoring.training.models import build_model, resolve_recipe


def _toy(n=48, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=gen)
    y = torch.arange(n) % k
    x[:, 0, 0, 0] += 2.0 * y  # some signal so training moves
    return x, y


def test_recording_matches_an_independent_full_batch_computation():
    x, y = _toy()
    recipe = resolve_recipe("mlp", modality="image", epochs=4, batch_size=len(y), early_epoch=2)
    gen = seed_everything(11)
    model = build_model("mlp", (1, 4, 4), 3)
    dyn = fit(model, x, y, recipe, gen=gen, device=torch.device("cpu"))

    # Replay by hand: with one batch per epoch every example is seen by the same weights,
    # so the recorded values must equal a plain forward pass before each step.
    gen = seed_everything(11)
    replica = build_model("mlp", (1, 4, 4), 3)
    opt = torch.optim.Adam(replica.parameters(), lr=recipe.lr)
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(y), generator=gen)
        logits = torch.empty(len(y), 3)
        logits[order] = replica(x[order])
        losses = F.cross_entropy(logits, y, reduction="none")
        with torch.no_grad():
            z = logits.detach()
            probs = torch.softmax(z, 1)
            others = z.clone()
            others[torch.arange(len(y)), y] = -torch.inf
            np.testing.assert_allclose(dyn.loss[epoch], losses.detach(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(dyn.logit_given[epoch], z[torch.arange(len(y)), y], 1e-5)
            np.testing.assert_allclose(dyn.logit_other[epoch], others.max(1).values, 1e-5)
            np.testing.assert_allclose(dyn.prob_given[epoch], probs[torch.arange(len(y)), y], 1e-5)
            np.testing.assert_array_equal(dyn.correct[epoch], (z.argmax(1) == y).numpy())
        opt.zero_grad()
        losses.mean().backward()
        opt.step()
        if epoch + 1 == recipe.early_epoch:
            # EL2N's probabilities: an eval pass with the weights after epoch t's last step.
            with torch.no_grad():
                after = torch.softmax(replica.eval()(x), 1)
            replica.train()
            np.testing.assert_allclose(dyn.probs_early, after, rtol=1e-5, atol=1e-7)


def test_minibatch_recording_shapes_and_reproducibility():
    x, y = _toy(n=50)
    recipe = resolve_recipe("mlp", modality="image", epochs=3, batch_size=8)
    runs = []
    for _ in range(2):
        gen = seed_everything(5)
        model = build_model("mlp", (1, 4, 4), 3)
        runs.append(fit(model, x, y, recipe, gen=gen, device=torch.device("cpu")))
    a, b = runs
    assert a.loss.shape == (3, 50) and a.correct.dtype == bool and a.probs_early.shape == (50, 3)
    for name in ("loss", "logit_given", "logit_other", "prob_given", "correct", "probs_early"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_allclose(a.prob_given, np.exp(-a.loss), rtol=1e-5)
    gen = seed_everything(6)
    c = fit(build_model("mlp", (1, 4, 4), 3), x, y, recipe, gen=gen, device=torch.device("cpu"))
    assert not np.array_equal(a.loss, c.loss)


def test_predict_returns_probabilities_and_features():
    x, _ = _toy(n=10)
    torch.manual_seed(0)
    model = build_model("mlp", (1, 4, 4), 3)
    out = predict(model, x, device=torch.device("cpu"), batch_size=4)
    assert out.probs.shape == (10, 3) and out.features.shape == (10, 128)
    np.testing.assert_allclose(out.probs.sum(1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("recipe", "shape"), [("cnn", (1, 8, 8)), ("cnn32", (3, 32, 32)), ("probe", (384,))]
)
def test_every_recipe_builds_and_trains_one_step(recipe, shape):
    torch.manual_seed(0)
    x = torch.randn(6, *shape)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    modality = "text" if recipe == "probe" else "image"
    r = resolve_recipe(recipe, modality=modality, epochs=1, batch_size=3)
    model = build_model(recipe, shape, 2)
    dyn = fit(model, x, y, r, gen=seed_everything(0), device=torch.device("cpu"))
    assert dyn.loss.shape == (1, 6) and np.isfinite(dyn.loss).all()


def test_step_matched_schedule_runs_exactly_the_asked_steps():
    x, y = _toy(n=40)
    recipe = resolve_recipe("mlp", modality="image", epochs=2, batch_size=8)  # 5 steps/epoch
    calls = []
    model = build_model("mlp", (1, 4, 4), 3)
    out = fit(
        model,
        x[:20],
        y[:20],
        recipe,
        gen=seed_everything(0),
        device=torch.device("cpu"),
        record=False,
        steps=7,
        on_step=calls.append,
    )
    assert out is None and len(calls) == 7  # 3 steps/epoch on 20 examples: 3 + 3 + 1
    with pytest.raises(ValueError, match="no recording"):
        fit(model, x, y, recipe, gen=seed_everything(0), device=torch.device("cpu"), steps=3)
