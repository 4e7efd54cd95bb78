"""`winnow map`: a 2-D UMAP of a finished run's embeddings, for the app.

Named `map_` because `map` is a builtin.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scoring.cli.common import (
    add_cache_dir_arg,
    add_job_file_arg,
    add_quiet_arg,
    add_run_arg,
    report,
)
from scoring.config import check_seed


def add_parser(sub: Any) -> None:
    """Add `map` and its flags to `sub` (the subparsers of `winnow`)."""
    m = sub.add_parser("map", help="2-D UMAP of a finished run's embeddings (for the app)")
    add_run_arg(m)
    m.add_argument("--seed", type=int, default=0)
    add_cache_dir_arg(m, shown=False)
    add_quiet_arg(m, help=None)
    add_job_file_arg(m)


def run(args: argparse.Namespace) -> int:
    """Compute the map into the run folder; print the file written."""
    from scoring.read.maps import compute_map

    report(args.job_file, run=str(Path(args.run)))
    out = compute_map(Path(args.run), seed=check_seed(args.seed, "--seed"))
    report(args.job_file, exit_code=0, message="map ready")
    print(out)
    return 0
