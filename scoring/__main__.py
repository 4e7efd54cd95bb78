"""Command line: `winnow` (or `python -m scoring`)
`{score,suspects,decide,export,sweep,map,list,import} ...`.

Bad input prints one message on stderr and exits 2; the last stdout line of `score` is the
run folder (of `export`, the path written; of `sweep`, its trials file), so scripts and the
app's job runner can pick it up. Summaries and tables for people go to stderr.

`score` and `sweep` also take `--config FILE`: the typed config as JSON (`ScoreConfig.to_dict`,
`SweepConfig.to_dict`), which is how the app's jobs receive theirs (scoring/jobs.py); the flags
that would build the config are then refused. Heavy modules load inside each command, after
the arguments were checked, so a typo is answered at once.
"""

from __future__ import annotations

import os

# Before torch loads: PyTorch's default OpenMP spin-wait made training 4-7x slower here as
# soon as another process was busy (DESIGN.md, Jobs).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import errno  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from scoring.config import (  # noqa: E402
    PRESET_FIELDS,
    PRESETS,
    DataConfig,
    GradConfig,
    NoiseConfig,
    ScoreConfig,
    TrainConfig,
    apply_preset,
    check_seed,
    parse_names,
)
from scoring.errors import Cancelled, InputError  # noqa: E402


def report(job_file: str | None, **fields: Any) -> None:
    """Keep the app's job file current (a no-op without --job-file)."""
    if job_file:
        from scoring import jobs  # the store reads pandas: not for a typo's answer

        jobs.report(job_file, **fields)


# What may stand beside `--config FILE`: how and where the job runs, never what it computes.
_BESIDE_CONFIG = {"command", "config", "run", "executor", "ray_address", "cache_dir", "quiet"}
_BESIDE_CONFIG |= {"job_file", "help"}
# Labels of the run, not part of what it computes: `--name`, and `--preset` naming the preset
# the config was resolved with (beside --config it is recorded, not applied again).
_BESIDE_CONFIG |= {"name", "preset"}


def _add_selection_args(p: argparse.ArgumentParser) -> None:
    """The selection rule's flags, shared by `sweep` and `export`; rules and help from RULES."""
    from scoring.prune.rules import RULES, parameter_help, rule_help  # numpy only: cheap

    def text(line: str) -> str:
        return line.replace("%", "%%")  # argparse formats help with %

    p.add_argument("--run", required=True, help="run folder printed by `score`")
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
    p.add_argument("--job-file", help=argparse.SUPPRESS)


def _selection_from_args(args: argparse.Namespace, *, fraction: float, seed: int):
    from scoring.prune.rules import RULES
    from scoring.prune.select import SelectionConfig, auto_offset
    from scoring.read.views import load_run

    score = args.score
    if args.offset.strip().lower() == "auto":
        view = load_run(args.run)
        offset = auto_offset(view)
        print(f"offset auto: {offset:.4f} (share of examples cl_issue flags)", file=sys.stderr)
        rule = RULES.get(args.rule)
        if score is None and rule is not None and rule.drops_first == "offset":
            from scoring.read.suspects import default_detector

            # The share cleanlab estimates is dropped by the run's default detector.
            score = default_detector(view)
            print(f"ranked by {score} (the run's default detector)", file=sys.stderr)
    else:
        try:
            offset = float(args.offset)
        except ValueError:
            raise InputError(
                f"--offset must be a share in [0, 1) or 'auto', got {args.offset!r}"
            ) from None
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


def _add_executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        default="local",
        help="local (default) | ray: runs or trials as Ray tasks (pip install -r "
        "requirements-ray.txt)",
    )
    p.add_argument("--ray-address", help="join this Ray cluster (default: a local Ray)")


def _executor(args: argparse.Namespace, device: str):
    from scoring.training.executors import make
    from scoring.training.models import pick_device

    return make(args.executor, address=args.ray_address, cuda=pick_device(device).type == "cuda")


def _cancel_on_signals() -> None:
    """SIGTERM (the app's cancel) and Ctrl-C raise Cancelled where the job is."""

    def on_signal(signum, _frame):
        raise Cancelled(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _cancelled(args: argparse.Namespace) -> int:
    print("cancelled; run the same command again to resume", file=sys.stderr)
    report(args.job_file, exit_code=130, message="cancelled; start it again to resume")
    return 130


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--fractions: expected numbers like 0.3,0.5,0.7, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    # `winnow` and `python -m scoring` are one program; usage lines name the one typed.
    prog = "winnow" if Path(sys.argv[0]).name == "winnow" else "python -m scoring"
    parser = argparse.ArgumentParser(prog=prog, description="Winnow's scoring engine.")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="train, record and score a dataset (cached)")
    s.add_argument(
        "--dataset",
        required=True,
        help="digits (scikit-learn's bundled 8x8 digits) | a local parquet/csv/tsv/jsonl file "
        "or image folder | hf:NAME[:CONFIG]",
    )
    s.add_argument(
        "--name",
        help="a name for the run in lists and captions (not part of its key: scoring the same "
        "config again with another --name renames it)",
    )
    s.add_argument(
        "--test", help="separate held-out file (else the source's test split or a carved one)"
    )
    s.add_argument("--input-col", help="input column; two comma-separated names = sentence pair")
    s.add_argument("--label-col", help="label column")
    s.add_argument("--limit", type=int, help="stratified, seeded subset of N training examples")
    s.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="held-out share carved when the source has no test split (default 0.2)",
    )
    s.add_argument("--split-seed", type=int, default=0)
    s.add_argument(
        "--recipe", default="auto", help="auto | mlp | cnn | cnn32 | resnet18 | probe | finetune"
    )
    s.add_argument(
        "--model",
        help="pretrained encoder (HF name or local folder): text for probe and finetune, "
        "or an image encoder (ViT, DINOv2, CLIP, ConvNeXt) for an image probe",
    )
    s.add_argument(
        "--max-length",
        type=int,
        help="text: tokens kept per example, a pair's two parts together (default 128)",
    )
    s.add_argument("--runs", type=int, help="independent runs R (default 5)")
    s.add_argument("--epochs", type=int, help="epochs per run (default: the recipe's)")
    s.add_argument("--early-epoch", type=int, help="EL2N's epoch (default about 10%% of epochs)")
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--seed", type=int, default=0, help="base seed; run r uses seed + r")
    s.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="fraction of training labels to corrupt (label-noise check)",
    )
    s.add_argument("--noise-seed", type=int, default=0)
    s.add_argument(
        "--noise-kind",
        default="uniform",
        help="uniform (permute a random fraction), asymmetric (flip each class to a confusable "
        "class: CIFAR-10's truck->automobile, bird->airplane, deer->horse, cat<->dog) or pair "
        "(class c -> c+1 mod K); default uniform",
    )
    s.add_argument("--scores", default="all", help="all, or comma-separated score keys")
    s.add_argument("--cv-folds", type=int, help="folds for cleanlab's cross-fitting (default 5)")
    s.add_argument("--prototypes", type=int, help="k-means clusters for `prototype` (default K)")
    s.add_argument(
        "--grad-at",
        default="init",
        help="grand and its label-free variants: init (Data Diet) | early (EL2N's epoch)",
    )
    s.add_argument(
        "--grad-params",
        default="all",
        help="grand and tracin: all parameters | last layer (exact closed form)",
    )
    s.add_argument(
        "--checkpoints",
        type=int,
        help="tracin and vog: checkpoints K, evenly spaced in steps (default 5)",
    )
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    s.add_argument(
        "--config",
        help="the whole run as JSON (a ScoreConfig, as the app's jobs send it) instead of the "
        "flags above",
    )
    s.add_argument("--cache-dir", help="cache root (default $WINNOW_CACHE_DIR or ./cache)")
    s.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="tiny: a few epochs and 2 runs, for a first look in seconds (default: default); "
        "beside --config, only recorded as the preset the config was made with",
    )
    _add_executor_args(s)
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument("--job-file", help=argparse.SUPPRESS)  # kept current for the app's jobs
    _required_unless_config(s)

    q = sub.add_parser("suspects", help="a finished run's likely label errors, most suspect first")
    q.add_argument("--run", required=True, help="run folder printed by `score`")
    q.add_argument("--detector", help="score ranking the training rows (default: the run's best)")
    q.add_argument("--top", type=int, help="show the first K (default: all)")
    q.add_argument(
        "--split",
        default="all",
        help="all (default) | train | heldout (held-out rows carved from the same source)",
    )
    q.add_argument("--format", default="table", help="table (default) | csv | jsonl")

    d = sub.add_parser(
        "decide", help="record keep / drop / relabel decisions (the same ones the app records)"
    )
    d.add_argument("--run", required=True, help="run folder printed by `score`")
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

    m = sub.add_parser("map", help="2-D UMAP of a finished run's embeddings (for the app)")
    m.add_argument("--run", required=True, help="run folder printed by `score`")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--cache-dir", help=argparse.SUPPRESS)
    m.add_argument("--quiet", action="store_true")
    m.add_argument("--job-file", help=argparse.SUPPRESS)

    e = sub.add_parser(
        "export",
        help="write a run's data: the cleaned dataset (--rule all) or a selected subset",
    )
    _add_selection_args(e)
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

    w = sub.add_parser("sweep", help="retrain on pruned subsets against random (cached)")
    _add_selection_args(w)
    w.add_argument(
        "--config",
        help="the sweep as JSON (a SweepConfig, as the app's jobs send it) instead of the "
        "selection flags; --run is still given",
    )
    _required_unless_config(w)
    w.add_argument("--fractions", default="0.3,0.5,0.7", help="comma-separated shares kept")
    w.add_argument("--seeds", type=int, default=3, help="seeds per fraction (default 3)")
    w.add_argument(
        "--schedule",
        default="steps",
        help="steps (same optimizer steps as full data, Data Diet) | epochs",
    )
    _add_executor_args(w)
    w.add_argument("--cache-dir", help=argparse.SUPPRESS)
    w.add_argument("--quiet", action="store_true", help="no progress bars")

    ls = sub.add_parser("list", help="list cached runs (name, dataset, recipe, preset, noise)")
    ls.add_argument("--cache-dir", help="cache root (default $WINNOW_CACHE_DIR or ./cache)")

    i = sub.add_parser(
        "import",
        help="a run from your own training's files: per-epoch logits, out-of-fold "
        "probabilities, features (.npz or .parquet with an id column)",
    )
    i.add_argument("--name", required=True, help="the run's name in lists and captions")
    i.add_argument(
        "--logits",
        action="append",
        default=[],
        metavar="FILE",
        help="training-pass logits per epoch, one file per run (repeat for several runs): "
        ".npz with id (N,), logits (T, N, K)[, label]; or .parquet with id, epoch, logits "
        "(a list column, or logit_0..logit_K-1)[, label][, run]",
    )
    i.add_argument(
        "--eval-logits",
        metavar="FILE",
        help="eval-pass logits after some epochs, same layout (EL2N at fixed weights)",
    )
    i.add_argument(
        "--test-logits", metavar="FILE", help="held-out rows: id, label, logits (per run)"
    )
    i.add_argument("--features", metavar="FILE", help="penultimate features: id, features")
    i.add_argument(
        "--oof",
        metavar="FILE",
        help="out-of-fold probabilities from your cross-validation: id, probs (cleanlab)",
    )
    i.add_argument("--label-names", help="comma-separated class names (default 0..K-1)")
    i.add_argument(
        "--early-epoch", type=int, help="EL2N's epoch (default about 10%% of the epochs)"
    )
    i.add_argument(
        "--dataset",
        help="the data source the ids are rows of (as `score --dataset`): pages show the "
        "rows and export writes them; it also gives the labels",
    )
    i.add_argument("--test", help="with --dataset: its separate held-out file")
    i.add_argument("--input-col", help="with --dataset: input column(s)")
    i.add_argument("--label-col", help="with --dataset: label column")
    i.add_argument("--limit", type=int, help="with --dataset: as `score --limit`")
    i.add_argument("--test-fraction", type=float, default=0.2, help="with --dataset")
    i.add_argument("--split-seed", type=int, default=0, help="with --dataset")
    i.add_argument("--cache-dir", help="cache root (default $WINNOW_CACHE_DIR or ./cache)")
    return parser


def _required_unless_config(p: argparse.ArgumentParser) -> None:
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


def _check_config_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
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
        and a.dest not in _BESIDE_CONFIG
        and getattr(args, a.dest, a.default) != a.default
    ]
    if given:
        raise InputError(
            f"--config gives the whole config: drop {', '.join(given)} (or drop --config "
            "and give every setting as a flag)"
        )


def _read_config(path: str) -> dict[str, Any]:
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
    )


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    """The run `score`'s flags (or its `--config` file) describe, the preset applied."""
    if getattr(args, "config", None):
        return ScoreConfig.from_dict(_read_config(args.config)).validate()
    budget = {"runs": args.runs, "epochs": args.epochs, "max_length": args.max_length}
    budget["cv_folds"] = args.cv_folds
    given = {k: v for k, v in budget.items() if v is not None}
    assert set(budget) == set(PRESET_FIELDS)  # a new preset field needs its flag here
    config = ScoreConfig(
        data=data_config_from_args(args),
        train=TrainConfig(
            recipe=args.recipe,
            model=args.model,
            max_length=args.max_length,
            epochs=args.epochs,
            early_epoch=args.early_epoch,
            batch_size=args.batch_size,
            lr=args.lr,
            base_seed=args.seed,
            device=args.device,
            **({"runs": args.runs} if args.runs is not None else {}),
        ),
        noise=NoiseConfig(fraction=args.noise, seed=args.noise_seed, kind=args.noise_kind),
        scores=parse_names(args.scores) or ("all",),
        prototypes=args.prototypes,
        grads=GradConfig(at=args.grad_at, params=args.grad_params, checkpoints=args.checkpoints),
        **({"cv_folds": args.cv_folds} if args.cv_folds is not None else {}),
    )
    return apply_preset(config, args.preset or "default", keep=given).validate()


def _cache_dir(args: argparse.Namespace) -> Path:
    from scoring.store import default_cache_dir

    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


def cmd_score(args: argparse.Namespace) -> int:
    from scoring.training.pipeline import score

    config = config_from_args(args)
    _cancel_on_signals()
    waited = []

    def on_wait(status: dict) -> None:
        if not waited:
            print(
                f"another job (pid {status.get('pid')}) is computing this run; waiting for it",
                file=sys.stderr,
            )
            waited.append(True)

    def on_prepared(path: Path) -> None:
        from scoring.store import RunDir

        # Labels, not results: written (merged) on every call, so a rerun renames the run.
        preset = args.preset if args.config else (args.preset or "default")
        name = args.name.strip() if args.name and args.name.strip() else None
        RunDir(path).write_meta(name=name, preset=preset)
        report(args.job_file, run=str(path))

    executor = _executor(args, config.train.device)
    try:
        path = score(
            config,
            _cache_dir(args),
            show_progress=not args.quiet,
            on_wait=on_wait,
            on_prepared=on_prepared,
            executor=executor,
        )
    except Cancelled:
        return _cancelled(args)
    finally:
        executor.close()
    report(args.job_file, exit_code=0, message="done")
    _print_score_summary(path)
    print(path)
    return 0


def _print_score_summary(path: Path) -> None:
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
        lines.append(
            f"held-out accuracy {accuracy:.3f} (mean of {len(view.summary['test_accuracy'])} runs)"
        )
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


def cmd_map(args: argparse.Namespace) -> int:
    from scoring.read.maps import compute_map

    report(args.job_file, run=str(Path(args.run)))
    out = compute_map(Path(args.run), seed=check_seed(args.seed, "--seed"))
    report(args.job_file, exit_code=0, message="map ready")
    print(out)
    return 0


def cmd_suspects(args: argparse.Namespace) -> int:
    if args.format not in ("table", "csv", "jsonl"):
        raise InputError(f"--format must be table, csv or jsonl, got {args.format!r}")
    if args.top is not None and args.top < 1:
        raise InputError(f"--top must be a positive integer, got {args.top}")
    from scoring.read.suspects import suspects
    from scoring.read.views import load_run

    view = load_run(Path(args.run))
    frame = suspects(view, detector=args.detector, split=args.split, top=args.top)
    columns = ["id", "split", "label", "suggested_label", "given_prob", "suggested_prob"]
    columns += ["score", "detector", "flagged", "why"]
    frame = frame[columns + [c for c in ("noisy", "true") if c in frame.columns]]
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif args.format == "jsonl":
        text = frame.to_json(orient="records", lines=True)  # pandas may or may not end a line
        sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    else:
        shown = frame.copy()
        for col in ("given_prob", "suggested_prob", "score"):
            shown[col] = shown[col].map(lambda v: f"{v:.3f}")
        print(shown.to_string(index=False) if len(shown) else "no examples", file=sys.stdout)
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from scoring.read import decisions

    actions = {"drop": args.drop, "keep": args.keep, "clear": args.clear}
    chosen = [a for a, on in actions.items() if on] + (["relabel"] if args.relabel else [])
    if args.from_file is not None:
        if args.id is not None or chosen:
            raise InputError("--from FILE gives every decision: drop --id and the action flags")
        records = decisions.read_bulk(Path(args.run), args.from_file)
        n = decisions.append_many(Path(args.run), records)
        print(f"{n} decision(s) recorded in {decisions.path_of(args.run)}", file=sys.stderr)
        return 0
    if args.id is None or not chosen:
        raise InputError(
            "give --id ID and one of --drop, --keep, --relabel LABEL, --clear (or --from FILE.csv)"
        )
    new_label = None
    if args.relabel:
        from scoring.store import RunDir

        rd = RunDir(Path(args.run))
        if not rd.config_file.exists():
            raise InputError(f"{args.run} is not a finished Winnow run; decisions need its scores")
        new_label = decisions.label_index(rd.read_config()["dataset"]["label_names"], args.relabel)
    record = decisions.append(Path(args.run), args.id, chosen[0], new_label)
    print(f"id {record['id']}: {record['action']} recorded", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from scoring.prune.export import export_selection

    report(args.job_file, run=str(Path(args.run)))
    seed = check_seed(args.seed, "--seed")
    from scoring.prune.rules import RULES

    every_row = args.rule in RULES and RULES[args.rule].keeps_all
    if every_row:
        if args.fraction not in (None, 1.0):
            raise InputError(
                f"--rule {args.rule} keeps every row: drop --fraction {args.fraction:g}"
            )
        apply = not args.no_decisions
    else:
        if args.fraction is None:
            raise InputError(f"--fraction is required for --rule {args.rule} (or use --rule all)")
        if args.no_decisions:
            raise InputError(
                "--no-decisions goes with --rule all; other rules apply decisions "
                "only with --apply-decisions"
            )
        apply = args.apply_decisions
    fraction = 1.0 if every_row else args.fraction
    selection = _selection_from_args(args, fraction=fraction, seed=seed)
    out = export_selection(
        Path(args.run),
        selection,
        fmt=args.format,
        out=Path(args.out),
        apply_decisions=apply,
        force=args.force,
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
    splits = manifest.get("splits", {})
    held = f" ({splits['heldout']} held-out)" if splits.get("heldout") else ""
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
    print(f"{manifest['rows']} examples{held} -> {out}{done}", file=sys.stderr)
    print(out)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from scoring.prune.select import check_config
    from scoring.prune.sweeps import SweepConfig
    from scoring.training.retrain import sweep

    _cancel_on_signals()
    report(args.job_file, run=str(Path(args.run)))
    if args.config:
        config = SweepConfig.from_dict(_read_config(args.config))
        fractions = config.fractions
        selection = dataclasses.replace(config.selection, fraction=max(fractions, default=1.0))
    else:
        fractions = _fractions(args.fractions)
        selection = _selection_from_args(args, fraction=max(fractions, default=1.0), seed=0)
        config = SweepConfig(selection, fractions, args.seeds, args.schedule, args.apply_decisions)
    from scoring.prune.rules import RULES

    if selection.rule in RULES and RULES[selection.rule].keeps_all:
        raise InputError(
            f"rule {selection.rule} keeps every row, so there is nothing to sweep; pick a rule "
            "that keeps a share (export the cleaned dataset with `export --rule all`)"
        )
    if fractions:
        check_config(selection)  # the widest fraction fails first, before any data loads
    executor = _executor(args, "auto")
    try:
        out = sweep(Path(args.run), config, show_progress=not args.quiet, executor=executor)
    except Cancelled:
        return _cancelled(args)
    finally:
        executor.close()
    report(args.job_file, exit_code=0, message="sweep done")
    _print_sweep_summary(out)
    print(out)
    return 0


def _print_sweep_summary(trials_file: Path) -> None:
    """The sweep's accuracy and paired differences to random with 95% CIs, on stderr."""
    import pandas as pd

    from scoring import store
    from scoring.prune.sweeps import format_summary

    summary = pd.read_parquet(store.SweepDir(trials_file.parent).summary_file)
    print(format_summary(summary), file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    """A run from files (`scoring.record_import`), written by the same Recorder as live runs."""
    from scoring import record_import

    if not args.name.strip():
        raise InputError("--name must be a non-empty text")
    dataset = None
    if args.dataset is not None:
        dataset = data_config_from_args(args)
        ScoreConfig(data=dataset).validate()
    elif any(v is not None for v in (args.test, args.input_col, args.label_col, args.limit)):
        raise InputError("--test, --input-col, --label-col and --limit go with --dataset")
    imported = record_import.load_files(
        args.logits,
        eval_logits=args.eval_logits,
        test_logits=args.test_logits,
        features=args.features,
        oof=args.oof,
    )
    if imported.labels is None and dataset is None:
        raise InputError(
            "no labels: add a `label` column (array) to the logits file, or give "
            "--dataset SOURCE whose labels the ids name"
        )
    from scoring.training.recorder import Recorder

    recorder = Recorder(
        _cache_dir(args),
        args.name,
        imported.ids,
        imported.labels,  # None: the linked source's labels
        imported.n_classes,
        parse_names(args.label_names),
        dataset=dataset,
        early_epoch=args.early_epoch,
        kind="imported",
    )
    path = imported.feed(recorder)
    _print_score_summary(path)
    print(path)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from scoring.store import list_runs

    runs = list_runs(_cache_dir(args))
    if not runs:
        print(f"no runs in {_cache_dir(args)}", file=sys.stderr)
        return 0
    rows = [_LIST_COLUMNS]
    for r in runs:
        when = r.created if r.created is not None else r.updated
        budget = f"{r.runs}×{r.epochs}" if r.runs and r.epochs else ""
        old = "" if r.version_ok or r.problems else " (older version)"
        rows.append(
            (
                datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M"),
                r.name or "",
                r.state + old,
                r.dataset,
                r.recipe or "",
                budget,
                r.preset or "",
                f"{r.noise:.0%}" + (f" {r.noise_kind}" if r.noise_kind else "") if r.noise else "",
                str(r.n_train) if r.n_train is not None else "",
                f"{r.test_accuracy:.3f}" if r.test_accuracy is not None else "",
                str(r.path),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_LIST_COLUMNS) - 1)]
    for i, row in enumerate(rows):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1])
        run = runs[i - 1] if i else None
        if run is not None and run.problems:  # a damaged run: which file, why, what to do
            print(f"    {run.problem}; {run.fix}")
    return 0


_LIST_COLUMNS = (
    "created",
    "name",
    "state",
    "dataset",
    "recipe",
    "runs×epochs",
    "preset",
    "noise",
    "n_train",
    "test_acc",
    "path",
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `winnow` and `python -m scoring`; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    report(getattr(args, "job_file", None), pid=os.getpid())  # the app polls and cancels it
    command = {
        "score": cmd_score,
        "suspects": cmd_suspects,
        "decide": cmd_decide,
        "list": cmd_list,
        "map": cmd_map,
        "export": cmd_export,
        "sweep": cmd_sweep,
        "import": cmd_import,
    }[args.command]
    try:
        _check_config_flags(parser, args)
        return command(args)
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


if __name__ == "__main__":
    sys.exit(main())
