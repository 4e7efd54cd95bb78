"""What a run's models consumed (`ModelInputs`), kept compactly and exactly in `inputs.npz`.

Images are kept as uint8 pixels plus the divisor that gives back the float32 inputs bit for
bit (float32 as is when no divisor does), tokens as int32, embeddings by the key of the
dataset's embeddings file. `RunDir.write_inputs` and `RunDir.read_inputs` own the file; this
module owns the encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INPUT_KINDS = ("images", "tokens", "embeddings")
# Pixel scales of the sources: 8-bit image files (/255) and scikit-learn's digits (0..16).
_PIXEL_DIVISORS = (255, 16)
_CHUNK = 4096  # rows per block when checking an encoding, so memory stays flat in N


@dataclass(frozen=True)
class ModelInputs:
    """The tensors a run's models consumed, as arrays, exactly (bit for bit).

    Attributes
    ----------
    kind : "images" | "tokens" | "embeddings"
    train : ndarray of shape (n_examples, ...)
        images: (N, C, H, W) float32 in [0, 1], or uint8 with `divisor`; tokens: (N, 3, L)
        int64 (ids, attention mask, token types); embeddings: (N, D) float32.
    test : ndarray of shape (n_test, ...), like `train`
    divisor : int or None
        uint8 images: the models' float32 input is pixels / divisor (as runs hold them).
    """

    kind: str
    train: np.ndarray
    test: np.ndarray
    divisor: int | None = None


def encode_inputs(
    inputs: ModelInputs, *, embedding_key: str | None = None
) -> dict[str, np.ndarray]:
    """The named arrays `inputs.npz` keeps for `inputs` (`kind` first).

    Parameters
    ----------
    inputs : ModelInputs
    embedding_key : str, optional
        Embeddings only, and required for them: the key of the dataset's embeddings file,
        which already holds the arrays (so they are not kept twice).

    Returns
    -------
    dict of str to ndarray
        ``kind``, then ``embedding_key`` for embeddings, else ``train``, ``test`` (uint8
        pixels, int32 tokens or the inputs as they were) and ``divisor`` for pixels.
    """
    if inputs.kind not in INPUT_KINDS:
        raise ValueError(f"unknown input kind {inputs.kind!r}")
    kind = np.str_(inputs.kind)
    if inputs.kind == "embeddings":
        if embedding_key is None:
            raise ValueError("embedding inputs are kept by their embedding_key")
        return {"kind": kind, "embedding_key": np.str_(embedding_key)}
    arrays: dict[str, np.ndarray] = {"train": inputs.train, "test": inputs.test}
    if inputs.kind == "tokens":
        ok = all(a.size == 0 or int(np.abs(a).max()) < 2**31 for a in arrays.values())
        if ok:
            arrays = {k: a.astype(np.int32) for k, a in arrays.items()}
    elif inputs.divisor is not None:  # uint8 already: the very bytes the models divide
        if not all(a.dtype == np.uint8 for a in arrays.values()):
            raise ValueError("images with a divisor are uint8 pixels")
        arrays["divisor"] = np.int64(inputs.divisor)
    else:
        divisor = _pixel_divisor(inputs.train, inputs.test)
        if divisor is not None:
            arrays = {k: _to_pixels(a, divisor) for k, a in arrays.items()}
            arrays["divisor"] = np.int64(divisor)
    return {"kind": kind, **arrays}


def decode_inputs(arrays: dict[str, np.ndarray], *, pixels: bool = False) -> ModelInputs:
    """The `ModelInputs` of images or tokens kept as `arrays` (what `encode_inputs` made).

    Parameters
    ----------
    arrays : dict of str to ndarray
        `inputs.npz`'s arrays, of kind "images" or "tokens" (embeddings are read from the
        dataset's file by `RunDir.read_inputs`).
    pixels : bool
        Give stored uint8 images as they are, with their `divisor`, instead of float32.

    Returns
    -------
    ModelInputs
        Tokens as int64; images as float32, bit for bit what the models consumed.
    """
    kind = str(arrays["kind"])
    if kind == "tokens":  # stored as int32 (ids < 2**31); the models take int64
        return ModelInputs(kind, arrays["train"].astype(np.int64), arrays["test"].astype(np.int64))
    if "divisor" in arrays and pixels:
        return ModelInputs(kind, arrays["train"], arrays["test"], divisor=int(arrays["divisor"]))
    if "divisor" in arrays:
        divisor = int(arrays["divisor"])
        return ModelInputs(
            kind, _from_pixels(arrays["train"], divisor), _from_pixels(arrays["test"], divisor)
        )
    return ModelInputs(kind, arrays["train"], arrays["test"])


def _to_pixels(inputs: np.ndarray, divisor: int) -> np.ndarray:
    """uint8 pixels of float inputs, block by block (no float copy of the whole array)."""
    pixels = np.empty(inputs.shape, dtype=np.uint8)
    for start in range(0, inputs.shape[0], _CHUNK):
        block = inputs[start : start + _CHUNK]
        pixels[start : start + _CHUNK] = np.rint(block * np.float32(divisor))
    return pixels


def _from_pixels(pixels: np.ndarray, divisor: int) -> np.ndarray:
    """float32 pixels / divisor: the sources' own arithmetic (`data.sources`).

    Image files divide float32 pixels by 255 in float32; digits divides in float64 and casts
    to float32, which rounds to the same value (16 is a power of two).
    """
    out = pixels.astype(np.float32)
    out /= np.float32(divisor)
    return out


def _pixel_divisor(*arrays: np.ndarray) -> int | None:
    """The divisor whose uint8 pixels give back every array bit for bit, or None."""
    for divisor in _PIXEL_DIVISORS:
        if all(_round_trips(a, divisor) for a in arrays):
            return divisor
    return None


def _round_trips(inputs: np.ndarray, divisor: int) -> bool:
    """Whether float32 `inputs` survive uint8 pixels at `divisor` bit for bit."""
    if inputs.dtype != np.float32:
        return False
    for start in range(0, inputs.shape[0], _CHUNK):
        block = inputs[start : start + _CHUNK]
        scaled = np.rint(block * np.float32(divisor))
        if scaled.size and (scaled.min() < 0 or scaled.max() > 255):
            return False
        back = _from_pixels(scaled.astype(np.uint8), divisor)
        if not np.array_equal(back.view(np.uint32), block.view(np.uint32)):
            return False
    return True
