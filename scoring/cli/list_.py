"""`winnow list`: the cached runs, one line each, newest first.

Named `list_` because `list` is a builtin.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.cli.common import add_cache_dir_arg, cache_dir

if TYPE_CHECKING:
    from scoring.store import RunInfo

COLUMNS = (
    "created",
    "name",
    "state",
    "dataset",
    "recipe",
    "runs×epochs",
    "preset",
    "noise",
    "n_train",
    "test_acc",
    "path",
)


def add_parser(sub: Any) -> None:
    """Add `list` and its flags to `sub` (the subparsers of `winnow`)."""
    ls = sub.add_parser("list", help="list cached runs (name, dataset, recipe, preset, noise)")
    add_cache_dir_arg(ls)


def run(args: argparse.Namespace) -> int:
    """Print the runs as aligned columns on stdout; a damaged run gets its problem below it."""
    from scoring.store import list_runs

    folder = cache_dir(args)
    runs = list_runs(folder)
    if not runs:
        print(_no_runs(folder), file=sys.stderr)
        return 0
    rows = [COLUMNS] + [tuple(_printable(v) for v in _row(r)) for r in runs]
    # The path is last and left ragged: padding it would only add trailing spaces.
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    for i, row in enumerate(rows):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1])
        info = runs[i - 1] if i else None
        if info is not None and info.problems:  # a damaged run: which file, why, what to do
            print(_printable(f"    {info.problem}; {info.fix}"))
    return 0


def _printable(text: str) -> str:
    """A cell as one terminal-safe line: control characters (an ANSI escape, a newline, a
    tab) in a name or a path are shown escaped, never sent to the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _no_runs(folder: Path) -> str:
    """Where `list` looked, absolute, and how to look elsewhere.

    The default cache is `./cache` of the working directory: run from another folder, a bare
    "no runs in cache" reads as "you have no runs" when the runs are just elsewhere.
    """
    where = folder.resolve()
    missing = "" if where.is_dir() else " (no such folder)"
    return (
        f"no runs in {where}{missing}; to look elsewhere pass --cache-dir DIR "
        "or set WINNOW_CACHE_DIR=DIR"
    )


def _row(r: RunInfo) -> tuple[str, ...]:
    """One run's cells, in `COLUMNS` order."""
    when = r.created if r.created is not None else r.updated
    budget = f"{r.runs}×{r.epochs}" if r.runs and r.epochs else ""
    old = "" if r.version_ok or r.problems else " (older version)"
    return (
        datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M"),
        r.name or "",
        r.state + old,
        r.dataset,
        r.recipe or "",
        budget,
        r.preset or "",
        f"{r.noise:.0%}" + (f" {r.noise_kind}" if r.noise_kind else "") if r.noise else "",
        str(r.n_train) if r.n_train is not None else "",
        f"{r.test_accuracy:.3f}" if r.test_accuracy is not None else "",
        str(r.path),
    )
