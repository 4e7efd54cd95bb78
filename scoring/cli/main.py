"""`winnow`'s parser, assembled from one module per command, and its entry point `main`.

A new command is one module with `add_parser(sub)` and `run(args) -> int`, and one line in
`COMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

from scoring.cli import (
    decide,
    export,
    import_,
    list_,
    map_,
    receive,
    score,
    send,
    suspects,
    sweep,
)
from scoring.cli import report as report_command  # `common.report` is the job-file one
from scoring.cli.common import check_config_flags, report
from scoring.errors import InputError

# Subcommand -> its module; in the order `winnow --help` lists them.
COMMANDS: dict[str, ModuleType] = {
    "score": score,
    "suspects": suspects,
    "decide": decide,
    "map": map_,
    "export": export,
    "sweep": sweep,
    "list": list_,
    "import": import_,
    "report": report_command,
    "send": send,
    "receive": receive,
}


def build_parser() -> argparse.ArgumentParser:
    """`winnow`'s parser: every command of `COMMANDS` with its flags and help."""
    # `winnow` and `python -m scoring` are one program; usage lines name the one typed.
    prog = "winnow" if Path(sys.argv[0]).name == "winnow" else "python -m scoring"
    parser = argparse.ArgumentParser(prog=prog, description="Winnow's scoring engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `winnow` and `python -m scoring`; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: `sys.argv[1:]`).

    Returns
    -------
    int
        0 done; 2 bad input (one line on stderr); 1 a full disk; 130 cancelled. Bad flags
        exit 2 from argparse (SystemExit); a bug raises after telling the app's job file.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    report(getattr(args, "job_file", None), pid=os.getpid())  # the app polls and cancels it
    command = COMMANDS[args.command]
    try:
        check_config_flags(parser, args)
        with warnings.catch_warnings():
            if argv is None:  # the process's own command line (not a caller's in-process run)
                warnings.showwarning = _one_line_warning  # restored on the way out
            return command.run(args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        report(getattr(args, "job_file", None), exit_code=2, message=str(err))
        return 2
    except Exception as err:
        full = _disk_full(err)
        if full is not None:  # not a bug: one line, and the log says the same
            print(f"error: {full}", file=sys.stderr)
            with contextlib.suppress(OSError):  # the job file sits on that full disk too
                report(getattr(args, "job_file", None), exit_code=1, message=full)
            return 1
        # A bug, not bad input: keep the traceback in the log, tell the app it failed.
        report(getattr(args, "job_file", None), exit_code=1, message=f"{type(err).__name__}: {err}")
        raise


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Our own warnings (a damaged decisions line, ...) as `warning: ...`, one line on stderr,
    like `error: ...`; a library's keep Python's form, which names where it came from."""
    if category is UserWarning and "/scoring/" in filename.replace("\\", "/"):
        print(f"warning: {message}", file=sys.stderr)
        return
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _disk_full(err: BaseException) -> str | None:
    """The one line for a full disk (or quota) anywhere in `err`'s chain; None otherwise.

    Every cache write is a temp file moved into place (`store.atomic_write_bytes`), so a
    write that fails leaves the previous files whole, and finished runs and folds stay on
    disk for the rerun to pick up.
    """
    for _ in range(20):  # chains can in principle loop
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" (writing {err.filename})" if err.filename else ""
            return (
                f"the disk is full{where}: nothing already written was lost or half-written; "
                "free some space and run the same command again to continue where it stopped"
            )
        nxt = err.__cause__ or err.__context__
        if nxt is None:
            return None
        err = nxt
    return None
