"""`winnow report`: a finished run's health report, every issue type with its count.

The same report as the Health section of the app's Home page (`scoring.read.health`), read
from the run folder: nothing is recomputed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scoring.cli.common import add_run_arg
from scoring.errors import InputError

FORMATS = ("markdown", "json")


def add_parser(sub: Any) -> None:
    """Add `report` and its flags to `sub` (the subparsers of `winnow`)."""
    q = sub.add_parser(
        "report",
        help="a finished run's health report: every issue type, its count, severity and page",
    )
    add_run_arg(q)
    q.add_argument(
        "--format",
        default="markdown",
        help="markdown (default: a table) | json (an object whose `issues` list holds one "
        "entry per issue type)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the report on stdout as markdown or JSON."""
    if args.format not in FORMATS:
        raise InputError(f"--format must be markdown or json, got {args.format!r}")
    from scoring.read.health import health_report, report_markdown
    from scoring.read.views import load_run

    view = load_run(Path(args.run))
    issues = health_report(view)
    if args.format == "json":
        record = {"run": str(view.path), "title": view.title(), "issues": issues}
        sys.stdout.write(json.dumps(record, indent=2) + "\n")
    else:
        sys.stdout.write(report_markdown(view, issues))
    return 0
