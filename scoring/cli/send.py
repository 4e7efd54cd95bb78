"""`winnow send`: a run's suspects for a labelling tool: Label Studio tasks with the
labelling config beside them, or Argilla records with the dataset's settings beside them.

    winnow send --run RUN --to label-studio [--top N | --split S | --from suspects.jsonl]
        --out tasks.json
    winnow send --run RUN --to label-studio --url URL --api-key KEY [--out tasks.json]
    winnow send --run RUN --to argilla [--top N | ...] --out records.jsonl

With `--url` (or LABEL_STUDIO_URL) it also creates a Label Studio project with the config
and imports the tasks through the official SDK, and prints the project's id for
`winnow receive --url URL --project ID`. Argilla records go in with Argilla's SDK
(`dataset.records.log`, or `dataset.records.from_json` for a `.json` list); the command
prints the lines.

Which rows: the suspects in `winnow suspects` order (`--detector`, `--split`); `--top N` the
first N; `--from FILE.jsonl` the ids of a file `winnow suspects --format jsonl` wrote (edited
by hand, say), in its order; by default the rows cleanlab flags (at least one). The answers
come back with `winnow receive`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.cli.common import add_run_arg
from scoring.errors import InputError
from scoring.read import label_studio

if TYPE_CHECKING:
    import pandas as pd

    from scoring.read.views import RunView

TOOLS = ("label-studio", "argilla")
# What each tool's file is and the settings file written beside it.
SUFFIXES = {"label-studio": (".json",), "argilla": (".jsonl", ".json")}


def add_parser(sub: Any) -> None:
    """Add `send` and its flags to `sub` (the subparsers of `winnow`)."""
    q = sub.add_parser(
        "send",
        help="a run's suspects for a labelling tool (Label Studio tasks, Argilla records)",
    )
    add_run_arg(q)
    q.add_argument("--to", required=True, help="the tool: label-studio | argilla")
    q.add_argument(
        "--out",
        metavar="FILE",
        help="the file to write: Label Studio tasks (.json; required without --url) or "
        "Argilla records (.jsonl, one per line, or .json, a list)",
    )
    q.add_argument(
        "--url",
        help="a Label Studio server: create a project there and import the tasks "
        "(default: $LABEL_STUDIO_URL when --api-key or $LABEL_STUDIO_API_KEY is set)",
    )
    q.add_argument("--api-key", help="its API key (default: $LABEL_STUDIO_API_KEY)")
    which = q.add_mutually_exclusive_group()
    which.add_argument("--top", type=int, help="the first N suspects (default: cleanlab's flags)")
    which.add_argument(
        "--from",
        dest="from_file",
        metavar="SUSPECTS.jsonl",
        help="the ids of a `winnow suspects --format jsonl` file, in its order",
    )
    q.add_argument(
        "--split", default="all", help="all (default) | train | heldout, as `winnow suspects`"
    )
    q.add_argument("--detector", help="the score ranking training rows, as `winnow suspects`")


def run(args: argparse.Namespace) -> int:
    """Write the tasks or records and the tool's settings; say where and how many on stderr."""
    if args.to not in TOOLS:
        raise InputError(f"--to must be one of {', '.join(TOOLS)}, got {args.to!r}")
    if args.top is not None and args.top < 1:
        raise InputError(f"--top must be a positive integer, got {args.top}")
    server = args.url is not None or args.api_key is not None
    if server and args.to != "label-studio":
        raise InputError(
            "--url and --api-key go with --to label-studio; Argilla records are logged with "
            "Argilla's SDK (give --out records.jsonl)"
        )
    if args.out is None and not server:
        what = "TASKS.json (a file to import), or --url and --api-key"
        raise InputError(f"give --out {what if args.to == 'label-studio' else 'RECORDS.jsonl'}")
    out = Path(args.out) if args.out is not None else None
    suffixes = SUFFIXES[args.to]
    if out is not None and out.suffix.lower() not in suffixes:
        raise InputError(
            f"--out must name a {' or '.join(suffixes)} file for --to {args.to}, got {out}"
        )
    if out is not None and not out.parent.is_dir():
        raise InputError(f"--out: no folder {out.parent}; create it first")
    wanted = _ids_from(Path(args.from_file)) if args.from_file else None
    from scoring.read import labelling
    from scoring.read.views import load_run
    from scoring.store import atomic_write_bytes

    view = load_run(Path(args.run))
    frame = _rows(args, view, wanted)
    if args.to == "argilla":
        return _write_argilla(view, frame, out, args.run)  # type: ignore[arg-type]
    tasks = labelling.label_studio_tasks(view, frame)
    client = label_studio.connect(args.url, args.api_key) if server else None  # before writing
    if out is not None:
        config = out.with_name(out.stem + ".label_config.xml")
        atomic_write_bytes(config, labelling.label_config(view).encode())
        atomic_write_bytes(out, labelling.tasks_json(tasks).encode())
        print(f"{len(tasks)} task(s) in {out}; labelling config in {config}", file=sys.stderr)
    if client is None:
        print(
            "Label Studio: create a project with that config, import the tasks, export JSON "
            f"when done, then `winnow receive --run {args.run} --from EXPORT.json`",
            file=sys.stderr,
        )
        return 0
    url = label_studio.server_url(args.url)
    title = view.title()[: label_studio.TITLE_CHARS]
    project = label_studio.create_project(client, url, title, labelling.label_config(view), tasks)
    print(project)  # stdout: the id alone, for scripts
    print(
        f"Label Studio project {project} at {url}/projects/{project} holds {len(tasks)} "
        f"task(s); when they are answered: winnow receive --run {args.run} --url {url} "
        f"--project {project}",
        file=sys.stderr,
    )
    return 0


def _rows(args: argparse.Namespace, view: RunView, wanted: list[int] | None) -> pd.DataFrame:
    """The suspects to send, in `winnow suspects` order: `--from`'s ids, `--top`'s first N,
    else the rows cleanlab flags (at least one)."""
    from scoring.read import suspects

    frame = suspects.suspects(view, detector=args.detector, split=args.split)
    if wanted is None:
        top = args.top if args.top is not None else max(1, int(frame["flagged"].sum()))
        return frame.head(top)
    known = frame.set_index("id")
    missing = [i for i in wanted if i not in known.index]
    if missing:
        raise InputError(
            f"--from {args.from_file}: id {missing[0]} is not a suspect of this run "
            f"(split {args.split}); {len(missing)} such id(s), nothing was written"
        )
    return known.loc[wanted].reset_index()


def _write_argilla(view: RunView, frame: pd.DataFrame, out: Path, run: str) -> int:
    """The records (JSON lines, or a JSON list for `.json`) and the settings beside them."""
    from scoring.read import labelling
    from scoring.store import atomic_write_bytes

    records = labelling.argilla_records(view, frame)
    settings = out.with_name(out.stem + ".settings.json")
    atomic_write_bytes(
        settings, (json.dumps(labelling.argilla_settings(view), indent=1) + "\n").encode()
    )
    text = (
        json.dumps(records) + "\n"
        if out.suffix.lower() == ".json"
        else labelling.records_jsonl(records)
    )
    atomic_write_bytes(out, text.encode())
    log = (
        f"dataset.records.from_json({str(out)!r})"
        if out.suffix.lower() == ".json"
        else f"dataset.records.log([rg.Record.from_dict(json.loads(line)) for line in "
        f"open({str(out)!r})])"
    )
    print(
        f"{len(records)} record(s) in {out}; dataset settings in {settings}\n"
        "Argilla (Python SDK): dataset = rg.Dataset(name=..., "
        f"settings=rg.Settings.from_json({str(settings)!r})); dataset.create(); {log}\n"
        "When answered: dataset.records.to_json('answers.json'), then "
        f"`winnow receive --run {run} --from answers.json`",
        file=sys.stderr,
    )
    return 0


def _ids_from(file: Path) -> list[int]:
    """The `id` of each line of a suspects JSON-lines file, checked whole first."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"--from: no file {file}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--from: cannot read {file} ({err})") from None
    ids = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            value = record["id"]
        except (json.JSONDecodeError, TypeError, KeyError):
            raise InputError(
                f"--from {file}, line {n}: not a JSON object with an `id` (as `winnow suspects "
                "--format jsonl` writes); nothing was written"
            ) from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"--from {file}, line {n}: id must be an integer, got {value!r}")
        ids.append(value)
    if not ids:
        raise InputError(f"--from: {file} holds no ids")
    return list(dict.fromkeys(ids))  # once each, first place kept
