"""The image `probe`: a pretrained encoder of each family (tiny, random, saved to a folder:
the same code path as a Hub name) embeds the images once; a probe trains on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scoring import store
from scoring.config import DataConfig, GradConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.scores import REGISTRY
from scoring.training import image_encoders
from scoring.training.pipeline import score
from scoring.training.retrain import model_inputs

transformers = pytest.importorskip("transformers")

# A tiny transformer: 32x32 input, 8x8 patches, width 32, 2 layers.
_VIT = dict(
    image_size=32,
    patch_size=8,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
)


def _vit():
    model = transformers.ViTModel(transformers.ViTConfig(**_VIT))
    return model, transformers.ViTImageProcessor(size={"height": 32, "width": 32})


def _dinov2():
    model = transformers.Dinov2Model(transformers.Dinov2Config(**_VIT))
    proc = transformers.BitImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    return model, proc


def _clip():
    config = transformers.CLIPVisionConfig(**_VIT, projection_dim=16)
    model = transformers.CLIPVisionModelWithProjection(config)
    proc = transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    return model, proc


def _convnext():
    config = transformers.ConvNextConfig(
        num_channels=3, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, patch_size=4
    )
    proc = transformers.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0)
    return transformers.ConvNextModel(config), proc


FAMILIES = {"vit": _vit, "dinov2": _dinov2, "clip": _clip, "convnext": _convnext}
WIDTHS = {"vit": 32, "dinov2": 64, "clip": 16, "convnext": 16}


def _save_encoder(family: str, folder: Path) -> Path:
    torch.manual_seed(0)
    model, processor = FAMILIES[family]()
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pets(tmp_path_factory) -> Path:
    """An image folder: 3 classes x 14 RGB 12x12 PNGs, classes told apart by brightness."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pets_src") / "pets"
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir(parents=True)
        for i in range(14):
            pixels = rng.integers(0, 70, size=(12, 12, 3)) + 80 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _config(pets: Path, encoder: Path | None, **train) -> ScoreConfig:
    return ScoreConfig(
        data=DataConfig(source=str(pets)),
        train=TrainConfig(model=str(encoder) if encoder else None, runs=2, epochs=3, **train),
        grads=GradConfig(params="last"),
        cv_folds=2,
    )


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_image_probe_end_to_end(family, pets, cache_dir, tmp_path, monkeypatch):
    encoder = _save_encoder(family, tmp_path / family)
    calls = []
    real = image_encoders.load_image_model
    monkeypatch.setattr(
        "scoring.training.steps.load_image_model", lambda m: calls.append(m) or real(m)
    )
    run = score(_config(pets, encoder), cache_dir, show_progress=False)  # recipe auto
    assert store.read_status(run)["state"] == "done"
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["name"] == "probe" and config["dataset"]["modality"] == "image"
    frame = store.read_scores(run)
    keys = [k for k in REGISTRY if k in frame]
    assert len(keys) >= 10 and len(frame) == 34  # 42 rows, 8 carved for testing
    assert np.isfinite(frame[keys].to_numpy()).all()
    (emb,) = (cache_dir / run.parent.name / "embeddings").glob("*.npz")
    arrays = store.load_arrays(emb)
    assert arrays["train"].shape == (34, WIDTHS[family]) and arrays["test"].shape[0] == 8
    np.testing.assert_allclose(np.linalg.norm(arrays["train"], axis=1), 1.0, rtol=1e-5)
    # Retraining (pruning sweeps) reads the very embeddings, named by the run, not copied.
    rd = store.RunDir(run)
    assert rd.read_inputs().kind == "embeddings"
    x, x_test = model_inputs(rd, ScoreConfig.from_dict(config["config"]), None)
    assert np.array_equal(x.numpy(), arrays["train"])
    assert np.array_equal(x_test.numpy(), arrays["test"])
    # The label-free prototype reads the encoder's embeddings, not pixels.
    free = store.load_arrays(rd.features_free_file)["features"]
    np.testing.assert_array_equal(free, arrays["train"])
    assert calls == [str(encoder)]
    # Another run on the same data and encoder reuses the table: no encoder is loaded.
    mtime = emb.stat().st_mtime_ns
    again = score(_config(pets, encoder, base_seed=5), cache_dir, show_progress=False)
    assert again != run and store.read_status(again)["state"] == "done"
    assert calls == [str(encoder)] and emb.stat().st_mtime_ns == mtime


def test_dinov2_pooling_is_cls_and_mean_patch(pets, tmp_path):
    """The pooled DINOv2 embedding, against a hand computation with the model."""
    from PIL import Image

    folder = _save_encoder("dinov2", tmp_path / "dinov2")
    files = sorted(pets.glob("*/*.png"))[:5]
    rgb = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])  # (5, 12, 12, 3)
    decoded = rgb.transpose(0, 3, 1, 2).astype(np.float32) / 255  # as decode gives them
    assert np.array_equal(image_encoders.to_uint8_rgb(decoded), rgb)  # bytes back exactly
    got = image_encoders.embed_images(decoded, model=str(folder), batch_size=2)

    model = transformers.Dinov2Model.from_pretrained(folder).eval()
    processor = transformers.BitImageProcessor.from_pretrained(folder)
    with torch.no_grad():
        pixels = processor(images=list(rgb), return_tensors="pt")["pixel_values"]
        hidden = model(pixel_values=pixels).last_hidden_state.numpy()  # (5, 1 + 16, 32)
    want = np.concatenate([hidden[:, 0], hidden[:, 1:].mean(1)], axis=1)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_clip_model_uses_its_projected_image_features(tmp_path):
    """A whole CLIPModel pools by `get_image_features` (the projected image embedding)."""
    text = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    config = transformers.CLIPConfig(
        text_config={**text, "intermediate_size": 32},
        vision_config=_VIT,
        projection_dim=8,
    )
    torch.manual_seed(0)
    model = transformers.CLIPModel(config).eval()
    model.save_pretrained(tmp_path / "clip", safe_serialization=True)
    proc = transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    proc.save_pretrained(tmp_path / "clip")
    images = np.random.default_rng(0).random((3, 3, 20, 20)).astype(np.float32)
    got = image_encoders.embed_images(images, model=str(tmp_path / "clip"))
    with torch.no_grad():
        pixels = proc(images=list(image_encoders.to_uint8_rgb(images)), return_tensors="pt")[
            "pixel_values"
        ]
        want = model.get_image_features(pixel_values=pixels)
        want = getattr(want, "pooler_output", want)
    want = torch.nn.functional.normalize(want, dim=1).numpy()
    assert got.shape == (3, 8)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_bad_image_encoders_are_refused_before_anything_is_written(pets, cache_dir, tmp_path):
    cases = [
        (_config(pets, tmp_path / "nowhere"), "no such folder"),
        (_config(pets, None, recipe="finetune"), "does not fit image data"),
    ]
    bert = tmp_path / "bert"
    transformers.BertModel(
        transformers.BertConfig(
            vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2
        )
    ).save_pretrained(bert, safe_serialization=True)
    cases.append((_config(pets, bert), "'bert' model.*supported families: clip"))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "vit"}))
    (pickled / "pytorch_model.bin").write_bytes(b"x")
    cases.append((_config(pets, pickled), "pickled weights"))
    for cfg, message in cases:
        with pytest.raises(InputError, match=message):
            score(cfg, cache_dir, show_progress=False)
    assert list(store.iter_run_dirs(cache_dir)) == []
