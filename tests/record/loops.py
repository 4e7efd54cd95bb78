"""The plain PyTorch loops the recording tests train: digits with labels the test flips."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits


@dataclass
class Digits:
    """scikit-learn's digits as the tests train on them; `flipped` marks corrupted labels."""

    x: torch.Tensor  # (N, 64) float32 in [0, 1]
    ids: np.ndarray  # (N,) the ids the Recorder is given
    labels: np.ndarray  # (N,) trained on: the true ones, a `flip_fraction` changed
    true_labels: np.ndarray  # (N,)
    flipped: np.ndarray  # (N,) bool
    x_test: torch.Tensor  # (M, 64)
    test_labels: np.ndarray  # (M,)


def digits(flip_fraction: float = 0.1, seed: int = 0, n_test: int = 297) -> Digits:
    """The first 1,500 digits to train on (ids 0..1499), the rest held out; a seeded
    `flip_fraction` of the training labels changed to another class."""
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # (1797, 64)
    y = bunch.target.astype(np.int64)
    n = x.shape[0] - n_test
    rng = np.random.default_rng(seed)
    flipped = rng.random(n) < flip_fraction
    labels = y[:n].copy()
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, int(flipped.sum()))) % 10
    return Digits(
        torch.from_numpy(x[:n]),
        np.arange(n),
        labels,
        y[:n],
        flipped,
        torch.from_numpy(x[n:]),
        y[n:],
    )


def mlp(seed: int, width: int = 128) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, 10)
    )


def train(
    rec: Any,
    d: Digits,
    *,
    runs: int = 2,
    epochs: int = 20,
    batch_size: int = 64,
    eval_after: tuple[int, ...] = (2,),
    features: bool = True,
    ids: np.ndarray | None = None,
) -> None:
    """R seeded runs of a plain loop, logging every step to `rec` (a Recorder, or anything
    with its methods); an eval pass after the epochs in `eval_after`; test logits and
    penultimate features at the end of each run. `ids` maps row i to the id logged."""
    ids = d.ids if ids is None else ids
    y = torch.from_numpy(d.labels)
    n = y.shape[0]
    for r in range(runs):
        model = mlp(r)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(r)
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size]
                logits = model(d.x[rows])  # (B, K)
                loss = torch.nn.functional.cross_entropy(logits, y[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(ids[rows.numpy()], logits)
            rec.end_epoch()
            if epoch in eval_after:
                with torch.no_grad():
                    rec.log_eval(ids, model(d.x))
        with torch.no_grad():
            extra = {"features": model[:2](d.x)} if features else {}
            rec.end_run(test_logits=model(d.x_test), test_labels=d.test_labels, **extra)


class Tape:
    """Forwards every call to a Recorder and keeps a copy of what it was given (round trips)."""

    def __init__(self, rec: Any) -> None:
        self.rec = rec
        self.epochs: list[list[tuple[np.ndarray, np.ndarray]]] = []
        self.evals: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.runs: list[dict[str, Any]] = []
        self._epoch_steps: list[tuple[np.ndarray, np.ndarray]] = []

    def log(self, ids, logits) -> None:
        self._epoch_steps.append((np.asarray(ids), logits.detach().numpy().copy()))
        self.rec.log(ids, logits)

    def end_epoch(self) -> None:
        self.epochs.append(self._epoch_steps)
        self._epoch_steps = []
        self.rec.end_epoch()

    def log_eval(self, ids, logits) -> None:
        self.evals[(len(self.runs), len(self.epochs))] = (np.asarray(ids), logits.numpy().copy())
        self.rec.log_eval(ids, logits)

    def end_run(self, **kw) -> None:
        self.runs.append(
            {
                "epochs": self.epochs,
                **{k: v.numpy().copy() if hasattr(v, "numpy") else v for k, v in kw.items()},
            }
        )
        self.epochs = []
        self.rec.end_run(**kw)

    def finish(self):
        return self.rec.finish()
