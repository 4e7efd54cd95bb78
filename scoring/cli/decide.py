"""`winnow decide`: record keep / drop / relabel decisions, one by one or from a CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoring.cli.common import add_run_arg
from scoring.errors import InputError


def add_parser(sub: Any) -> None:
    """Add `decide` and its flags to `sub` (the subparsers of `winnow`)."""
    d = sub.add_parser(
        "decide", help="record keep / drop / relabel decisions (the same ones the app records)"
    )
    add_run_arg(d)
    d.add_argument("--id", type=int, help="the example's id (as `suspects` prints it)")
    act = d.add_mutually_exclusive_group()
    act.add_argument("--drop", action="store_true", help="leave the example out of exports")
    act.add_argument("--keep", action="store_true", help="reviewed: the label is right")
    act.add_argument("--relabel", metavar="LABEL", help="new label, by name (or class index)")
    act.add_argument("--clear", action="store_true", help="withdraw the example's decision")
    d.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE.csv",
        help="many decisions: a CSV with columns id, action (keep|drop|relabel|clear), label; "
        "every row is checked before any is written",
    )


def run(args: argparse.Namespace) -> int:
    """Append the decision(s) to the run's decisions file; say so on stderr."""
    from scoring.read import decisions

    actions = {"drop": args.drop, "keep": args.keep, "clear": args.clear}
    chosen = [a for a, on in actions.items() if on] + (["relabel"] if args.relabel else [])
    if args.from_file is not None:
        if args.id is not None or chosen:
            raise InputError("--from FILE gives every decision: drop --id and the action flags")
        records = decisions.read_bulk(Path(args.run), args.from_file)
        n = decisions.append_many(Path(args.run), records)
        print(f"{n} decision(s) recorded in {decisions.path_of(args.run)}", file=sys.stderr)
        return 0
    if args.id is None or not chosen:
        raise InputError(
            "give --id ID and one of --drop, --keep, --relabel LABEL, --clear (or --from FILE.csv)"
        )
    new_label = _new_label(args) if args.relabel else None
    record = decisions.append(Path(args.run), args.id, chosen[0], new_label)
    print(f"id {record['id']}: {record['action']} recorded", file=sys.stderr)
    return 0


def _new_label(args: argparse.Namespace) -> int:
    """`--relabel`'s class index, by name or index among the run's label names."""
    from scoring.read import decisions
    from scoring.store import RunDir

    rd = RunDir(Path(args.run))
    if not rd.config_file.exists():
        raise InputError(f"{args.run} is not a finished Winnow run; decisions need its scores")
    return decisions.label_index(rd.read_config()["dataset"]["label_names"], args.relabel)
