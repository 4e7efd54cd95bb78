"""Buffering logged values by row between flushes: `EpochBuffer` and `PassBuffer`.

`log` copies each batch into one preallocated (N, K) float32 buffer at its rows and marks
them seen: no per-step Python objects are kept, so the cost of a step is one host copy and
memory does not grow with epochs. Which rows an id is, is `Examples.rows`' business; what a
flush becomes, `epochs`'.
"""

from __future__ import annotations

import numpy as np


def logged_rows(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows set in `mask` (n,) and their `values` (n, K); `values` itself when every row
    is set, which spares a copy of (N, K) in the common case."""
    pos = np.flatnonzero(mask)  # (n,)
    return pos, values if pos.shape[0] == mask.shape[0] else values[pos]


class EpochBuffer:
    """The training pass of the epoch in progress, and which rows the last one covered.

    Parameters
    ----------
    n : int
        N, the number of examples.
    k : int
        K, the number of classes.
    """

    def __init__(self, n: int, k: int) -> None:
        self.logits = np.empty((n, k), dtype=np.float32)  # (N, K)
        self.seen = np.zeros(n, dtype=bool)  # (N,) logged in this epoch
        self.last = np.zeros(n, dtype=bool)  # (N,) logged in the epoch just ended

    def put(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Store a batch's logits (B, K) at its rows (B,)."""
        self.logits[rows] = values
        self.seen[rows] = True

    def logged(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows (n,), their logits (n, K)) of the epoch in progress."""
        return logged_rows(self.logits, self.seen)

    def logged_last(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows (n,), their logits (n, K)) of the epoch just ended: a run's last one."""
        return logged_rows(self.logits, self.last)

    def close(self) -> None:
        """End the epoch: its rows become `last`, and the next epoch starts with none seen."""
        self.last, self.seen = self.seen, self.last  # swap: no allocation per epoch
        self.seen[:] = False


class PassBuffer:
    """A whole pass logged by row (an eval pass, out-of-fold probabilities), allocated on
    the first batch so a recording without one costs nothing.

    Parameters
    ----------
    n : int
    k : int
    zeros : bool
        Start from zeros rather than uninitialized memory (rows never logged are written
        too, as zeros).
    """

    def __init__(self, n: int, k: int, *, zeros: bool = False) -> None:
        self.shape = (n, k)
        self.zeros = zeros
        self.values: np.ndarray | None = None  # (N, K), allocated on first use
        self.seen = np.zeros(n, dtype=bool)  # (N,)

    def put(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Store a batch's values (B, K) at its rows (B,)."""
        if self.values is None:
            make = np.zeros if self.zeros else np.empty
            self.values = make(self.shape, dtype=np.float32)
        self.values[rows] = values
        self.seen[rows] = True

    def logged(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows (n,), their values (n, K)) of the pass; only after a `put`."""
        assert self.values is not None  # a pass is flushed only once logged
        return logged_rows(self.values, self.seen)

    def clear(self) -> None:
        """Forget which rows were logged (the values stay, to be overwritten)."""
        self.seen[:] = False
