"""Gradient scores in a real run: the plan, the snapshots, and values recomputed by hand.

The end-to-end tests reload a finished run's safetensors snapshots and recompute a few
examples' gradients with a plain per-example autograd loop, independently of the batched
`torch.func` code the pipeline used.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from scoring import store
from scoring.config import DataConfig, GradConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.scores import REGISTRY
from scoring.training.checkpoints import Snapshots, load_states, save_states
from scoring.training.grad_arrays import GRAD_ARRAYS, plan
from scoring.training.grads import calibrate_batchnorm
from scoring.training.loop import fit, seed_everything
from scoring.training.models import build_model, resolve_recipe
from scoring.training.pipeline import score
from tests.conftest import digits_config

GRAD_SCORES = ("grand", "vog", "tracin", "el2n_free", "grand_free", "grand_logit_sq")


def _recipe(epochs: int = 3, batch_size: int = 64):
    return resolve_recipe("mlp", modality="image", epochs=epochs, batch_size=batch_size)


# --- the plan ----------------------------------------------------------------------------


def test_plan_spaces_checkpoints_evenly_and_ends_at_the_last_step() -> None:
    recipe = _recipe(epochs=3, batch_size=64)  # 100 examples -> 2 steps per epoch, 6 in all
    p = plan(set(GRAD_ARRAYS), GradConfig(checkpoints=3), recipe, n_train=100)
    assert p.checkpoint_steps == (2, 4, 6)
    assert p.at_step == 0 and p.arrays == GRAD_ARRAYS
    assert p.snapshot_steps == {0, 2, 4, 6}
    assert p.passes == 3 + 2 * 3  # three at-init passes, tracin and vog over 3 checkpoints
    early = plan({"grad_norm"}, GradConfig(at="early"), recipe, n_train=100)
    assert early.at_step == recipe.early_epoch * 2 and early.checkpoint_steps == ()
    assert plan({"loss", "labels"}, GradConfig(), recipe, n_train=100).arrays == ()


def test_default_checkpoints_fit_short_schedules() -> None:
    p = plan({"tracin_self"}, GradConfig(), _recipe(epochs=1, batch_size=64), n_train=100)
    assert p.checkpoint_steps == (1, 2)  # 2 steps in all: fewer than the default 5


@pytest.mark.parametrize(
    ("needed", "grads", "message"),
    [
        ({"grad_norm"}, GradConfig(at="end"), "--grad-at must be init or early"),
        ({"grad_norm"}, GradConfig(params="head"), "--grad-params must be all or last"),
        ({"input_grad_var"}, GradConfig(checkpoints=1), "between 2 and the run's 6"),
        ({"tracin_self"}, GradConfig(checkpoints=7), "between 1 and the run's 6"),
        ({"tracin_self"}, GradConfig(checkpoints=0), "--checkpoints must be"),
    ],
)
def test_bad_gradient_options_are_refused(needed, grads, message) -> None:
    with pytest.raises(InputError, match=message):
        plan(needed, grads, _recipe(), n_train=100)


# --- snapshots ---------------------------------------------------------------------------


def test_snapshots_copy_weights_and_learning_rates_during_sgd_training() -> None:
    """Step 0 is the initialization, the last step the trained model; η is the mean step LR."""
    gen = seed_everything(3)
    model = build_model("cnn32", (3, 8, 8), 4)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = resolve_recipe("cnn32", modality="image", epochs=2, batch_size=16)  # SGD + cosine
    x, y = torch.randn(48, 3, 8, 8), torch.arange(48) % 4
    snaps = Snapshots(model, {0, 3, 6})
    fit(model, x, y, recipe, gen=gen, device=torch.device("cpu"), record=False, on_update=snaps)
    for k, v in init.items():
        torch.testing.assert_close(snaps.states[0][k], v, rtol=0, atol=0)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(snaps.states[6][k], v, rtol=0, atol=0)
    assert len(snaps.lrs) == 6 and snaps.lrs[0] == pytest.approx(recipe.lr)
    total = 6  # cosine over the 6 steps: step s (1-based) used lr/2 * (1 + cos(pi (s-1)/6))
    expected = [recipe.lr / 2 * (1 + np.cos(np.pi * s / total)) for s in range(total)]
    np.testing.assert_allclose(snaps.lrs, expected, rtol=1e-9)
    assert snaps.mean_lr(3, 6) == pytest.approx(np.mean(expected[3:6]))


def test_states_round_trip_through_safetensors(tmp_path) -> None:
    states = {"step0": {"w": torch.arange(6.0).reshape(2, 3)}, "step4": {"w": torch.ones(2, 3)}}
    save_states(tmp_path / "s.safetensors", states)
    back = load_states(tmp_path / "s.safetensors")
    assert set(back) == {"step0", "step4"}
    torch.testing.assert_close(back["step0"]["w"], states["step0"]["w"])
    # A safetensors file starts with an 8-byte header length and JSON, never a pickle.
    raw = (tmp_path / "s.safetensors").read_bytes()
    assert raw[8:9] == b"{" and b"\x80\x04" not in raw[:2]


# --- a real run --------------------------------------------------------------------------


def _run_config(recipe: str, **grads) -> ScoreConfig:
    return digits_config(
        200,
        train=TrainConfig(recipe=recipe, runs=2, epochs=3, batch_size=50),
        scores=GRAD_SCORES,
        grads=GradConfig(checkpoints=3, **grads),
        cv_folds=5,
    )


def _reload(path, run: int, recipe: str):
    """Run `run`'s snapshots as models, with its inputs and labels, from the cache alone."""
    from scoring import data
    from scoring.data.decode import to_float

    config = ScoreConfig.from_dict(json.loads((path / "config.json").read_text())["config"])
    ds = data.load(config.data)
    x = torch.from_numpy(to_float(ds.train.inputs, ds.pixel_divisor)).double()  # the models' input
    y = torch.from_numpy(store.load_arrays(path / "split.npz")["labels"])
    states = load_states(path / "runs" / f"run_{run:03d}.safetensors")

    def model_at(step: int) -> torch.nn.Module:
        model = build_model(recipe, tuple(x.shape[1:]), 10)
        model.load_state_dict(states[f"step{step}"])
        return model.double().eval()

    return model_at, x, y


def _loop_sq_norm(model, x, y, *, params=None, of=lambda logits, y: F.cross_entropy(logits, y)):
    """Plain per-example autograd: one backward per example."""
    params = list(model.parameters()) if params is None else params
    out = []
    for i in range(x.shape[0]):
        grads = torch.autograd.grad(of(model(x[i : i + 1]), y[i : i + 1]), params)
        out.append(sum(float(g.pow(2).sum()) for g in grads))
    return np.array(out)


def test_mlp_run_records_gradient_scores_that_a_plain_loop_reproduces(cache_dir) -> None:
    path = score(_run_config("mlp"), cache_dir, show_progress=False)
    frame = store.read_scores(path)
    per_run = pd.read_parquet(path / "scores_per_run.parquet")
    assert [c for c in frame.columns if c in GRAD_SCORES] == list(GRAD_SCORES)
    assert all(f"{k}__run1" in per_run for k in GRAD_SCORES)
    summary = json.loads((path / "summary.json").read_text())
    assert all(-1 <= summary["scores"][k]["spearman_loo"] <= 1 for k in GRAD_SCORES)
    run1 = store.load_arrays(path / "runs" / "run_001.npz")
    steps = list(run1["checkpoint_steps"])
    assert steps == [4, 8, 12]  # 200 examples / 50 = 4 steps per epoch, 3 epochs
    np.testing.assert_allclose(run1["checkpoint_lrs"], 1e-3)  # Adam's constant step size

    model_at, x, y = _reload(path, 1, "mlp")
    idx = [0, 7, 42, 199]
    init = model_at(0)
    np.testing.assert_allclose(
        per_run["grand__run1"].to_numpy()[idx], np.sqrt(_loop_sq_norm(init, x[idx], y[idx])),
        rtol=1e-5,
    )  # fmt: skip
    logit_sum = _loop_sq_norm(init, x[idx], y[idx], of=lambda logits, _: logits.sum())
    np.testing.assert_allclose(
        per_run["grand_free__run1"].to_numpy()[idx], np.sqrt(logit_sum), rtol=1e-5
    )
    per_logit = sum(
        _loop_sq_norm(init, x[idx], y[idx], of=lambda logits, _, k=k: logits[0, k])
        for k in range(10)
    )
    np.testing.assert_allclose(
        per_run["grand_logit_sq__run1"].to_numpy()[idx], per_logit, rtol=1e-5
    )
    tracin = sum(1e-3 * _loop_sq_norm(model_at(s), x[idx], y[idx]) for s in steps)
    np.testing.assert_allclose(per_run["tracin__run1"].to_numpy()[idx], tracin, rtol=1e-5)
    grads = []
    for s in steps:
        xi = x[idx].clone().requires_grad_(True)
        model_at(s)(xi).gather(1, y[idx][:, None]).sum().backward()
        grads.append(xi.grad.reshape(len(idx), -1).numpy())
    vog = np.stack(grads).var(axis=0).mean(axis=1)  # numpy var: population variance over K
    np.testing.assert_allclose(per_run["vog__run1"].to_numpy()[idx], vog, rtol=1e-5)


def test_batchnorm_run_at_early_epoch_and_last_layer(cache_dir) -> None:
    """cnn (BatchNorm) with --grad-at early: eval-mode loop reproduces GraNd; last layer too."""
    path = score(_run_config("cnn", at="early"), cache_dir, show_progress=False)
    per_run = pd.read_parquet(path / "scores_per_run.parquet")
    model_at, x, y = _reload(path, 0, "cnn")
    early = model_at(4)  # early epoch 1 (10% of 3 epochs, at least 1) x 4 steps
    idx = [3, 150]
    np.testing.assert_allclose(
        per_run["grand__run0"].to_numpy()[idx], np.sqrt(_loop_sq_norm(early, x[idx], y[idx])),
        rtol=1e-4,
    )  # fmt: skip

    last = score(_run_config("cnn", params="last"), cache_dir, show_progress=False)
    assert last != path
    per_run = pd.read_parquet(last / "scores_per_run.parquet")
    model_at, x, y = _reload(last, 0, "cnn")
    init = model_at(0)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    calibrate_batchnorm(init, x[order], device=torch.device("cpu"))  # as the run did at init
    head = list(init.head.parameters())
    np.testing.assert_allclose(
        per_run["grand__run0"].to_numpy()[idx],
        np.sqrt(_loop_sq_norm(init, x[idx], y[idx], params=head)),
        rtol=1e-4,
    )
    steps = store.load_arrays(last / "runs" / "run_000.npz")["checkpoint_steps"]
    lrs = store.load_arrays(last / "runs" / "run_000.npz")["checkpoint_lrs"]
    tracin = 0.0
    for s, lr in zip(steps, lrs, strict=True):
        model = model_at(s)
        tracin += lr * _loop_sq_norm(model, x[idx], y[idx], params=list(model.head.parameters()))
    np.testing.assert_allclose(per_run["tracin__run0"].to_numpy()[idx], tracin, rtol=1e-4)


def test_gradient_scores_flag_injected_noise(cache_dir) -> None:
    from scoring.config import NoiseConfig

    cfg = ScoreConfig(
        data=DataConfig(source="digits", limit=400),
        train=TrainConfig(runs=2, epochs=6),
        noise=NoiseConfig(fraction=0.1),
        scores=("tracin", "grand", "vog"),
    )
    path = score(cfg, cache_dir, show_progress=False)
    blocks = json.loads((path / "summary.json").read_text())["scores"]
    frame = pd.read_parquet(path / "scores.parquet")
    noisy = frame["noisy"].to_numpy(bool)
    for key in ("tracin", "grand", "vog"):  # each figure is its column's AUROC, by hand
        h = frame[key].to_numpy() * (1 if REGISTRY[key].higher_is_harder else -1)
        assert blocks[key]["noise_auroc"] == pytest.approx(roc_auc_score(noisy, h), abs=1e-12)
    assert blocks["tracin"]["noise_auroc"] > 0.9  # a mislabeled example keeps a large loss gradient
