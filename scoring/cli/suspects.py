"""`winnow suspects`: a finished run's likely label errors, most suspect first."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.cli.common import add_run_arg
from scoring.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from scoring.read.views import RunView

FORMATS = ("table", "csv", "jsonl")
INPUT_CHARS = 60  # a text cell in the table: enough to judge most labels, narrow enough to read


def add_parser(sub: Any) -> None:
    """Add `suspects` and its flags to `sub` (the subparsers of `winnow`)."""
    q = sub.add_parser("suspects", help="a finished run's likely label errors, most suspect first")
    add_run_arg(q)
    q.add_argument(
        "--detector",
        help=(
            "score ranking the training rows (default: consensus, else the first of "
            "cl_quality, aum, el2n the run holds)"
        ),
    )
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
        shown = _with_inputs(view, frame)
        for col in ("given_prob", "suggested_prob", "score"):
            shown[col] = shown[col].map(lambda v: f"{v:.3f}")
        print(shown.to_string(index=False) if len(shown) else "no examples", file=sys.stdout)
    return 0


def _short(text: object) -> str:
    """One table cell of an input: whitespace runs as one space, at most INPUT_CHARS long."""
    if not isinstance(text, str):
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= INPUT_CHARS else flat[: INPUT_CHARS - 1] + "…"


def _with_inputs(view: RunView, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with what each row shows the reader, after `id`: its text column(s),
    truncated, or `image`.

    A suspect is judged by reading its input; the table is the only format read by a person
    in a terminal, so only it gets the columns (csv/jsonl keep theirs: the id joins them back
    to the data). A run stores no source path for its images, only their pixels, so an image
    row says `image` (the app's Mislabeled page shows it). A text run without stored texts
    (recorded or imported) gets no column.
    """
    import pandas as pd

    from scoring.read.suspects import load_texts

    shown = frame.copy()
    if view.modality == "image":
        inputs = pd.DataFrame({"input": ["image"] * len(shown)}, index=shown.index)
    else:
        texts = load_texts(view, shown["id"].to_numpy())
        if texts is None:
            return shown
        inputs = texts.drop(columns="id").map(_short).set_index(shown.index)
        inputs.columns = [c if c not in shown.columns else f"input_{c}" for c in inputs.columns]
    at = shown.columns.get_loc("id") + 1
    return pd.concat([shown.iloc[:, :at], inputs, shown.iloc[:, at:]], axis=1)
