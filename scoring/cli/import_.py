"""`winnow import`: a run from your own training's files (`scoring.record_import`).

Named `import_` because `import` is a keyword. The run is written by the same `Recorder` as
live runs, so every page and command reads it as one of theirs.
"""

from __future__ import annotations

import argparse
from typing import Any

from scoring.cli.common import (
    add_cache_dir_arg,
    add_data_args,
    cache_dir,
    data_config_from_args,
    print_run_summary,
)
from scoring.config import ScoreConfig, parse_names
from scoring.errors import InputError

# Only with --dataset: they say which rows of the source the ids are.
_DATA_HELPS = {
    "test": "with --dataset: its separate held-out file",
    "input_col": "with --dataset: input column(s)",
    "label_col": "with --dataset: label column",
    "limit": "with --dataset: as `score --limit`",
    "test_fraction": "with --dataset",
    "split_seed": "with --dataset",
    "annotator_cols": "not for import (several annotators need `winnow score`)",
    "annotations": "not for import (several annotators need `winnow score`)",
}


def add_parser(sub: Any) -> None:
    """Add `import` and its flags to `sub` (the subparsers of `winnow`)."""
    i = sub.add_parser(
        "import",
        help="a run from your own training's files: per-epoch logits, out-of-fold "
        "probabilities, features (.npz or .parquet with an id column)",
    )
    i.add_argument("--name", required=True, help="the run's name in lists and captions")
    _add_file_flags(i)
    i.add_argument("--label-names", help="comma-separated class names (default 0..K-1)")
    i.add_argument(
        "--early-epoch", type=int, help="EL2N's epoch (default about 10%% of the epochs)"
    )
    i.add_argument(
        "--dataset",
        help="the data source the ids are rows of (as `score --dataset`): pages show the "
        "rows and export writes them; it also gives the labels",
    )
    add_data_args(i, _DATA_HELPS)
    add_cache_dir_arg(i)


def _add_file_flags(i: argparse.ArgumentParser) -> None:
    """The files read: their layouts are `scoring.record_import`'s."""
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
        "--features-label-free",
        action="store_true",
        help=(
            "the --features come from a model that never saw the labels (e.g. a frozen "
            "pretrained encoder): prototype and the neighbourhood scores then read them"
        ),
    )
    i.add_argument(
        "--oof",
        metavar="FILE",
        help="out-of-fold probabilities from your cross-validation: id, probs (cleanlab)",
    )


def run(args: argparse.Namespace) -> int:
    """Read and check the files, record them as a run; print its summary and folder last."""
    from scoring import record_import

    if not args.name.strip():
        raise InputError("--name must be a non-empty text")
    dataset = None
    if args.annotator_cols is not None or args.annotations is not None:
        raise InputError(
            "--annotator-cols and --annotations work with `winnow score` only (an imported "
            "run has no annotator scores yet); import the run without them"
        )
    if args.features_label_free and args.features is None:
        raise InputError("--features-label-free goes with --features FILE")
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
        features_label_free=args.features_label_free,
    )
    if imported.labels is None and dataset is None:
        raise InputError(
            "no labels: add a `label` column (array) to the logits file, or give "
            "--dataset SOURCE whose labels the ids name"
        )
    from scoring.record import Recorder  # the public name: torch loads only now

    recorder = Recorder(
        cache_dir(args),
        args.name,
        imported.ids,
        imported.labels,  # None: the linked source's labels
        imported.n_classes,
        parse_names(args.label_names),
        dataset=dataset,
        early_epoch=args.early_epoch,
        kind="imported",
    )
    try:
        path = imported.feed(recorder)
    except InputError:
        recorder.discard()  # nothing to retry from: the files are what they are
        raise
    print_run_summary(path)
    print(path)
    return 0
