"""`winnow export`: write a run's data, the cleaned dataset (`--rule all`) or a selected subset.

As one file or `hf` folder (`--format`, `--out`), as a Hugging Face Hub folder with its
dataset card (`--hub-dir`, `scoring.prune.hub`), or both; `--push-to-hub REPO` then uploads
the Hub folder.
"""

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
    # Not required by argparse: --hub-dir alone is a whole export too (`_outputs` checks).
    e.add_argument(
        "--format", help="parquet | csv | jsonl | hf (save_to_disk); with --out, unless --hub-dir"
    )
    e.add_argument("--out", help="file to write (a folder for hf); with --format")
    e.add_argument(
        "--hub-dir",
        help="also or instead: a folder laid out for the Hugging Face Hub (data/*.parquet "
        "shards, README.md dataset card with a Data quality section, winnow_manifest.json); "
        "its parent folder must exist",
    )
    e.add_argument(
        "--push-to-hub",
        metavar="REPO",
        help="with --hub-dir: upload the folder to the Hub dataset repo NAME or OWNER/NAME "
        "(created if missing: public unless --private or your account's default says "
        "otherwise; needs `hf auth login` or HF_TOKEN)",
    )
    e.add_argument(
        "--private", action="store_true", help="with --push-to-hub: create the repo private"
    )
    e.add_argument("--force", action="store_true", help="overwrite an existing export")
    e.add_argument(
        "--consensus-label",
        action="store_true",
        help="a run with several annotators: write CROWDLAB's consensus label as the label "
        "(relabel decisions still win; the given label goes to original_label)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the export(s); summaries go to stderr and the paths written to stdout, last."""
    from scoring.prune.export import export_selection

    _check_outputs(args)  # before any work: a typo in a flag or a repo id costs nothing
    report(args.job_file, run=str(Path(args.run)))
    seed = check_seed(args.seed, "--seed")
    fraction, apply = _fraction_and_decisions(args)
    selection = selection_from_args(args, fraction=fraction, seed=seed)
    written = []
    if args.format is not None:
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

        written.append((out, manifest_path(out, args.format)))
    if args.hub_dir is not None:
        from scoring.prune.hub import MANIFEST_NAME, write_hub_dir

        folder = write_hub_dir(
            Path(args.run),
            selection,
            out_dir=Path(args.hub_dir),
            apply_decisions=apply,
            force=args.force,
            consensus_label=args.consensus_label,
        )
        written.append((folder, folder / MANIFEST_NAME))
    for out, manifest_file in written:
        _summary(args, out, manifest_file)
    if args.push_to_hub is not None:
        from scoring.prune.hub import push_to_hub

        url = push_to_hub(written[-1][0], args.push_to_hub, private=args.private)
        print(f"uploaded {written[-1][0]} -> {url}", file=sys.stderr)
    for out, _ in written:
        print(out)
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse a missing or half output (`--format`/`--out`, `--hub-dir`), a repo id that is
    not one and an occupied hub folder, before anything is computed."""
    if (args.format is None) != (args.out is None):
        given, missing = ("--format", "--out") if args.out is None else ("--out", "--format")
        raise InputError(f"{given} needs {missing}: give both, e.g. --format parquet --out FILE")
    if args.push_to_hub is not None:
        if args.hub_dir is None:
            raise InputError(
                "--push-to-hub uploads the --hub-dir folder: add --hub-dir DIR (it is written "
                "first, then uploaded)"
            )
        from scoring.prune.hub import check_repo_id

        check_repo_id(args.push_to_hub)
    elif args.private:
        raise InputError("--private goes with --push-to-hub REPO (the repo it creates)")
    if args.format is None and args.hub_dir is None:
        raise InputError(
            "nothing to write: give --format and --out (e.g. --format parquet --out "
            "clean.parquet), or --hub-dir DIR for a Hugging Face Hub folder, or both"
        )
    if args.hub_dir is not None:
        from scoring.prune.hub import check_hub_dir

        check_hub_dir(args.hub_dir, force=args.force)


def _summary(args: argparse.Namespace, out: Path, manifest_file: Path) -> None:
    """One export's warning and summary line on stderr (and the app's job file)."""
    from scoring.store import read_json

    manifest = read_json(manifest_file)
    if manifest["empty_classes"]:
        print(
            f"warning: no examples kept of class(es) {manifest['empty_classes']}",
            file=sys.stderr,
        )
    report(args.job_file, exit_code=0, message=f"exported {manifest['rows']} examples")
    held, done = _held_out(manifest), _done(manifest)
    print(f"{manifest['rows']} examples{held} -> {out}{done}", file=sys.stderr)


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
