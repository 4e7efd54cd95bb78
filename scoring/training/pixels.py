"""Images held as uint8 and converted to float32 a batch at a time, on the device.

Decoded images are uint8 (`scoring.data.decode`); the models take float32 value / divisor
(255 for image files, 16 for digits). Held whole as float32, CIFAR-10's 60,000 images take
737 MB instead of 184 MB, so the tensors that training, cross-fitting, the gradient scores
and retraining index stay uint8 (`Pixels`), and each batch becomes float32 where it moves to
the device (`to_device`): a quarter of the bytes to index, copy and send.

The conversion gives the very float32 numbers the models used to get. IEEE division is
correctly rounded, but a device may divide by a scalar as a multiplication by its
reciprocal, which can be one bit off (PyTorch's CUDA kernel does); so the division is
checked once per device and divisor on all 256 byte values against numpy's, and a lookup in
that 256-entry table of numpy's quotients is used wherever it is not exact.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from scoring.data.decode import to_float
from scoring.training.text_models import trim_padding


@dataclass(frozen=True)
class Pixels:
    """uint8 images and the divisor that gives the models' float32 input.

    Indexes like a tensor (`x[idx]` is `Pixels` again), so the code that batches model
    inputs takes it as it takes a float or token tensor; `to_device` converts a batch.

    Attributes
    ----------
    data : tensor of shape (n_examples, n_channels, height, width), uint8
    divisor : int
        The models' input is data / divisor, float32.
    """

    data: torch.Tensor
    divisor: int

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def dim(self) -> int:
        return self.data.dim()

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index) -> Pixels:
        return Pixels(self.data[index], self.divisor)

    def numpy(self) -> np.ndarray:
        """The uint8 pixels (no copy)."""
        return self.data.numpy()

    def pin_memory(self) -> Pixels:
        """Page-locked, so host-to-GPU copies of batches overlap compute."""
        return Pixels(self.data.pin_memory(), self.divisor)

    def float(
        self, device: torch.device | str | None = None, *, non_blocking: bool = False
    ) -> torch.Tensor:
        """data / divisor as float32 on `device` (default: where the data is), exactly.

        Moved as uint8 first, so a GPU receives a quarter of the bytes.
        """
        data = self.data if device is None else self.data.to(device, non_blocking=non_blocking)
        if _divides_exactly(data.device, self.divisor):
            return data.float().div_(self.divisor)
        return _table(data.device, self.divisor)[data.long()]


# What the models' batching code takes: uint8 images, or a float / token tensor as is.
Inputs = torch.Tensor | Pixels


def to_inputs(array: np.ndarray, pixel_divisor: int | None) -> Inputs:
    """A split's inputs for the models: `Pixels` for uint8 images, else a tensor (no copy)."""
    data = torch.from_numpy(array)
    return data if pixel_divisor is None else Pixels(data, int(pixel_divisor))


def to_device(batch: Inputs, device: torch.device, *, non_blocking: bool = False) -> torch.Tensor:
    """A batch as the model takes it, on `device`: pixels as float32 (exactly value /
    divisor), token tensors cut to their longest example, anything else as it is."""
    if isinstance(batch, Pixels):
        return batch.float(device, non_blocking=non_blocking)
    return trim_padding(batch).to(device, non_blocking=non_blocking)


@functools.cache
def _table(device: torch.device, divisor: int) -> torch.Tensor:
    """(256,) float32: numpy's value / divisor for every byte, on `device`."""
    return torch.from_numpy(to_float(np.arange(256, dtype=np.uint8), divisor)).to(device)


@functools.cache
def _divides_exactly(device: torch.device, divisor: int) -> bool:
    """Whether `x.float().div_(divisor)` on `device` gives numpy's quotient for every byte."""
    values = torch.arange(256, dtype=torch.uint8, device=device)
    return bool(torch.equal(values.float().div_(divisor), _table(device, divisor)))
