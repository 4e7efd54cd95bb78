"""Frozen pretrained image encoders for the image `probe`: one pooling per family.

With no `--model` (or `--model efficientnet-lite0`) the encoder is the bundled, offline
EfficientNet-Lite0 (`scoring.training.efficientnet`: sha256-checked weights, its own
TensorFlow preprocessing, the global average of its last conv). Any Hugging Face vision
encoder whose family is in `POOLINGS` works, from a local folder or a Hub name, through the
same loader as the text encoder (`embed._from_pretrained`: safetensors only, never a
pickle). Each image goes through the model's own image processor
(`AutoImageProcessor`: resize, crop, normalise) as the uint8 RGB pixels it was decoded to.

Pooled embedding per family (`config.model_type`):

- ``clip`` (CLIPModel) and ``clip_vision_model`` saved as CLIPVisionModelWithProjection: the
  projected image embedding (`get_image_features` / `image_embeds`), what CLIP compares
  with text; a bare CLIPVisionModel: its `pooler_output` (post-layernorm CLS);
- ``dinov2``: concat(CLS, mean of patch tokens) of the last hidden state, as DINOv2's own
  linear-probe evaluation does (width 2 x hidden);
- ``vit``: the CLS token of the last hidden state (post-layernorm). Not the pooler: that
  tanh layer is trained only by some checkpoints (random in others, absent when saved
  without it), while the CLS token is what ViT's classification head reads;
- ``convnext``, ``convnextv2``, ``resnet``: `pooler_output` (global average of the last
  stage, layer-normed for ConvNeXt), flattened.

Every embedding is then L2-normalised, as the text probe's are: the probe's defaults
(Adam, lr 1e-3) then suit every encoder whatever its activation scale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scoring.errors import InputError
from scoring.training import efficientnet, embed

POOLING_VERSION = 1  # bump when a pooling below changes: it enters the embeddings' cache key


def _clip(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    if hasattr(model, "get_image_features"):  # CLIPModel: the projected image embedding
        out = model.get_image_features(pixel_values=pixel_values)
        return out if isinstance(out, torch.Tensor) else out.pooler_output
    out = model(pixel_values=pixel_values)
    if getattr(out, "image_embeds", None) is not None:  # CLIPVisionModelWithProjection
        return out.image_embeds
    return out.pooler_output  # a bare CLIPVisionModel: the post-layernorm CLS


def _dinov2(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    hidden = model(pixel_values=pixel_values).last_hidden_state  # (B, 1 + P, H)
    return torch.cat([hidden[:, 0], hidden[:, 1:].mean(1)], dim=1)  # (B, 2H)


def _cls(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=pixel_values).last_hidden_state[:, 0]  # (B, H)


def _pooler(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    pooled = model(pixel_values=pixel_values).pooler_output  # (B, C) or (B, C, 1, 1)
    return pooled.flatten(1)


# config.model_type -> pooled embedding of a batch of processed pixels (B, C, H, W) -> (B, D).
POOLINGS: dict[str, Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]] = {
    "clip": _clip,
    "clip_vision_model": _clip,
    "dinov2": _dinov2,
    "vit": _cls,
    "convnext": _pooler,
    "convnextv2": _pooler,
    "resnet": _pooler,
}
_IMAGE_FILES = "its transformers config, preprocessor_config.json and model.safetensors"


def check_image_encoder(model: str | None) -> str:
    """Refuse an image encoder that cannot load, before any work.

    Reads no Hugging Face weights; the bundled EfficientNet-Lite0's file is hashed (sha256)
    so a changed file is refused here, before a run folder exists.

    Parameters
    ----------
    model : str or None
        `TrainConfig.model`: None or ``efficientnet-lite0`` (the bundled encoder), a local
        folder or a Hugging Face model name.

    Returns
    -------
    str
        The encoder's family (`config.model_type`, a key of `POOLINGS`; `efficientnet.FAMILY`
        for the bundled one).

    Raises
    ------
    InputError
        The bundled encoder's packages missing or its weights changed; no such folder,
        pickled weights, an unsupported family, or no image processor.
    """
    if efficientnet.is_default(model):  # no transformers import for it
        efficientnet.check_weights()
        return efficientnet.FAMILY
    from transformers import AutoConfig

    folder = Path(model).expanduser()
    if folder.is_dir():
        embed._check_model_folder(folder, model, files=_IMAGE_FILES)
    elif folder.exists() or embed._looks_like_path(model):
        raise InputError(
            f"--model {model}: no such folder; give a local model folder ({_IMAGE_FILES}) or "
            "a Hugging Face model name"
        )
    config = embed._from_pretrained(AutoConfig, model, what="image encoder")
    family = _family(config, model)
    load_image_processor(model)
    return family


def _family(config, model: str) -> str:
    family = getattr(config, "model_type", None)
    if family not in POOLINGS:
        raise InputError(
            f"--model {model} is a {family!r} model, which the image probe cannot pool; "
            f"supported families: {', '.join(sorted(POOLINGS))}"
        )
    return family


def image_embedding_key(model: str | None) -> str:
    """Cache name of an image embedding table: the encoder's identity and its preprocessing.

    A local folder adds its weights' size and mtime and its image processor's settings, so
    replacing either computes the table again; a Hub name is keyed by name. The bundled
    encoder (None or its name: one key) is keyed by its weights' sha256 and its
    preprocessing (resolution, crop, normalisation).
    """
    if efficientnet.is_default(model):
        ident: dict = {
            "kind": "image",
            "model": efficientnet.DEFAULT_IMAGE_MODEL,
            "sha256": efficientnet.WEIGHTS_SHA256,
            "resolution": efficientnet.RESOLUTION,
            "crop_padding": efficientnet.CROP_PADDING,
            "normalise": [efficientnet.MEAN, efficientnet.STD],
            "pooling": "avg",
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    ident = {"kind": "image", "model": model, "pooling": POOLING_VERSION}
    folder = Path(model).expanduser()
    if folder.is_dir():
        weights = sorted(folder.glob("*.safetensors"))
        ident["weights"] = [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in weights]
        processor = folder / "preprocessor_config.json"
        if processor.is_file():
            ident["processor"] = hashlib.sha256(processor.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def load_image_processor(model: str):
    """The encoder's own image processor (local folder or Hub name)."""
    from transformers import AutoImageProcessor

    return embed._from_pretrained(AutoImageProcessor, model, what="image encoder")


def load_image_encoder(model: str) -> tuple[torch.nn.Module, str]:
    """The pretrained encoder (safetensors only) and its family.

    A CLIP vision tower saved with its projection is loaded as such (AutoModel would drop the
    projection); every other family through `AutoModel`.
    """
    import transformers
    from transformers import AutoConfig, AutoModel

    config = embed._from_pretrained(AutoConfig, model, what="image encoder")
    family = _family(config, model)
    cls = AutoModel
    if family == "clip_vision_model" and "CLIPVisionModelWithProjection" in (
        config.architectures or ()
    ):
        cls = transformers.CLIPVisionModelWithProjection
    encoder = embed._from_pretrained(cls, model, what="image encoder", use_safetensors=True)
    return encoder, family


def to_uint8_rgb(images: np.ndarray) -> np.ndarray:
    """Decoded images as the uint8 RGB pixels they were read as, channels last.

    `scoring.data.decode` gives float32 in [0, 1] (value / 255), so ×255 and rounding gives
    the decoded bytes back exactly; uint8 input is taken as is. Grayscale is repeated to RGB.

    Parameters
    ----------
    images : ndarray of shape (n_examples, channels, height, width), channels 1 or 3

    Returns
    -------
    ndarray of shape (n_examples, height, width, 3), uint8
    """
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # (N, H, W, 3)


# Images per forward pass. On CPU small batches are the faster ones (EfficientNet-Lite0 at
# 224 px, 2 cores: 30 images/s at 8, 24 at 16, 16 at 64; `python bench/image_batch.py`),
# and they let the progress count move every second or so instead of every 20 s.
CPU_BATCH = 8
GPU_BATCH = 64


@torch.inference_mode()
def embed_images(
    images: np.ndarray,
    *,
    model: str | None,
    batch_size: int | None = None,
    device: torch.device = torch.device("cpu"),
    on_batch: Callable[[int], None] | None = None,
    loaded: tuple | None = None,
) -> np.ndarray:
    """Pooled image embeddings, float32, unit norm.

    Parameters
    ----------
    images : ndarray of shape (n_examples, channels, height, width)
        As `scoring.data.decode` returns them (float32 in [0, 1], or uint8).
    model : str or None
        None or ``efficientnet-lite0`` (the bundled encoder), a local folder or a Hugging
        Face model name.
    batch_size : int, optional
        Images per forward pass; default CPU_BATCH on a CPU, GPU_BATCH on an accelerator.
    loaded : (to_pixels, encoder, family), optional
        Already loaded (`load_image_model`), to embed several splits with one load.

    Returns
    -------
    ndarray of shape (n_examples, embedding_dim), float32
    """
    to_pixels, encoder, family = loaded or load_image_model(model)
    if batch_size is None:
        batch_size = CPU_BATCH if device.type == "cpu" else GPU_BATCH
    encoder.to(device).eval()
    pool = efficientnet.pool if family == efficientnet.FAMILY else POOLINGS[family]
    out: np.ndarray | None = None
    for start in range(0, len(images), batch_size):
        batch = to_uint8_rgb(images[start : start + batch_size])  # (B, H, W, 3)
        pixels = to_pixels(batch).to(device)  # (B, 3, H', W')
        pooled = torch.nn.functional.normalize(pool(encoder, pixels).float(), dim=1)  # (B, D)
        if out is None:
            out = np.empty((len(images), pooled.shape[1]), dtype=np.float32)
        out[start : start + len(batch)] = pooled.cpu().numpy()
        if on_batch is not None:
            on_batch(len(batch))
    if out is None:  # no rows: the width still comes from the encoder
        out = np.empty((0, embedding_width(encoder, family)), dtype=np.float32)
    return out


# A Ray task's share of the images: about this many bytes of pixels, whole batches.
TASK_BYTES = 16 * 2**20


def embed_images_spread(
    images: np.ndarray,
    *,
    model: str | None,
    executor: Any,
    device: torch.device = torch.device("cpu"),
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """`embed_images` as tasks through `executor` (`--executor ray`), rows in order.

    Each task embeds a run of whole batches of the size a local run uses, loading the
    encoder once per worker process, so every batch holds the very images it holds in a
    local run and the table comes out the same, byte for byte (tested on a local Ray).

    Parameters
    ----------
    images : ndarray of shape (n_examples, channels, height, width)
    executor : scoring.training.executors.Executor

    Returns
    -------
    ndarray of shape (n_examples, embedding_dim), float32
    """
    from scoring.training.executors import map_in_order

    batch = CPU_BATCH if device.type == "cpu" else GPU_BATCH
    per_image = max(1, images[:1].nbytes)
    size = batch * max(1, TASK_BYTES // (per_image * batch))
    items = [np.ascontiguousarray(images[s : s + size]) for s in range(0, len(images), size)]
    if not items:
        return embed_images(images, model=model, batch_size=batch, device=device)
    # The device kind only: a worker numbers its own GPUs (Ray sets CUDA_VISIBLE_DEVICES).
    task = _EmbedTask(model, batch, device.type, torch.get_num_threads())
    parts = map_in_order(executor, task, items, on_batch)
    return np.concatenate(parts)


class _EmbedTask:
    """One task's images -> embeddings (picklable for Ray; the encoder loads in the task).

    The task computes on as many threads as the caller (and asks Ray for as many cores):
    a convolution's sums on CPU depend on how many threads split them (measured: 1 thread
    against 2 moved embeddings by up to 2% of a small value).
    """

    def __init__(self, model: str | None, batch_size: int, device: str, threads: int) -> None:
        self.model, self.batch_size, self.device = model, batch_size, device
        self.num_cpus = threads

    def __call__(self, images: np.ndarray, report: Any) -> np.ndarray:
        torch.set_num_threads(self.num_cpus)
        return embed_images(
            images,
            model=self.model,
            batch_size=self.batch_size,
            device=torch.device(self.device),
            on_batch=report.advance,
            loaded=_loaded(self.model),
        )


_LOADED: dict[str | None, tuple] = {}


def _loaded(model: str | None) -> tuple:
    """`load_image_model(model)`, once per process (a Ray worker runs many tasks)."""
    if model not in _LOADED:
        _LOADED[model] = load_image_model(model)
    return _LOADED[model]


def load_image_model(model: str | None) -> tuple:
    """(to_pixels, encoder, family) for `embed_images`.

    `to_pixels` maps a batch of uint8 RGB images (B, H, W, 3) to the encoder's input
    (B, 3, H', W'): the bundled encoder's own preprocessing, or a Hugging Face model's image
    processor.
    """
    if efficientnet.is_default(model):
        return efficientnet.preprocess, efficientnet.load_encoder(), efficientnet.FAMILY
    encoder, family = load_image_encoder(model)
    processor = load_image_processor(model)

    def to_pixels(batch: np.ndarray) -> torch.Tensor:
        return processor(
            images=list(batch), return_tensors="pt", input_data_format="channels_last"
        )["pixel_values"]

    return to_pixels, encoder, family


def embedding_width(encoder: torch.nn.Module, family: str) -> int:
    """D of an empty split, from the config (rarely needed: a split with no rows)."""
    if family == efficientnet.FAMILY:
        return efficientnet.WIDTH
    cfg = encoder.config
    projected = hasattr(encoder, "get_image_features") or hasattr(encoder, "visual_projection")
    if family in ("clip", "clip_vision_model") and projected:
        return cfg.projection_dim
    if family == "dinov2":
        return 2 * cfg.hidden_size
    if hasattr(cfg, "hidden_sizes"):
        return cfg.hidden_sizes[-1]
    return cfg.hidden_size
