"""Images held as uint8 end to end and converted per batch: the same numbers as float32.

The float32 references here are built by the code paths runs used before images stayed
uint8: `read_images(as_float=True)` (float32 value / float32 255, decoded straight into
the output) and digits' float64 value / 16 cast to float32.
"""

from __future__ import annotations

import dataclasses
import io
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from scoring import data, store
from scoring.config import DataConfig, ScoreConfig, TrainConfig
from scoring.data import decode, sources
from scoring.prune.select import SelectionConfig
from scoring.prune.sweeps import SweepConfig
from scoring.training import pixels as pixels_module
from scoring.training import retrain
from scoring.training.pipeline import score
from scoring.training.pixels import Pixels, to_device
from scoring.training.progress import Progress
from scoring.training.steps import prepare, tensor_inputs
from tests.conftest import digits_config

CPU = torch.device("cpu")


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_table(path: Path, n: int = 48, side: int = 32, classes: int = 3) -> Path:
    """A CIFAR-like parquet: RGB PNGs (img, label) whose class sets a colour pattern, plus
    noise; the first image holds every byte value 0..255 so conversions meet all of them."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    images = rng.integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)
    for i, k in enumerate(labels):
        images[i, :, :, k] = np.clip(images[i, :, :, k].astype(int) // 2 + 128, 0, 255)
    images[0].reshape(-1)[:256] = np.arange(256, dtype=np.uint8)
    cells = [{"bytes": _png(image), "path": None} for image in images]
    pd.DataFrame({"img": cells, "label": labels}).to_parquet(path)
    return path


def _old_digits_float(pixels: np.ndarray) -> np.ndarray:
    """Digits as `load` gave them before: float64 0..16 / 16, cast to float32."""
    return (pixels.astype(np.float64) / 16).astype(np.float32)


# -- what prepare holds -----------------------------------------------------------------------


def test_prepare_holds_a_cifar_like_image_table_as_uint8(tmp_path):
    source = _image_table(tmp_path / "cifar_like.parquet")
    cfg = ScoreConfig(
        data=DataConfig(source=str(source), test_fraction=0.25),
        train=TrainConfig(recipe="cnn32", runs=1, epochs=1),
        scores=("loss",),
    )
    prep = prepare(cfg, tmp_path / "cache")
    ds = prep.dataset
    assert ds.train.inputs.dtype == np.uint8 and ds.pixel_divisor == 255
    assert ds.train.inputs.shape == (36, 3, 32, 32)
    x, x_test = tensor_inputs(prep, Progress(tmp_path / "p", 1, enabled=False))
    for held, split in ((x, ds.train), (x_test, ds.test)):
        assert isinstance(held, Pixels) and held.data.dtype == torch.uint8 and held.divisor == 255
        assert np.shares_memory(held.numpy(), split.inputs)  # no copy, float32 or other
    assert x.data.nbytes == 36 * 3 * 32 * 32  # one byte per value: a quarter of float32's


def test_text_and_float_inputs_pass_through_untouched():
    tokens = torch.tensor([[[5, 6, 0], [1, 1, 0], [0, 0, 0]]])  # (1, 3, L): padding cut
    assert torch.equal(to_device(tokens, CPU), tokens[..., :2])
    floats = torch.rand(4, 3)
    assert to_device(floats, CPU) is floats  # on its device already: the very tensor


# -- per-batch conversion ---------------------------------------------------------------------


def test_per_batch_conversion_equals_the_old_float32_tensor(tmp_path):
    source = _image_table(tmp_path / "img.parquet", n=12, side=16)
    table = sources._open_file(source, str(tmp_path / "hf"))
    rows = np.arange(12)
    (u8,) = decode.read_images("img", [(table, rows, "t")])
    (old,) = decode.read_images("img", [(table, rows, "t")], as_float=True)
    assert u8.dtype == np.uint8 and old.dtype == np.float32
    assert set(np.unique(u8)) == set(range(256))  # every byte value is checked
    held, reference = Pixels(torch.from_numpy(u8), 255), torch.from_numpy(old)
    assert torch.equal(held.float(), reference)
    for index in (slice(0, 5), slice(5, 12), torch.tensor([7, 0, 11, 3])):
        assert torch.equal(to_device(held[index], CPU), reference[index])
    # Digits: 0..16 over 16, against the old float64 arithmetic.
    digits = data.load(DataConfig(source="digits")).train.inputs
    assert torch.equal(
        Pixels(torch.from_numpy(digits), 16).float(),
        torch.from_numpy(_old_digits_float(digits)),
    )


def test_table_lookup_where_a_device_division_is_not_exact(monkeypatch):
    values = torch.arange(256, dtype=torch.uint8).reshape(4, 1, 8, 8)
    want = torch.from_numpy(np.arange(256, dtype=np.float32) / np.float32(255)).reshape(4, 1, 8, 8)
    # A division by multiplying with the reciprocal (PyTorch's CUDA kernel for a scalar)
    # is off by one bit for many bytes: the check on all 256 has something to catch.
    assert not torch.equal(values.float() * (1 / 255), want)
    assert pixels_module._divides_exactly(CPU, 255)  # this CPU divides exactly
    monkeypatch.setattr(pixels_module, "_divides_exactly", lambda device, divisor: False)
    assert torch.equal(Pixels(values, 255).float(), want)  # the table: exact as well


# -- a whole run: the same numbers as with float32 inputs ------------------------------------


def _float32_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make runs hold float32 inputs as before: image files decoded by the old float path,
    digits by the old arithmetic; `pixel_divisor` None, so the models take them as they are."""
    monkeypatch.setattr(sources, "read_images", partial(decode.read_images, as_float=True))
    real = data.load

    def load(cfg, **kw):
        ds = real(cfg, **kw)
        if ds.pixel_divisor == 16:  # digits
            ds = dataclasses.replace(
                ds,
                train=dataclasses.replace(ds.train, inputs=_old_digits_float(ds.train.inputs)),
                test=dataclasses.replace(ds.test, inputs=_old_digits_float(ds.test.inputs)),
                pixel_divisor=None,
            )
        assert ds.pixel_divisor is None and ds.train.inputs.dtype == np.float32
        return ds

    monkeypatch.setattr(data, "load", load)
    # Retraining reads the run's inputs.npz: as float32 tensors, as it did.
    monkeypatch.setattr(
        retrain,
        "model_inputs",
        lambda rd, config, progress: tuple(
            torch.from_numpy(a) for a in (rd.read_inputs().train, rd.read_inputs().test)
        ),
    )


def _score_and_sweep(cfg: ScoreConfig, cache: Path) -> tuple[Path, pd.DataFrame]:
    run = score(cfg, cache, show_progress=False)
    sweep_cfg = SweepConfig(
        selection=SelectionConfig(rule="hardest", fraction=1.0, score="el2n"),
        fractions=(0.5,),
        seeds=1,
    )
    trials = retrain.sweep(run, sweep_cfg, show_progress=False)
    return run, pd.read_parquet(trials)


def _assert_runs_identical(a: Path, b: Path) -> None:
    for name in ("scores.parquet", "scores_per_run.parquet", "predictions.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / name), pd.read_parquet(b / name), check_exact=True
        )
    files = sorted(p.relative_to(a) for p in a.rglob("*.np[yz]") if "sweeps" not in p.parts)
    assert any(f.parts[0] == "runs" for f in files) and any(f.parts[0] == "cv" for f in files)
    for rel in files:
        x, y = store.load_arrays(a / rel) if rel.suffix == ".npz" else {}, {}
        if rel.suffix == ".npy":
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
            continue
        y = store.load_arrays(b / rel)
        assert sorted(x) == sorted(y), rel
        for key in x:
            if not key.endswith("_seconds"):  # wall-clock times
                assert x[key].dtype == y[key].dtype, (rel, key)
                assert x[key].tobytes() == y[key].tobytes(), (rel, key)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["digits", "cifar_like"])
def test_a_tiny_image_run_scores_bit_identical_to_float32_inputs(source, tmp_path, monkeypatch):
    if source == "digits":
        cfg = digits_config(150, runs=1, epochs=2, noise_fraction=0.1)
    else:  # 32x32 RGB through cnn32: flips, BatchNorm, every gradient score
        path = _image_table(tmp_path / "cifar_like.parquet", n=60)
        cfg = ScoreConfig(
            data=DataConfig(source=str(path), test_fraction=0.25),
            train=TrainConfig(recipe="cnn32", runs=1, epochs=2, batch_size=16),
            cv_folds=2,
        )
    with monkeypatch.context() as patch:
        _float32_reference(patch)
        before, before_trials = _score_and_sweep(cfg, tmp_path / "float32")
    inputs = store.load_arrays(before / "inputs.npz")
    assert inputs["train"].dtype == np.uint8  # stored as bytes + divisor either way
    after, after_trials = _score_and_sweep(cfg, tmp_path / "uint8")
    assert before.name == after.name  # the same run key
    _assert_runs_identical(before, after)
    pd.testing.assert_frame_equal(before_trials, after_trials, check_exact=True)
    scores = pd.read_parquet(after / "scores.parquet")
    assert {"grand", "vog", "tracin", "cl_quality", "prototype"} <= set(scores.columns)
