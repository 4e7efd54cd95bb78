"""What several commands share: their flags, defined once, and the helpers that read them.

- `--run`, `--job-file`, `--cache-dir`, `--quiet`: `add_run_arg` … `add_quiet_arg`;
- `--executor`, `--ray-address`: `add_executor_args`, read by `executor`;
- the data flags of `score` and `import`: `add_data_args`, read by `data_config_from_args`;
- the selection rule's flags of `sweep` and `export`: `add_selection_args`, read by
  `selection_from_args`;
- `--config FILE` of `score` and `sweep`: `add_config_arg`, `required_unless_config`,
  `check_config_flags`, `read_config`;
- the app's job file and cancelling: `report`, `cancel_on_signals`, `cancelled`;
- the summary `score` and `import` print for a finished run: `print_run_summary`.

Only argparse, `scoring.config` and `scoring.errors` load with this module: everything heavier
is imported inside the function that needs it, so a typo is answered before torch loads.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.config import DataConfig, parse_names
from scoring.errors import Cancelled, InputError

if TYPE_CHECKING:
    from scoring.prune.select import SelectionConfig

RUN_HELP = "run folder printed by `score`"
CACHE_DIR_HELP = "cache root (default $WINNOW_CACHE_DIR or ./cache)"


def report(job_file: str | None, **fields: Any) -> None:
    """Keep the app's job file current (a no-op without --job-file)."""
    if job_file:
        from scoring import jobs  # the store reads pandas: not for a typo's answer

        jobs.report(job_file, **fields)


# -- flags of several commands ----------------------------------------------------------------


def add_run_arg(p: argparse.ArgumentParser) -> None:
    """`--run`: the finished run a command reads."""
    p.add_argument("--run", required=True, help=RUN_HELP)


def add_job_file_arg(p: argparse.ArgumentParser) -> None:
    """`--job-file`: hidden; the app's jobs pass it and `report` keeps it current."""
    p.add_argument("--job-file", help=argparse.SUPPRESS)


def add_cache_dir_arg(p: argparse.ArgumentParser, *, shown: bool = True) -> None:
    """`--cache-dir`; hidden (`shown=False`) where the run folder already says where."""
    p.add_argument("--cache-dir", help=CACHE_DIR_HELP if shown else argparse.SUPPRESS)


def cache_dir(args: argparse.Namespace) -> Path:
    """The cache root `--cache-dir` names, else the default one."""
    from scoring.store import default_cache_dir

    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


def add_quiet_arg(p: argparse.ArgumentParser, *, help: str | None = "no progress bars") -> None:
    """`--quiet`."""
    p.add_argument("--quiet", action="store_true", help=help)


def add_executor_args(p: argparse.ArgumentParser) -> None:
    """`--executor` and `--ray-address`: where runs or trials are computed."""
    p.add_argument(
        "--executor",
        default="local",
        help="local (default) | ray: runs or trials as Ray tasks (pip install -r "
        "requirements-ray.txt)",
    )
    p.add_argument("--ray-address", help="join this Ray cluster (default: a local Ray)")


def executor(args: argparse.Namespace, device: str) -> Any:
    """The executor `add_executor_args`' flags name (a `scoring.training.executors` one)."""
    from scoring.training.executors import make
    from scoring.training.models import pick_device

    return make(args.executor, address=args.ray_address, cuda=pick_device(device).type == "cuda")


def add_data_args(p: argparse.ArgumentParser, helps: dict[str, str | None]) -> None:
    """The flags `data_config_from_args` reads beside `--dataset`.

    Parameters
    ----------
    p : ArgumentParser
        The command's parser; `--dataset` is its own (required or not, and where).
    helps : dict of str to str or None
        Help text by dest (`test`, `input_col`, `label_col`, `limit`, `test_fraction`,
        `split_seed`, `annotator_cols`, `annotations`): each command words them for its own
        use.
    """
    p.add_argument("--test", help=helps.get("test"))
    p.add_argument("--input-col", help=helps.get("input_col"))
    p.add_argument("--label-col", help=helps.get("label_col"))
    p.add_argument(
        "--annotator-cols",
        help=helps.get(
            "annotator_cols",
            "several annotators: one column each, comma-separated (missing values allowed); "
            "the label is their majority vote unless --label-col names one",
        ),
    )
    p.add_argument(
        "--annotations",
        help=helps.get(
            "annotations",
            "several annotators: a long table (csv/tsv/parquet/jsonl) with columns id (the "
            "row's index in the source), annotator, label",
        ),
    )
    p.add_argument("--limit", type=int, help=helps.get("limit"))
    p.add_argument("--test-fraction", type=float, default=0.2, help=helps.get("test_fraction"))
    p.add_argument("--split-seed", type=int, default=0, help=helps.get("split_seed"))


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    """The data flags `score` and `import` share."""
    return DataConfig(
        source=args.dataset,
        test=args.test,
        input_cols=parse_names(args.input_col),
        label_col=args.label_col,
        limit=args.limit,
        test_fraction=args.test_fraction,
        split_seed=args.split_seed,
        annotator_cols=parse_names(args.annotator_cols),
        annotations=args.annotations,
    )


# -- the selection rule (`sweep`, `export`) ---------------------------------------------------


def add_selection_args(p: argparse.ArgumentParser) -> None:
    """The selection rule's flags, shared by `sweep` and `export`; rules and help from RULES."""
    from scoring.prune.rules import RULES, parameter_help, rule_help  # numpy only: cheap

    def text(line: str) -> str:
        return line.replace("%", "%%")  # argparse formats help with %

    add_run_arg(p)
    p.add_argument("--score", help=text(parameter_help("score")))
    # The choices are shown, not enforced here: check_config refuses an unknown rule in one
    # line (exit 2), like every other bad input.
    p.add_argument(
        "--rule", required=True, metavar="{" + ",".join(RULES) + "}", help=text(rule_help())
    )
    p.add_argument(
        "--normalization",
        default="none",
        help=text(f"none | class | dataset: {parameter_help('normalization')}"),
    )
    p.add_argument(
        "--offset",
        default="0",
        help=text(
            f"{parameter_help('offset')}; or 'auto' (the run's cl_issue noise estimate; "
            "without --score, ranked by the run's default detector, consensus)"
        ),
    )
    p.add_argument("--class-balanced", action="store_true", help="keep the fraction per class")
    p.add_argument(
        "--temperature", type=float, default=1.0, help=text(parameter_help("temperature"))
    )
    p.add_argument("--beta", type=float, default=0.1, help=text(parameter_help("beta")))
    p.add_argument("--bins", type=int, default=50, help=text(parameter_help("bins")))
    _add_pre_step_args(p)
    add_job_file_arg(p)


def _add_pre_step_args(p: argparse.ArgumentParser) -> None:
    """What is dropped or relabelled before the rule ranks the rest."""
    p.add_argument(
        "--apply-decisions",
        action="store_true",
        help="drop and relabel as decided in the app first (rule all: always, unless "
        "--no-decisions)",
    )
    p.add_argument(
        "--drop-duplicates",
        action="store_true",
        help="before the rule, keep one row per duplicate group (dup_group; the lowest id)",
    )
    p.add_argument(
        "--drop-leaks",
        action="store_true",
        help="before the rule, drop training rows that copy a held-out/test row (leak_of)",
    )


def selection_from_args(args: argparse.Namespace, *, fraction: float, seed: int) -> SelectionConfig:
    """The `SelectionConfig` of `add_selection_args`' flags; `--offset auto` reads the run.

    Parameters
    ----------
    args : Namespace
        Parsed flags of `sweep` or `export`.
    fraction : float
        Share kept, in (0, 1].
    seed : int

    Returns
    -------
    SelectionConfig

    Raises
    ------
    InputError
        `--offset` is neither a number nor 'auto'.
    """
    from scoring.prune.select import SelectionConfig

    score, offset = _score_and_offset(args)
    return SelectionConfig(
        rule=args.rule,
        fraction=fraction,
        score=score,
        normalization=args.normalization,
        offset=offset,
        class_balanced=args.class_balanced,
        temperature=args.temperature,
        beta=args.beta,
        bins=args.bins,
        seed=seed,
        drop_duplicates=bool(getattr(args, "drop_duplicates", False)),
        drop_leaks=bool(getattr(args, "drop_leaks", False)),
    )


def _score_and_offset(args: argparse.Namespace) -> tuple[str | None, float]:
    """`--score` and `--offset` as numbers; 'auto' asks the run (and may pick the score)."""
    if args.offset.strip().lower() != "auto":
        try:
            return args.score, float(args.offset)
        except ValueError:
            raise InputError(
                f"--offset must be a share in [0, 1) or 'auto', got {args.offset!r}"
            ) from None
    from scoring.prune.rules import RULES
    from scoring.prune.select import auto_offset
    from scoring.read.views import load_run

    score = args.score
    view = load_run(args.run)
    offset = auto_offset(view)
    print(f"offset auto: {offset:.4f} (share of examples cl_issue flags)", file=sys.stderr)
    rule = RULES.get(args.rule)
    if score is None and rule is not None and rule.drops_first == "offset":
        from scoring.read.suspects import default_detector

        # The share cleanlab estimates is dropped by the run's default detector.
        score = default_detector(view)
        print(f"ranked by {score} (the run's default detector)", file=sys.stderr)
    return score, offset


# -- `--config FILE` (`score`, `sweep`) -------------------------------------------------------

# What may stand beside `--config FILE`: how and where the job runs, never what it computes.
BESIDE_CONFIG = {"command", "config", "run", "executor", "ray_address", "cache_dir", "quiet"}
BESIDE_CONFIG |= {"job_file", "help"}
# Labels of the run, not part of what it computes: `--name`, and `--preset` naming the preset
# the config was resolved with (beside --config it is recorded, not applied again).
BESIDE_CONFIG |= {"name", "preset"}


def add_config_arg(p: argparse.ArgumentParser, help: str) -> None:
    """`--config FILE`; `check_config_flags` refuses the flags it replaces."""
    p.add_argument("--config", help=help)


def required_unless_config(p: argparse.ArgumentParser) -> None:
    """Make `p`'s required flags (but --run) optional; `main` requires them without --config."""
    missing = []
    for action in p._actions:
        if action.required and action.dest != "run":
            action.required = False
            missing.append(action.dest)
    p.set_defaults(_required_unless_config=tuple(missing))


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def check_config_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """With --config, refuse flags that would change the config; without, require the rest."""
    sub = _subparser(parser, args.command)
    if getattr(args, "config", None) is None:
        for dest in getattr(args, "_required_unless_config", ()):
            if getattr(args, dest) is None:
                flag = next(a.option_strings[0] for a in sub._actions if a.dest == dest)
                sub.error(f"{flag} is required (or give --config FILE)")
        return
    given = [
        a.option_strings[0]
        for a in sub._actions
        if a.option_strings
        and a.dest not in BESIDE_CONFIG
        and getattr(args, a.dest, a.default) != a.default
    ]
    if given:
        raise InputError(
            f"--config gives the whole config: drop {', '.join(given)} (or drop --config "
            "and give every setting as a flag)"
        )


def read_config(path: str) -> dict[str, Any]:
    """The JSON object in a `--config` file."""
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"--config: no file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"--config: {path} is not a readable JSON file ({err})") from None
    if not isinstance(config, dict):
        raise InputError(f"--config: {path} must hold a JSON object, got {type(config).__name__}")
    return config


# -- jobs: cancelling, and what a finished run prints -----------------------------------------


def cancel_on_signals() -> None:
    """SIGTERM (the app's cancel) and Ctrl-C raise Cancelled where the job is."""

    def on_signal(signum: int, _frame: Any) -> None:
        raise Cancelled(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def cancelled(args: argparse.Namespace) -> int:
    """Say a cancelled job can resume, tell the app, and return its exit code (130)."""
    print("cancelled; run the same command again to resume", file=sys.stderr)
    report(args.job_file, exit_code=130, message="cancelled; start it again to resume")
    return 130


def print_run_summary(path: Path) -> None:
    """Test accuracy, cleanlab's flag count, the top 5 suspects and the next command, on stderr."""
    from scoring.read import suspects as sus
    from scoring.read.views import load_run

    try:
        view = load_run(path)
    except InputError as err:  # an older-version run, say: the folder still prints
        print(f"(no summary: {err})", file=sys.stderr)
        return
    lines = []
    accuracy = sus.heldout_accuracy(view)
    if accuracy is not None:
        runs = len(view.summary["test_accuracy"])
        # Several families: the accuracy of their averaged probabilities (training.families).
        how = "averaged probabilities" if "families" in view.summary else "mean"
        lines.append(f"held-out accuracy {accuracy:.3f} ({how} of {runs} runs)")
    if "cl_issue" in view.table.columns:
        lines.append(f"cleanlab flags {sus.flagged_count(view):,} examples as likely mislabeled")
    warning = sus.model_errors_warning(view)
    if warning:
        lines.append(f"warning: {warning}")
    if view.score_keys:
        top = sus.suspects(view, top=5)
        lines.append(f"top {len(top)} suspects ({top['detector'].iloc[0] if len(top) else ''}):")
        lines += [f"  id {r.id} ({r.split}): {r.why}" for r in top.itertuples()]
    lines.append(f"next: winnow suspects --run {path} --top 20")
    print("\n".join(lines), file=sys.stderr)
