"""`winnow sweep`: retrain on pruned subsets against random (cached); prints the trials file."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.cli.common import (
    add_cache_dir_arg,
    add_config_arg,
    add_executor_args,
    add_quiet_arg,
    add_selection_args,
    cancel_on_signals,
    cancelled,
    executor,
    read_config,
    report,
    required_unless_config,
    selection_from_args,
)
from scoring.errors import Cancelled, InputError

if TYPE_CHECKING:
    from scoring.prune.select import SelectionConfig
    from scoring.prune.sweeps import SweepConfig


def add_parser(sub: Any) -> None:
    """Add `sweep` and its flags to `sub` (the subparsers of `winnow`)."""
    w = sub.add_parser("sweep", help="retrain on pruned subsets against random (cached)")
    add_selection_args(w)
    add_config_arg(
        w,
        "the sweep as JSON (a SweepConfig, as the app's jobs send it) instead of the "
        "selection flags; --run is still given",
    )
    required_unless_config(w)
    w.add_argument("--fractions", default="0.3,0.5,0.7", help="comma-separated shares kept")
    w.add_argument(
        "--seeds",
        type=int,
        default=5,
        help="seeds per fraction (default 5); the 95%% CI of the difference to random is a "
        "t-interval over seeds: none with 1 seed, wide with 2-4",
    )
    w.add_argument(
        "--schedule",
        default="steps",
        help="steps (same optimizer steps as full data, Data Diet) | epochs",
    )
    w.add_argument(
        "--allow-evaluation-decisions",
        action="store_true",
        help="with --apply-decisions: accept decisions made in the app's evaluation mode "
        "(the injected noise's truth shown), which are refused otherwise",
    )
    add_executor_args(w)
    add_cache_dir_arg(w, shown=False)
    add_quiet_arg(w)


def run(args: argparse.Namespace) -> int:
    """Train the sweep's trials; print its summary on stderr and the trials file last."""
    from scoring.prune.select import check_config

    cancel_on_signals()
    report(args.job_file, run=str(Path(args.run)))
    config, selection, fractions = _config_from_args(args)
    from scoring.prune.rules import RULES

    if selection.rule in RULES and RULES[selection.rule].keeps_all:
        raise InputError(
            f"rule {selection.rule} keeps every row, so there is nothing to sweep; pick a rule "
            "that keeps a share (export the cleaned dataset with `export --rule all`)"
        )
    if fractions:
        check_config(selection)  # the widest fraction fails first, before any data loads
    config.check_decisions(args.run)
    from scoring.store import RunDir

    RunDir(Path(args.run)).require_finished()  # a wrong --run: one line, before torch loads
    from scoring.training.retrain import sweep  # torch: only once every flag is checked

    job_executor = executor(args, "auto")
    try:
        out = sweep(Path(args.run), config, show_progress=not args.quiet, executor=job_executor)
    except Cancelled:
        return cancelled(args)
    finally:
        job_executor.close()
    report(args.job_file, exit_code=0, message="sweep done")
    _print_summary(out)
    print(out)
    return 0


def _config_from_args(
    args: argparse.Namespace,
) -> tuple[SweepConfig, SelectionConfig, tuple[float, ...]]:
    """The sweep (from `--config` or the flags), its selection at the widest fraction (checked
    before any data loads) and its fractions."""
    from scoring.prune.sweeps import SweepConfig

    if args.config:
        config = SweepConfig.from_dict(read_config(args.config))
        fractions = config.fractions
        selection = dataclasses.replace(config.selection, fraction=max(fractions, default=1.0))
        return config, selection, fractions
    fractions = _fractions(args.fractions)
    selection = selection_from_args(args, fraction=max(fractions, default=1.0), seed=0)
    config = SweepConfig(
        selection,
        fractions,
        args.seeds,
        args.schedule,
        args.apply_decisions,
        allow_evaluation=args.allow_evaluation_decisions,
    )
    return config, selection, fractions


def _fractions(text: str) -> tuple[float, ...]:
    """`--fractions`' comma-separated shares."""
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--fractions: expected numbers like 0.3,0.5,0.7, got {text!r}") from None


def _print_summary(trials_file: Path) -> None:
    """The sweep's accuracy and paired differences to random with 95% CIs, on stderr.

    Computed afresh from the trials rather than read from `summary.parquet`: a sweep that
    finished before the intervals changed keeps its old summary file.
    """
    import pandas as pd

    from scoring.prune.sweeps import format_summary, sweep_summary

    summary = sweep_summary(pd.read_parquet(trials_file))
    print(format_summary(summary), file=sys.stderr)
