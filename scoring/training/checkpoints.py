"""Weights taken during training, and how they are kept in the cache.

`Snapshots` copies a model's state at chosen optimizer steps (step 0 = the initialization)
and keeps every step's learning rate, from which TracIn's η_k is taken.
Snapshots are stored as one safetensors file per run: plain tensors, no pickled objects,
so loading a cache never runs code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from scoring import store


class Snapshots:
    """Copies of a model's weights at given optimizer steps, and every step's learning rate.

    Parameters
    ----------
    model : nn.Module
        The model being trained (read, never changed).
    steps : iterable of int
        Optimizer steps to copy the weights after (0 = the initialization, before training).

    Attributes
    ----------
    states : dict of int to state dict
        Step -> CPU copies of every parameter and buffer.
    lrs : list of float
        The learning rate step s used, at index s - 1.
    """

    def __init__(self, model: nn.Module, steps) -> None:
        self.model, self.steps = model, frozenset(steps)
        self.states: dict[int, dict[str, torch.Tensor]] = {}
        self.lrs: list[float] = []
        if 0 in self.steps:
            self._take(0)

    def __call__(self, step: int, lr: float) -> None:
        """Called after optimizer step `step` (1-based) with the learning rate it used."""
        self.lrs.append(lr)
        if step in self.steps:
            self._take(step)

    def mean_lr(self, after: int, upto: int) -> float:
        """Mean learning rate of steps after+1 .. upto: η of the checkpoint at `upto`."""
        window = self.lrs[after:upto]
        return float(sum(window) / len(window)) if window else 0.0

    def _take(self, step: int) -> None:
        self.states[step] = {
            k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
        }


def save_states(path: Path, states: dict[str, dict[str, torch.Tensor]]) -> None:
    """Write named state dicts to one safetensors file, atomically (keys `name/param`)."""
    flat = {f"{name}/{k}": v.contiguous() for name, sd in states.items() for k, v in sd.items()}
    store.atomic_write_bytes(Path(path), st_save(flat))


def load_states(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Read what `save_states` wrote: snapshot name -> state dict."""
    flat = st_load(Path(path).read_bytes())
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        name, param = key.split("/", 1)
        states.setdefault(name, {})[param] = value
    return states
