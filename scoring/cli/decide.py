"""`winnow decide`: record keep / drop / relabel decisions, one by one, from a CSV, or by
accepting the suggestions where the models are confident enough (`--accept-suggestions`).

The last two are bulk actions: their lines carry a bulk id, printed with the command that
undoes them (`--undo-bulk ID`, in any later session); `--list-bulk` lists them."""

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
    d.add_argument(
        "--accept-suggestions",
        action="store_true",
        help="relabel every undecided flagged suspect to its out-of-sample suggestion at the "
        "lowest confidence threshold whose estimated precision (the models' held-out accuracy "
        "at that confidence) is at least --min-precision; refuses when none is",
    )
    d.add_argument(
        "--min-precision",
        type=float,
        default=None,
        metavar="P",
        help="with --accept-suggestions: the estimated precision to reach, in (0.5, 1] "
        "(default 0.9)",
    )
    d.add_argument(
        "--list-bulk",
        action="store_true",
        help="list the run's bulk actions (--from, --accept-suggestions, the app's bulk "
        "accept): id, time, kind, decisions, how many are still in force, undone",
    )
    d.add_argument(
        "--undo-bulk",
        metavar="ID",
        help="undo a bulk action (its id from --list-bulk): every example it decided that "
        "was not decided again since gets back the decision it had before (none, mostly)",
    )


def run(args: argparse.Namespace) -> int:
    """Append the decision(s) to the run's decisions file; say so on stderr."""
    from scoring.read import decisions

    actions = {"drop": args.drop, "keep": args.keep, "clear": args.clear}
    chosen = [a for a, on in actions.items() if on] + (["relabel"] if args.relabel else [])
    if args.list_bulk or args.undo_bulk is not None:
        flag = "--list-bulk" if args.list_bulk else "--undo-bulk ID"
        others = {
            "--id": args.id is not None,
            "the action flags": bool(chosen),
            "--from": args.from_file is not None,
            "--accept-suggestions": args.accept_suggestions,
            "--min-precision": args.min_precision is not None,
            "--undo-bulk": args.list_bulk and args.undo_bulk is not None,
        }
        extra = [name for name, on in others.items() if on]
        if extra:
            raise InputError(f"{flag} goes alone: drop {', '.join(extra)}")
        if args.list_bulk:
            return _list_bulk(Path(args.run))
        return _undo_bulk(Path(args.run), args.undo_bulk)
    if args.accept_suggestions:
        if args.id is not None or chosen or args.from_file is not None:
            raise InputError(
                "--accept-suggestions picks the examples: drop --id, --from and the actions"
            )
        return _accept_suggestions(Path(args.run), args.min_precision)
    if args.min_precision is not None:
        raise InputError("--min-precision only goes with --accept-suggestions")
    if args.from_file is not None:
        if args.id is not None or chosen:
            raise InputError("--from FILE gives every decision: drop --id and the action flags")
        records = decisions.read_bulk(Path(args.run), args.from_file)
        bulk = decisions.append_bulk(Path(args.run), records, "csv")
        print(
            f"{len(records)} decision(s) recorded in {decisions.path_of(args.run)}",
            file=sys.stderr,
        )
        _say_undo(Path(args.run), bulk)
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


def _accept_suggestions(run: Path, min_precision: float | None) -> int:
    """Relabel the undecided flagged suspects at the safe threshold; say what was done."""
    from scoring.read import decisions, suspects
    from scoring.read.views import load_run
    from scoring.store import RunDir

    if not RunDir(run).config_file.exists():
        raise InputError(f"{run} is not a finished Winnow run; decisions need its scores")
    view = load_run(run)
    wanted = suspects.MIN_PRECISION if min_precision is None else min_precision
    t = suspects.safe_threshold(view, wanted)
    if t is None:
        raise InputError(
            f"no confidence threshold is safe: the models reach {wanted:.0%} held-out accuracy "
            f"on at least {suspects.MIN_HELDOUT_ROWS} held-out rows at none; nothing was written"
        )
    precision, n_held = suspects.relabel_precision(view, t)
    chosen = suspects.relabel_candidates(view, t, decisions.latest(run)["id"])
    rows = [
        (int(i), "relabel", int(s)) for i, s in zip(chosen["id"], chosen["new_label"], strict=True)
    ]
    bulk = decisions.append_bulk(run, decisions.checked(run, rows), "accept-suggestions")
    n = len(rows)
    breaks = n * (1 - (precision or 0.0))
    print(
        f"{n} example(s) relabelled to their suggestion at p(suggested) >= {t:.2f}: estimated "
        f"precision {precision:.1%} (held-out accuracy on {n_held} rows at that confidence), "
        f"about {breaks:.1f} correct label(s) broken; in {decisions.path_of(run)}",
        file=sys.stderr,
    )
    _say_undo(run, bulk)
    return 0


def _say_undo(run: Path, bulk: str | None) -> None:
    """The bulk id just written and the command that undoes it (nothing when none was)."""
    if bulk is not None:
        print(
            f"bulk action {bulk}; undo with: winnow decide --run {run} --undo-bulk {bulk}",
            file=sys.stderr,
        )


def _list_bulk(run: Path) -> int:
    """Print the run's bulk actions, oldest first, as a table on stdout."""
    from scoring.read import decisions
    from scoring.store import RunDir

    if not RunDir(run).config_file.exists():
        raise InputError(f"{run} is not a finished Winnow run; decisions need its scores")
    table = decisions.bulk_actions(run)
    if table.empty:
        print(f"no bulk actions in {decisions.path_of(run)}", file=sys.stderr)
        return 0
    # Who answered, for a labelling tool's answers: named in the table only when any did.
    tools = table["annotators"].map(len) > 0
    table["annotators"] = table["annotators"].map(
        lambda a: ", ".join(a[:3]) + (" ..." if len(a) > 3 else "")
    )
    shown = table.rename(columns={"bulk": "id", "in_force": "in force"})
    print(
        shown.to_string(index=False)
        if tools.any()
        else shown.drop(columns="annotators").to_string(index=False)
    )
    return 0


def _undo_bulk(run: Path, bulk: str) -> int:
    """Undo one bulk action; say how many examples went back and how many were left alone."""
    from scoring.read import decisions

    n = decisions.undo_bulk(run, bulk)  # checks the run and the id
    wrote = int(decisions.bulk_actions(run).set_index("bulk").loc[bulk, "decisions"])
    others = " (the others were decided again since, or undone already)" if n < wrote else ""
    print(
        f"bulk action {bulk} undone: {n} of its {wrote} decision(s) withdrawn, those examples "
        f"back to their decision before it{others}; in {decisions.path_of(run)}",
        file=sys.stderr,
    )
    return 0
