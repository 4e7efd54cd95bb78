"""EL2N at fixed weights (Data Diet): `probs_early` is one eval pass with the weights after
the early epoch, the same for every example, whatever order the epoch's batches came in."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from scoring.config import GradConfig
from scoring.scores.el2n import el2n
from scoring.training import grad_arrays
from scoring.training.checkpoints import Snapshots
from scoring.training.loop import fit, predict, seed_everything
from scoring.training.models import build_model, resolve_recipe

CPU = torch.device("cpu")


def _images(n=96, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=gen)
    y = torch.arange(n) % k
    x[:, 0, 2, 2] += y  # some signal so training moves
    return x, y


@pytest.mark.parametrize("recipe_name", ["mlp", "cnn"])  # cnn: BatchNorm, train vs eval differ
def test_probs_early_is_a_direct_eval_forward_with_the_snapshot_weights(recipe_name):
    x, y = _images()
    recipe = resolve_recipe(
        recipe_name, modality="image", epochs=3, batch_size=16, early_epoch=2, lr=3e-3
    )
    # The `--grad-at early` plan snapshots the step that ends the early epoch: GraNd at early
    # is taken at the very weights EL2N's pass reads.
    plan = grad_arrays.plan({"grad_norm"}, GradConfig(at="early"), recipe, n_train=len(y))
    assert plan.at_step == 2 * 6  # 96 examples / 16 = 6 steps per epoch
    torch.manual_seed(0)
    model = build_model(recipe_name, (1, 8, 8), 3)
    snaps = Snapshots(model, plan.snapshot_steps)
    dyn = fit(model, x, y, recipe, gen=seed_everything(4), device=CPU, on_update=snaps)

    fresh = build_model(recipe_name, (1, 8, 8), 3)
    fresh.load_state_dict(snaps.states[plan.at_step])
    with torch.no_grad():
        direct = torch.softmax(fresh.eval()(x), dim=1).numpy()  # (N, K)
    np.testing.assert_allclose(dyn.probs_early, direct, rtol=1e-5, atol=1e-7)

    # The training pass of that epoch is another thing (weights moving within the epoch,
    # and BatchNorm on batch statistics): the old recording would fail the check above.
    rows = np.arange(len(y))
    gap = np.abs(dyn.prob_given[1] - dyn.probs_early[rows, y.numpy()]).max()
    assert gap > 1e-2


def test_eval_pass_values_depend_on_the_weights_not_on_example_order():
    """Same weights, examples in another order and other batches: the same EL2N per example."""
    x, y = _images(n=90)
    torch.manual_seed(1)
    model = build_model("cnn", (1, 8, 8), 3)
    recipe = resolve_recipe("cnn", modality="image", epochs=1, batch_size=16)
    fit(model, x, y, recipe, gen=seed_everything(1), device=CPU, record=False)  # BN stats move
    labels = y.numpy()
    base = el2n(labels=labels, probs_early=predict(model, x, device=CPU).probs[None])[0]
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(2))
    for batch_size in (7, 90):
        probs = predict(model, x[perm], device=CPU, batch_size=batch_size).probs  # (N, K)
        got = el2n(labels=labels[perm.numpy()], probs_early=probs[None])[0]
        np.testing.assert_allclose(got, base[perm.numpy()], rtol=1e-5, atol=1e-6)


def test_el2n_does_not_follow_the_position_in_the_early_epoch():
    """Digits, minibatches: the training-pass error of epoch t follows each example's position
    in that epoch's order (later = trained longer); the fixed-weight pass does not."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)[:, None])  # (N, 1, 8, 8)
    y = torch.from_numpy(d.target.astype(np.int64))
    n = len(y)
    recipe = resolve_recipe("mlp", modality="image", epochs=2, early_epoch=1)
    torch.set_num_threads(1)
    gen = seed_everything(0)
    model = build_model("mlp", (1, 8, 8), 10)
    dyn = fit(model, x, y, recipe, gen=gen, device=CPU)
    # Replay the data order: the loop draws one randperm per epoch from the run's generator.
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    position = np.empty(n)
    position[order.numpy()] = np.arange(n)
    training_pass = 1.0 - dyn.prob_given[0]  # the error the training pass saw, epoch 1
    fixed = el2n(labels=y.numpy(), probs_early=dyn.probs_early[None])[0]
    moving_rho = spearmanr(training_pass, position).statistic
    fixed_rho = spearmanr(fixed, position).statistic
    chance = 3 / np.sqrt(n - 1)  # 3 sigma of Spearman's rho under independence
    assert moving_rho < -chance  # the defect the fixed weights remove
    assert abs(fixed_rho) < chance
