"""Progress of a job: a tqdm bar on stderr plus the folder's `status.json`, which pages poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from scoring import store

# `{left}` is "<mm:ss" once the time left is known, else nothing (never "<?" or "<-00:00").
_BAR = "{desc}{percentage:3.0f}%|{bar}| {n:.1f}/{total:.0f} epochs [{elapsed}{left}]"


class _EpochBar(tqdm):
    """tqdm whose time left is shown only once known, and never below zero."""

    @property
    def format_dict(self) -> dict:
        d = super().format_dict
        n, total, elapsed = d["n"], d["total"], d["elapsed"]
        rate = d["rate"]
        if rate is None and elapsed and n > d.get("initial", 0):
            rate = (n - d.get("initial", 0)) / elapsed
        left = ""
        if rate and total:
            left = "<" + self.format_interval(max(total - n, 0.0) / rate)
        return {**d, "left": left}


class Progress:
    """A tqdm bar on stderr plus `status.json` updates (at most every half second).

    Overall progress counts training epochs (runs and cross-fit folds, or one per sweep
    trial) and passes of the gradient scores over the training set, one epoch each; a
    preparatory stage such as text embedding gets its own bar (`counter`) and reports its
    count in the status message.

    Parameters
    ----------
    path : Path
        The folder whose `status.json` this progress writes (a run or a sweep).
    total : float
        Units of work in the whole job.
    enabled : bool
        Draw the bar (the status file is written either way).
    """

    def __init__(self, path: Path, total: float, enabled: bool) -> None:
        self.path, self.total, self.done, self.enabled = path, total, 0.0, enabled
        self.bar = None
        self._last = 0.0
        self.message = ""

    def stage(self, message: str) -> None:
        self.message = message
        if self.bar is None:
            self.bar = _EpochBar(
                total=self.total,
                disable=not self.enabled,
                unit="epoch",
                dynamic_ncols=True,
                bar_format=_BAR,
                # Work read back from disk (a resumed run) is the start, not speed: the time
                # left comes from what this process computes.
                initial=min(self.done, self.total),
            )
        self.bar.set_description(message)
        self._write(force=True)

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount
        if self.bar is not None:
            # Fractional steps add up to a hair over the total in floating point: clamp, so
            # the bar neither warns nor overshoots.
            self.bar.update(max(min(amount, self.total - self.bar.n), 0.0))
        self._write()

    def counter(self, message: str, total: int, unit: str) -> tuple[tqdm, Callable[[int], None]]:
        """A side bar for a stage measured in its own units (e.g. sentences embedded)."""
        bar = tqdm(
            total=total, disable=not self.enabled, unit=unit, desc=message, dynamic_ncols=True
        )

        def tick(n: int) -> None:
            bar.update(n)
            self.message = f"{message}: {bar.n}/{total} {unit}s"
            self._write(force=bar.n >= total)

        return bar, tick

    @property
    def fraction(self) -> float:
        """Share of the work done, in [0, 1]."""
        return self.done / max(self.total, 1e-9)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last > 0.5:
            self._last = now
            store.write_status(
                self.path, "running", progress=min(self.fraction, 0.999), message=self.message
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
