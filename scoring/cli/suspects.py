"""`winnow suspects`: a finished run's likely label errors, most suspect first."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoring.cli.common import add_run_arg
from scoring.errors import InputError

FORMATS = ("table", "csv", "jsonl")


def add_parser(sub: Any) -> None:
    """Add `suspects` and its flags to `sub` (the subparsers of `winnow`)."""
    q = sub.add_parser("suspects", help="a finished run's likely label errors, most suspect first")
    add_run_arg(q)
    q.add_argument("--detector", help="score ranking the training rows (default: the run's best)")
    q.add_argument("--top", type=int, help="show the first K (default: all)")
    q.add_argument(
        "--split",
        default="all",
        help="all (default) | train | heldout (held-out rows carved from the same source)",
    )
    q.add_argument("--format", default="table", help="table (default) | csv | jsonl")


def run(args: argparse.Namespace) -> int:
    """Print the suspects on stdout as a table, CSV or JSON lines."""
    if args.format not in FORMATS:
        raise InputError(f"--format must be table, csv or jsonl, got {args.format!r}")
    if args.top is not None and args.top < 1:
        raise InputError(f"--top must be a positive integer, got {args.top}")
    from scoring.read.suspects import suspects
    from scoring.read.views import load_run

    view = load_run(Path(args.run))
    frame = suspects(view, detector=args.detector, split=args.split, top=args.top)
    columns = ["id", "split", "label", "suggested_label", "given_prob", "suggested_prob"]
    columns += ["score", "detector", "flagged", "why"]
    frame = frame[columns + [c for c in ("noisy", "true") if c in frame.columns]]
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif args.format == "jsonl":
        text = frame.to_json(orient="records", lines=True)  # pandas may or may not end a line
        sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    else:
        shown = frame.copy()
        for col in ("given_prob", "suggested_prob", "score"):
            shown[col] = shown[col].map(lambda v: f"{v:.3f}")
        print(shown.to_string(index=False) if len(shown) else "no examples", file=sys.stdout)
    return 0
