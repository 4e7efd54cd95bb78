"""`winnow export`: write a run's data, the cleaned dataset (`--rule all`) or a selected subset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoring.cli.common import add_selection_args, report, selection_from_args
from scoring.config import check_seed
from scoring.errors import InputError


def add_parser(sub: Any) -> None:
    """Add `export` and its flags to `sub` (the subparsers of `winnow`)."""
    e = sub.add_parser(
        "export",
        help="write a run's data: the cleaned dataset (--rule all) or a selected subset",
    )
    add_selection_args(e)
    e.add_argument(
        "--no-decisions",
        action="store_true",
        help="rule all: export without the run's drops and relabels",
    )
    e.add_argument(
        "--fraction", type=float, help="share kept, in (0, 1] (required but for rule all)"
    )
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--format", required=True, help="parquet | csv | jsonl | hf (save_to_disk)")
    e.add_argument("--out", required=True, help="file to write (a folder for hf)")
    e.add_argument("--force", action="store_true", help="overwrite an existing export")
    e.add_argument(
        "--consensus-label",
        action="store_true",
        help="a run with several annotators: write CROWDLAB's consensus label as the label "
        "(relabel decisions still win; the given label goes to original_label)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the export; its summary goes to stderr and the path written to stdout, last."""
    from scoring.prune.export import export_selection

    report(args.job_file, run=str(Path(args.run)))
    seed = check_seed(args.seed, "--seed")
    fraction, apply = _fraction_and_decisions(args)
    selection = selection_from_args(args, fraction=fraction, seed=seed)
    out = export_selection(
        Path(args.run),
        selection,
        fmt=args.format,
        out=Path(args.out),
        apply_decisions=apply,
        force=args.force,
        consensus_label=args.consensus_label,
    )
    from scoring.prune.export import manifest_path
    from scoring.store import read_json

    manifest = read_json(manifest_path(out, args.format))
    if manifest["empty_classes"]:
        print(
            f"warning: no examples kept of class(es) {manifest['empty_classes']}",
            file=sys.stderr,
        )
    report(args.job_file, exit_code=0, message=f"exported {manifest['rows']} examples")
    held, done = _held_out(manifest), _done(manifest)
    print(f"{manifest['rows']} examples{held} -> {out}{done}", file=sys.stderr)
    print(out)
    return 0


def _fraction_and_decisions(args: argparse.Namespace) -> tuple[float, bool]:
    """The share kept and whether the run's decisions apply, checked against `--rule`."""
    from scoring.prune.rules import RULES

    if args.rule in RULES and RULES[args.rule].keeps_all:
        if args.fraction not in (None, 1.0):
            raise InputError(
                f"--rule {args.rule} keeps every row: drop --fraction {args.fraction:g}"
            )
        return 1.0, not args.no_decisions
    if args.fraction is None:
        raise InputError(f"--fraction is required for --rule {args.rule} (or use --rule all)")
    if args.no_decisions:
        raise InputError(
            "--no-decisions goes with --rule all; other rules apply decisions "
            "only with --apply-decisions"
        )
    return args.fraction, args.apply_decisions


def _held_out(manifest: dict[str, Any]) -> str:
    """The held-out count, in parentheses, when the export has held-out rows."""
    splits = manifest.get("splits", {})
    return f" ({splits['heldout']} held-out)" if splits.get("heldout") else ""


def _done(manifest: dict[str, Any]) -> str:
    """What was dropped or relabelled before the rule, as the summary line's tail."""
    applied = manifest["decisions"]
    done = (
        f"; decisions applied: {applied['dropped']} dropped, {applied['relabelled']} relabelled"
        if manifest["apply_decisions"]
        else ""
    )
    pre = manifest.get("pre_steps", {})
    if pre.get("drop_duplicates") or pre.get("drop_leaks"):
        done += (
            f"; {pre['duplicates_dropped']} duplicate(s) and {pre['leaks_dropped']} leaked "
            "row(s) dropped"
        )
    return done
