"""Progress of a job: a tqdm bar on stderr plus the folder's `status.json`, which pages poll.

Without a terminal (a job's log, a pipe, CI) a carriage-return bar would pile up into one
giant line, so a plain line is printed instead, at most every LINE_EVERY_S seconds. The time
left (on the bar, in the lines and as `seconds_left` in status.json) comes from a smoothed
rate: units per second measured over windows of at least RATE_WINDOW_S seconds and averaged
exponentially, so one slow gradient pass or one fast epoch does not swing the estimate.
"""

from __future__ import annotations

import sys
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
        smoothed = getattr(self, "smoothed", None)  # Progress's RateEstimate, once measured
        if smoothed is not None and smoothed.rate:
            rate = smoothed.rate
        if rate is None and elapsed and n > d.get("initial", 0):
            rate = (n - d.get("initial", 0)) / elapsed
        left = ""
        if rate and total:
            left = "<" + self.format_interval(max(total - n, 0.0) / rate)
        return {**d, "left": left}


LINE_EVERY_S = 5.0  # plain progress lines without a terminal
# A counted stage (texts or images embedded) writes its count at most this often: a page
# polling every second sees it move without a status write per batch.
COUNT_EVERY_S = 1.0
RATE_WINDOW_S = 2.0  # shortest window a rate is measured over
RATE_SMOOTHING = 0.3  # weight of the newest window in the exponential average


class RateEstimate:
    """Work per second, smoothed: an exponential average of rates over windows >= 2 s.

    Gradient passes and training epochs both count as one unit but can differ several-fold
    in time; measuring over windows and averaging keeps the time left steady across them.
    """

    def __init__(self, now: float) -> None:
        self.rate: float | None = None  # units per second
        self._t0, self._n0 = now, 0.0

    def update(self, done: float, now: float) -> None:
        """Record that `done` units (this process's own, cumulative) are done at `now`."""
        dt = now - self._t0
        if dt < RATE_WINDOW_S or done <= self._n0:
            return
        window = (done - self._n0) / dt
        self.rate = (
            window
            if self.rate is None
            else (RATE_SMOOTHING * window + (1 - RATE_SMOOTHING) * self.rate)
        )
        self._t0, self._n0 = now, done

    def seconds_left(self, left: float) -> float | None:
        """Seconds for `left` more units at the smoothed rate; None until measured."""
        return max(left, 0.0) / self.rate if self.rate else None


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
        Show progress on stderr (the status file is written either way).
    tty : bool, optional
        Whether stderr is a terminal (default: ask it). Without one, plain lines at most every
        LINE_EVERY_S seconds replace the bar.
    """

    def __init__(self, path: Path, total: float, enabled: bool, tty: bool | None = None) -> None:
        self.path, self.total, self.done, self.enabled = path, total, 0.0, enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.bar = None
        self._last = 0.0
        self._last_line = time.monotonic()
        self.message = ""
        self._start_done = 0.0  # work read back from disk: not evidence of speed
        self.rate = RateEstimate(time.monotonic())

    @property
    def seconds_left(self) -> float | None:
        """The smoothed estimate of the time left; None until measured."""
        return self.rate.seconds_left(self.total - self.done)

    def stage(self, message: str) -> None:
        self.message = message
        if self.bar is None:
            self._start_done = self.done
            self.rate = RateEstimate(time.monotonic())
            self.bar = _EpochBar(
                total=self.total,
                disable=not (self.enabled and self.tty),
                unit="epoch",
                dynamic_ncols=True,
                bar_format=_BAR,
                # Work read back from disk (a resumed run) is the start, not speed: the time
                # left comes from what this process computes.
                initial=min(self.done, self.total),
            )
        self.bar.smoothed = self.rate
        self.bar.set_description(message)
        self._write(force=True)

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount
        now = time.monotonic()
        if self.bar is not None:
            self.rate.update(self.done - self._start_done, now)
            # Fractional steps add up to a hair over the total in floating point: clamp, so
            # the bar neither warns nor overshoots.
            self.bar.update(max(min(amount, self.total - self.bar.n), 0.0))
        if self.enabled and not self.tty and now - self._last_line >= LINE_EVERY_S:
            self._last_line = now
            print(self.line(), file=sys.stderr, flush=True)
        self._write()

    def line(self) -> str:
        """One plain progress line: stage, share done, epochs, time left when known."""
        left = self.seconds_left
        when = f", about {_clock(left)} left" if left is not None else ""
        done = min(self.done, self.total)
        return f"{self.message}: {self.fraction:.0%} ({done:.1f}/{self.total:.0f} epochs{when})"

    def counter(self, message: str, total: int, unit: str) -> tuple[tqdm, Callable[[int], None]]:
        """A side bar for a stage measured in its own units (e.g. sentences embedded).

        The stage is written at once as "<message>: loading the model" (a counter is made
        just before its encoder loads, which takes seconds before the first batch); then
        each `tick(n)` (n more units done) writes "<message>: i/total <unit>s", at most every
        COUNT_EVERY_S seconds and always at the end.
        """
        bar = tqdm(
            total=total, disable=not self.enabled, unit=unit, desc=message, dynamic_ncols=True
        )
        self.message = f"{message}: loading the model"
        self._write(force=True)
        done = 0  # counted here: a disabled bar (a job's --quiet) does not count at all

        def tick(n: int) -> None:
            nonlocal done
            done += n
            bar.update(n)
            self.message = f"{message}: {done}/{total} {unit}s"
            self._write(force=done >= total, every=COUNT_EVERY_S)

        return bar, tick

    @property
    def fraction(self) -> float:
        """Share of the work done, in [0, 1]."""
        return self.done / max(self.total, 1e-9)

    def _write(self, force: bool = False, every: float = 0.5) -> None:
        now = time.monotonic()
        if force or now - self._last >= every:
            self._last = now
            left = self.seconds_left
            store.write_status(
                self.path,
                "running",
                progress=min(self.fraction, 0.999),
                message=self.message,
                seconds_left=None if left is None else round(left, 1),
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    """12:05 (minutes:seconds), or 1:02:05 past an hour."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"
