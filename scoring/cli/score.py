"""`winnow score`: train, record and score a dataset (cached); prints the run folder last."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoring.cli.common import (
    add_cache_dir_arg,
    add_config_arg,
    add_data_args,
    add_executor_args,
    add_job_file_arg,
    add_quiet_arg,
    cache_dir,
    cancel_on_signals,
    cancelled,
    data_config_from_args,
    executor,
    print_run_summary,
    read_config,
    report,
    required_unless_config,
)
from scoring.config import (
    PRESET_FIELDS,
    PRESETS,
    GradConfig,
    NoiseConfig,
    ScoreConfig,
    TrainConfig,
    apply_preset,
    parse_names,
)
from scoring.errors import Cancelled


def add_parser(sub: Any) -> None:
    """Add `score` and its flags to `sub` (the subparsers of `winnow`)."""
    s = sub.add_parser("score", help="train, record and score a dataset (cached)")
    _add_data_flags(s)
    _add_training_flags(s)
    _add_noise_flags(s)
    _add_score_flags(s)
    _add_job_flags(s)
    required_unless_config(s)


def _add_data_flags(s: argparse.ArgumentParser) -> None:
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
    add_data_args(
        s,
        {
            "test": "separate held-out file (else the source's test split or a carved one)",
            "input_col": "input column; two comma-separated names = sentence pair",
            "label_col": "label column",
            "limit": "stratified, seeded subset of N training examples",
            "test_fraction": "held-out share carved when the source has no test split "
            "(default 0.2)",
        },
    )


def _add_training_flags(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--recipe",
        default="auto",
        help="auto | mlp | cnn | cnn32 | resnet18 | probe | tfidf | finetune (tfidf: text, "
        "TF-IDF of word 1-2-grams reduced to 512 SVD components + the probe's head); or a "
        "comma list of 2+ (e.g. tfidf,probe): each family's runs, scored as one run",
    )
    s.add_argument(
        "--model",
        help="pretrained encoder (HF name or local folder): text for probe and finetune "
        "(default: the bundled MiniLM), or an image encoder (ViT, DINOv2, CLIP, ConvNeXt) for "
        "an image probe (default: the bundled EfficientNet-Lite0, efficientnet-lite0)",
    )
    s.add_argument(
        "--max-length",
        type=int,
        help="text: tokens kept per example, a pair's two parts together (default 128); "
        "with --long-text chunk, tokens per window",
    )
    s.add_argument(
        "--long-text",
        default="chunk",
        help="text longer than --max-length tokens, as the encoder embeds it (probe, and the "
        "label-free embeddings): chunk (default; all of it, as windows of --max-length tokens "
        "overlapping by a quarter, averaged) | truncate (its first --max-length tokens)",
    )
    s.add_argument("--runs", type=int, help="independent runs R (default 5)")
    s.add_argument("--epochs", type=int, help="epochs per run (default: the recipe's)")
    s.add_argument("--early-epoch", type=int, help="EL2N's epoch (default about 10%% of epochs)")
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--seed", type=int, default=0, help="base seed; run r uses seed + r")


def _add_noise_flags(s: argparse.ArgumentParser) -> None:
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


def _add_score_flags(s: argparse.ArgumentParser) -> None:
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


def _add_job_flags(s: argparse.ArgumentParser) -> None:
    """Where and how the run is computed, and `--config` instead of the flags above."""
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add_config_arg(
        s,
        "the whole run as JSON (a ScoreConfig, as the app's jobs send it) instead of the "
        "flags above",
    )
    add_cache_dir_arg(s)
    s.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="tiny: a few epochs and 2 runs, for a first look in seconds (default: default); "
        "beside --config, only recorded as the preset the config was made with",
    )
    add_executor_args(s)
    add_quiet_arg(s)
    add_job_file_arg(s)  # kept current for the app's jobs


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    """The run `score`'s flags (or its `--config` file) describe, the preset applied.

    Parameters
    ----------
    args : Namespace
        Parsed flags of `score`.

    Returns
    -------
    ScoreConfig
        Validated.

    Raises
    ------
    InputError
        An unreadable `--config` file or a config that does not validate.
    """
    if getattr(args, "config", None):
        return ScoreConfig.from_dict(read_config(args.config)).validate()
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
            long_text=args.long_text,
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


def run(args: argparse.Namespace) -> int:
    """Compute (or find cached) the run; print its summary on stderr and its folder last.

    The source and the named columns are checked from their headers first (the same check
    the app's form runs, `data.sources.check_source`): a wrong path is one line in well under
    a second, not after torch has loaded. Until the run writes its own status, the job file
    says which stage is running (loading libraries, then reading data).
    """
    from scoring.data.sources import check_source

    config = config_from_args(args)
    check_source(config.data)
    report(args.job_file, stage="loading libraries")  # torch and the models: seconds
    from scoring.training.pipeline import score

    cancel_on_signals()
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
        # The source's name for people (an upload's own file name) is a label like the run's
        # name: the newest call's wins, so a re-upload under another name renames the data.
        RunDir(path).write_meta(name=name, preset=preset, source_name=config.data.source_name)
        report(args.job_file, run=str(path), stage="setting up the run")

    job_executor = executor(args, config.train.device)
    report(args.job_file, stage="reading data")  # prepare: load, check, resolve the recipe
    try:
        path = score(
            config,
            cache_dir(args),
            show_progress=not args.quiet,
            on_wait=on_wait,
            on_prepared=on_prepared,
            executor=job_executor,
        )
    except Cancelled:
        return cancelled(args)
    finally:
        job_executor.close()
    report(args.job_file, exit_code=0, message="done")
    print_run_summary(path)
    print(path)
    return 0
