"""`winnow receive`: a labelling tool's answers as decisions (Label Studio's JSON export, or
Argilla's exported records).

    winnow receive --run RUN --from export.json      # Label Studio or Argilla: read from it
    winnow receive --run RUN --url URL --api-key KEY --project ID   # a Label Studio server

Each task's majority answer becomes a keep (the given label) or a relabel, with the
annotators recorded (``tool``, ``annotators`` in decisions.jsonl); skipped or unanswered
tasks are left alone; ties are left undecided and listed. The whole file is checked before
anything is written; the decisions go in as one bulk action, undone with
`winnow decide --run RUN --undo-bulk ID`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoring.cli.common import add_run_arg
from scoring.errors import InputError


def add_parser(sub: Any) -> None:
    """Add `receive` and its flags to `sub` (the subparsers of `winnow`)."""
    q = sub.add_parser(
        "receive",
        help="a labelling tool's answers as decisions (Label Studio's JSON export, Argilla's "
        "records)",
    )
    add_run_arg(q)
    source = q.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from",
        dest="from_file",
        metavar="EXPORT.json",
        help="Label Studio's JSON export of a project made with `winnow send`, or Argilla's "
        "records (`dataset.records.to_json`; JSON lines too); which one is read from the file",
    )
    source.add_argument(
        "--project", type=int, help="the project's id on a Label Studio server (with --url)"
    )
    q.add_argument("--url", help="the Label Studio server (default: $LABEL_STUDIO_URL)")
    q.add_argument("--api-key", help="its API key (default: $LABEL_STUDIO_API_KEY)")


def run(args: argparse.Namespace) -> int:
    """Append the answers as one bulk action; say what was recorded and left on stderr."""
    from scoring.read import decisions, labelling

    if args.project is None and (args.url or args.api_key):
        raise InputError("--url and --api-key go with --project ID (or read a file: --from)")
    if args.project is None:
        got = labelling.read_answers(Path(args.run), Path(args.from_file))
    else:
        from scoring.read import label_studio

        client = label_studio.connect(args.url, args.api_key)
        url = label_studio.server_url(args.url)
        text = label_studio.export_json(client, url, args.project)
        where = Path(f"project {args.project} at {url}")
        got = labelling.read_answers(Path(args.run), where, text)
    bulk = decisions.append_bulk(Path(args.run), got.records, got.tool)
    print(
        f"{len(got.records)} decision(s) from {got.tool_name} ({got.keeps} keep, "
        f"{got.relabels} relabel) recorded in {decisions.path_of(args.run)}; "
        f"{got.unanswered} {'task' if got.tool == 'label-studio' else 'record'}(s) without an "
        "answer left alone",
        file=sys.stderr,
    )
    if got.ties:
        shown = ", ".join(str(i) for i in got.ties[:20]) + (" ..." if len(got.ties) > 20 else "")
        print(
            f"warning: the annotators tied on {len(got.ties)} example(s), left undecided: "
            f"ids {shown}",
            file=sys.stderr,
        )
    if bulk is not None:
        print(
            f"bulk action {bulk}; undo with: winnow decide --run {args.run} --undo-bulk {bulk}",
            file=sys.stderr,
        )
    return 0
