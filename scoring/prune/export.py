"""Write a selected subset of a run's training data out, with a manifest that reproduces it.

`export_selection` plans the selection over a finished run (`plan.plan_selection`: the
user's decisions first when asked, drops removed and relabels applied; then, when the
selection asks, training rows that leak a held-out/test row and all but one row per duplicate
group are left out (`--drop-leaks`, `--drop-duplicates`: the manifest's `pre_steps` counts
them); then the rule), reads
the kept rows' ORIGINAL source columns back (`data.source_rows`), adds the example `id` and
one column per score, and writes one of:

- ``parquet``: one file; image columns stay HF ``Image`` structs with the bytes embedded
  (files an image folder only pointed to are read in), ClassLabel columns stay ClassLabel;
  ``datasets.load_dataset("parquet", ...)`` restores both.
- ``csv`` / ``jsonl``: one file; each image column holds the base64 (standard alphabet) of the
  image file's bytes exactly as the source stored them (PNG for ``digits``; JPEG/PNG/... as
  the source had them), and a ``<column>_path`` column holds the source's image path when it
  had one. ClassLabel columns are written as their integer ids (names in the manifest).
- ``hf``: a folder written with ``Dataset.save_to_disk`` (images embedded as for parquet);
  ``datasets.load_from_disk`` reads it.

Labels are the source's own, in the source's own column and representation (a ClassLabel
column gets the class id, a string column the label name, a numeric column the number);
labels injected by a run's ``--noise`` check are not part of the data and are not exported.
A relabel decision writes the new class there and the whole export gains an
``original_label`` column. Column names the source already uses get a ``winnow_`` prefix
(see the manifest's ``columns``).

Several annotators (a run scored with ``--annotator-cols`` or ``--annotations``): when the
label was their majority vote there is no label column in the source, so a ``label`` column
(class names) is added; ``consensus_label=True`` writes CROWDLAB's consensus label instead of
the given one on the training rows (a relabel decision still wins), with ``original_label``
holding the given label; the votes are kept (the annotator columns are source columns; an
``--annotations`` file's votes are added as one column per annotator, class names).

The manifest (``<out>.manifest.json`` beside a file, ``manifest.json`` inside an ``hf``
folder) is written after the data, so its presence means the export is complete. Outputs
never overwrite anything without ``force``, never follow ``..`` out of the folder named, and
appear at once: data goes to a temp sibling first and is moved into place with
`os.replace` / `os.rename`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import shlex
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scoring import data, store
from scoring.config import ScoreConfig
from scoring.errors import InputError
from scoring.prune.plan import SelectionPlan, plan_selection
from scoring.prune.rules import RULES
from scoring.prune.select import SelectionConfig
from scoring.read import decisions
from scoring.read.views import RunView, load_run

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

FORMATS = {
    "parquet": "one .parquet file (images embedded as HF Image structs)",
    "csv": "one .csv file (images as base64 of their original bytes)",
    "jsonl": "one .jsonl file (images as base64 of their original bytes)",
    "hf": "a datasets folder written by save_to_disk (images embedded)",
}
IMAGES = {
    "parquet": "HF Image struct {bytes, path}: the source's encoded bytes, embedded",
    "hf": "HF Image struct {bytes, path}: the source's encoded bytes, embedded",
    "csv": "base64 of the source's encoded image bytes; <column>_path = source path if any",
    "jsonl": "base64 of the source's encoded image bytes; <column>_path = source path if any",
}
MANIFEST_VERSION = 1
_PREFIX = "winnow_"  # for our columns whose names the source already uses


def rows_blocker(config: dict[str, Any]) -> str | None:
    """Why the run with `config.json` `config` has no rows to write, or None when it has.

    An export reads the rows from the run's data source; a run recorded from the user's own
    training (`scoring.record.Recorder`) or imported without one (`--dataset`) names none.
    """
    source = ((config.get("config") or {}).get("data") or {}).get("source")
    if source:
        return None
    how = store.run_source(config)
    return (
        f"This run was {how} without a data source, so there are no rows to write. Record "
        "it with `Recorder(..., dataset=SOURCE)` or import it with `--dataset SOURCE` to "
        "export rows; its ids and scores are written by `winnow suspects --run RUN --format "
        "csv`."
    )


# Longer than 60 lines: the public entry's docstring names every option an export takes;
# the body is twenty lines of steps, each a call.
def export_selection(
    run: Path | str,
    selection: SelectionConfig,
    *,
    fmt: str,
    out: Path | str,
    apply_decisions: bool = False,
    force: bool = False,
    base: Path | str | None = None,
    consensus_label: bool = False,
) -> Path:
    """Write the examples `selection` keeps from `run`, with ids, scores and a manifest.

    Parameters
    ----------
    run : path of a finished run folder
    selection : SelectionConfig
        Rule, score, fraction, normalization, offset, seed, ... (see `scoring.prune.select`).
    fmt : "parquet" | "csv" | "jsonl" | "hf"
    out : path
        The file to write (parquet/csv/jsonl) or the folder (hf). Relative paths are taken
        relative to `base` when given, else to the working directory.
    apply_decisions : bool
        Drop the examples the run's decisions drop and apply its relabels.
    force : bool
        Replace an existing export at `out` (never a non-empty folder that is not a dataset).
    base : path, optional
        A folder `out` must resolve inside (the app's export folder).
    consensus_label : bool
        A run with several annotators: write CROWDLAB's consensus label as the label of the
        training rows (relabel decisions still win), the given label as `original_label`.

    Returns
    -------
    Path
        The absolute path written (the file, or the hf folder).

    Raises
    ------
    InputError
        Unknown format, an unsafe or occupied `out`, a run that is not finished, a bad
        selection, a selection left empty by the decisions, or a source that changed.
    """
    _check_format(fmt)
    target = resolve_out(out, base=base)
    manifest_file = manifest_path(target, fmt)
    _check_free(target, manifest_file, fmt, force)
    view = _finished_run(run, consensus_label)
    plan = plan_selection(view, selection, decisions.latest(view.path) if apply_decisions else None)
    table, columns = _build_table(view, plan, consensus_label)
    if fmt in ("csv", "jsonl"):
        table = _images_as_text(table)
    how = (apply_decisions, consensus_label)  # the manifest says both
    manifest = _manifest(view, selection, plan, columns, fmt, target, how)

    import datasets as hf_datasets

    hf_datasets.disable_progress_bars()
    if fmt == "hf":
        _write_folder(table, target, manifest)
    else:
        _write_file(table, fmt, target, manifest_file, manifest)
    return target


def _check_format(fmt: str) -> None:
    """Refuse an unknown format, listing the formats and what each writes."""
    if fmt not in FORMATS:
        raise InputError(
            f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)} "
            f"({'; '.join(f'{k}: {v}' for k, v in FORMATS.items())})"
        )


def _finished_run(run: Path | str, consensus_label: bool = False) -> RunView:
    """The run, refused (InputError) when it is not finished or has no rows to write (or
    no consensus labels when they are asked for)."""
    status = store.read_status(Path(run))
    if status is not None and status["state"] != "done":  # say why, and how to finish it
        raise InputError(f"cannot export {run}: {store.unfinished_reason(run)}")
    view = load_run(run)
    blocker = rows_blocker(view.config)
    if blocker:
        raise InputError(blocker)
    if consensus_label and "consensus_label" not in view.table.columns:
        raise InputError(
            f"{run} has no consensus labels: score it with several annotators "
            "(--annotator-cols or --annotations) to export them"
        )
    return view


def manifest_path(out: Path, fmt: str) -> Path:
    """Where the manifest of an export at `out` lives."""
    return out / "manifest.json" if fmt == "hf" else out.with_name(out.name + ".manifest.json")


def resolve_out(out: Path | str, *, base: Path | str | None = None) -> Path:
    """The absolute path to write, refusing paths that leave the folder the user named.

    A ``..`` component is refused outright (it is how a path climbs out of the folder it
    names); with `base`, the resolved path (symbolic links followed) must also lie inside
    `base`. The last component is kept as given, so an existing link there is not followed.
    """
    given = Path(out).expanduser()
    if ".." in given.parts:
        raise InputError(
            f"export path {str(out)!r} contains '..'; name the folder directly "
            "(exports stay inside the folder you point at)"
        )
    if given.name in ("", "."):
        raise InputError(f"export path {str(out)!r} names no file or folder; add a name")
    if base is None:
        _refuse_linked_folder(given, out)
        return given.parent.resolve() / given.name
    root = Path(base).expanduser().resolve()
    target = (root / given).parent.resolve() / given.name
    if not target.is_relative_to(root):
        raise InputError(
            f"export path {str(out)!r} resolves to {target}, outside the export folder {root}; "
            "pick a path inside it"
        )
    return target


def _refuse_linked_folder(given: Path, out: Path | str) -> None:
    """Refuse a folder of the path that is a symbolic link: the export would land in the
    link's target, not in the folder named. Top-level links of an absolute path (/tmp ->
    /private/tmp on macOS) are the system's, not a folder the user picked, and pass."""
    parts = given.parent.parts
    first = 2 if given.is_absolute() else 1
    for n in range(first, len(parts) + 1):
        folder = Path(*parts[:n])
        if folder.is_symlink():
            raise InputError(
                f"export path {str(out)!r} goes through the symbolic link {folder} (to "
                f"{folder.resolve()}); name the folder it points to, or a real folder"
            )


# --- rows --------------------------------------------------------------------------------


def _build_table(
    view: RunView, plan: SelectionPlan, consensus: bool = False
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Source rows + relabels + `original_label` + `id` + scores, and the column names used."""
    import datasets as hf_datasets
    import pyarrow as pa

    config = view.config
    described = config["dataset"]
    cfg = ScoreConfig.from_dict(config["config"]).data
    kept = plan.positions  # (n,) training rows
    n_train = kept.shape[0]
    # Rule `all` adds the carved held-out rows: row ids of the same source table.
    ids = np.concatenate([view.table["id"].to_numpy(np.int64)[kept], plan.heldout_ids])  # (n,)
    source = data.source_rows(
        cfg,
        ids,
        hf_cache_dir=str(store.RunDir(Path(view.path).resolve()).hf_cache_dir),
        fingerprint=described["fingerprint"],
    )
    features = source.features.copy()
    table = _embed_images(source.data.table, data.image_columns(features))
    taken = set(table.column_names)
    label_col = described["label_col"]
    columns: dict[str, Any] = {"label": label_col, "original_label": None}
    labels = _labels_out(view, plan, consensus)
    if label_col is None:  # the annotators' majority vote: no source column holds it
        label_col = columns["label"] = _free_name("label", taken)
        table = table.append_column(label_col, pa.array([view.label_names[i] for i in labels[1]]))
        features[label_col] = hf_datasets.Value("string")
    table, columns["original_label"] = _relabel(view, labels, table, features, label_col, taken)
    if cfg.annotations is not None:
        table, columns["annotators"] = _append_votes(view, plan, table, features, taken)
    name = columns["id"] = _free_name("id", taken)
    table = table.append_column(name, pa.array(ids, type=pa.int64()))
    features[name] = hf_datasets.Value("int64")
    name = columns["split"] = _free_name("split", taken)
    split = ["train"] * n_train + ["heldout"] * plan.n_heldout
    table = table.append_column(name, pa.array(split, type=pa.string()))
    features[name] = hf_datasets.Value("string")
    table, columns["scores"] = _append_scores(view, plan, table, features, taken)
    columns["inputs"] = list(described["input_cols"])
    columns["images"] = data.image_columns(features)

    from datasets.table import InMemoryTable

    info = hf_datasets.DatasetInfo(features=features)
    return hf_datasets.Dataset(InMemoryTable(table), info=info), columns


def _labels_out(
    view: RunView, plan: SelectionPlan, consensus: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What each written row's label becomes: (final, original, changed), each (n,).

    `final`: relabels applied, and with `consensus` CROWDLAB's consensus label on the
    training rows a decision did not relabel; `original`: the source's (given) label.
    """
    final = np.concatenate([plan.final_labels[plan.kept], plan.heldout_final])  # (n,)
    original = np.concatenate([plan.original_labels[plan.kept], plan.heldout_original])
    if consensus:
        agreed = view.table["consensus_label"].to_numpy(np.int64)[plan.positions]  # (n_kept,)
        decided = plan.relabelled[plan.kept]
        final[: plan.n_kept] = np.where(decided, final[: plan.n_kept], agreed)
    return final, original, final != original


def _append_votes(
    view: RunView,
    plan: SelectionPlan,
    table: pa.Table,
    features: datasets.Features,
    taken: set[str],
) -> tuple[pa.Table, dict[str, str]]:
    """An --annotations file's votes, one column per annotator (class names, None = no
    vote); returns the table and annotator -> column name."""
    import datasets as hf_datasets
    import pyarrow as pa

    rd = store.RunDir(Path(view.path))
    found, split = rd.read_votes(), rd.read_split()
    if found is None:
        return table, {}
    test_pos = pd.Index(split.test_ids).get_indexer(plan.heldout_ids)  # (H,)
    votes = np.concatenate([found.votes[plan.positions], found.test_votes[test_pos]])  # (n, A)
    names, out = view.label_names, {}
    for a, annotator in enumerate(str(v) for v in found.annotators):
        name = out[annotator] = _free_name(annotator, taken)
        cells = [names[v] if v >= 0 else None for v in votes[:, a]]
        table = table.append_column(name, pa.array(cells, type=pa.string()))
        features[name] = hf_datasets.Value("string")
    return table, out


def _relabel(
    view: RunView,
    labels: tuple[np.ndarray, np.ndarray, np.ndarray],
    table: pa.Table,
    features: datasets.Features,
    label_col: str,
    taken: set[str],
) -> tuple[pa.Table, str | None]:
    """Changed labels (`_labels_out`) written into the label column, the source's values
    kept beside.

    Returns the table and the name of its added original-label column (None when no written
    row changed, and nothing is added); `features` and `taken` gain that column.
    """
    import pyarrow as pa

    final, _, relabelled = labels
    if not relabelled.any():
        return table, None
    feature, original = features[label_col], table.column(label_col)
    values = original.to_pylist()
    for i in np.flatnonzero(relabelled):
        label = int(final[i])
        values[i] = data.label_value(feature, view.label_names, label)
    at = table.column_names.index(label_col)
    table = table.set_column(at, label_col, pa.array(values, type=original.type))
    name = _free_name("original_label", taken)
    table = table.append_column(name, original)
    features[name] = feature
    return table, name


def _append_scores(
    view: RunView,
    plan: SelectionPlan,
    table: pa.Table,
    features: datasets.Features,
    taken: set[str],
) -> tuple[pa.Table, dict[str, str]]:
    """One column per score of the run (bool or float64); `features` and `taken` gain them.

    Returns the table and score key -> column name.
    """
    import datasets as hf_datasets
    import pyarrow as pa

    held = _heldout_scores(view, plan)
    names = {}
    for key in view.score_keys:
        values = view.table[key].to_numpy()[plan.positions]
        if plan.n_heldout:  # held-out rows: their own cl_* (same definition), else missing
            other = held.get(key, np.full(plan.n_heldout, np.nan))
            values = np.concatenate([values.astype(np.float64), other])
        dtype = "bool" if values.dtype == bool else "float64"
        name = names[key] = _free_name(key, taken)
        table = table.append_column(name, pa.array(values.astype(dtype)))
        features[name] = hf_datasets.Value(dtype)
    return table, names


def _heldout_scores(view: RunView, plan: SelectionPlan) -> dict[str, np.ndarray]:
    """cl_quality and cl_issue of the plan's held-out rows (`heldout.parquet`), by score key."""
    if not plan.n_heldout:
        return {}
    held = store.RunDir(view.path).read_heldout()
    if held is None:
        return {}
    at = held.set_index("id").loc[plan.heldout_ids]
    return {k: at[k].to_numpy(np.float64) for k in ("cl_quality", "cl_issue") if k in at}


def _free_name(name: str, taken: set[str]) -> str:
    """`name`, or `winnow_name` (then `winnow_name_2`, ...) when the source already has it."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{_PREFIX}{name}" if n == 2 else f"{_PREFIX}{name}_{n - 1}"
    taken.add(candidate)
    return candidate


def _embed_images(table: pa.Table, columns: list[str]) -> pa.Table:
    """Read the files behind path-only image cells (image folders) into their `bytes`."""
    import pyarrow as pa

    for col in columns:
        cells = table.column(col).to_pylist()
        if not any(c and c.get("bytes") is None and c.get("path") for c in cells):
            continue
        for cell in cells:
            if cell and cell.get("bytes") is None and cell.get("path"):
                try:
                    cell["bytes"] = Path(cell["path"]).read_bytes()
                except OSError as error:
                    raise InputError(
                        f"cannot read image {cell['path']} of column {col!r}: {error}; "
                        "restore the file or score the source again"
                    ) from error
        at = table.column_names.index(col)
        table = table.set_column(at, col, pa.array(cells, type=table.schema.field(col).type))
    return table


def _images_as_text(table: datasets.Dataset) -> datasets.Dataset:
    """For csv/jsonl: image columns -> base64 of their bytes, plus `<col>_path` if any."""
    import datasets as hf_datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    features = dict(table.features)
    arrow = table.data.table
    taken = set(arrow.column_names)
    for col in data.image_columns(table.features):
        cells = arrow.column(col).to_pylist()
        encoded = [
            base64.b64encode(c["bytes"]).decode("ascii") if c and c.get("bytes") else None
            for c in cells
        ]
        at = arrow.column_names.index(col)
        arrow = arrow.set_column(at, col, pa.array(encoded, type=pa.string()))
        features[col] = hf_datasets.Value("string")
        paths = [c.get("path") if c else None for c in cells]
        if any(paths):
            name = _free_name(f"{col}_path", taken)
            arrow = arrow.add_column(at + 1, name, pa.array(paths, type=pa.string()))
            features[name] = hf_datasets.Value("string")
    ordered = hf_datasets.Features({col: features[col] for col in arrow.column_names})
    return hf_datasets.Dataset(InMemoryTable(arrow), info=hf_datasets.DatasetInfo(features=ordered))


# --- manifest ----------------------------------------------------------------------------


# Longer than 60 lines: one dict literal, the manifest's schema, read top to bottom in the
# order its keys are written; splitting it would scatter that schema over several functions.
def _manifest(
    view: RunView,
    selection: SelectionConfig,
    plan: SelectionPlan,
    columns: dict[str, Any],
    fmt: str,
    target: Path,
    how: tuple[bool, bool],
) -> dict[str, Any]:
    """Everything needed to know what this export is and to make it again; `how`: whether
    the decisions were applied and whether the label column holds the consensus label."""
    with_decisions, consensus = how
    config, described = view.config, view.config["dataset"]
    names = view.label_names
    counts = plan.written_per_class(len(names))  # (K,)
    ids = np.concatenate([view.table["id"].to_numpy(np.int64)[plan.positions], plan.heldout_ids])
    dropped = plan.n_dropped_all  # removed before selecting: the fraction is of what remains
    relabelled = plan.n_relabelled
    data_config = config["config"]["data"]
    return {
        "manifest_version": MANIFEST_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "format": fmt,
        "path": str(target),
        "rows": plan.n_written,
        "splits": {"train": plan.n_kept, "heldout": plan.n_heldout},
        "counts_per_class": {name: int(c) for name, c in zip(names, counts, strict=True)},
        "empty_classes": [name for name, c in zip(names, counts, strict=True) if c == 0],
        "source": {
            "name": view.dataset_name,  # as people know it: an upload's own file name
            "description": described["description"],
            "path": data_config["source"],
            "test": data_config.get("test"),
            "fingerprint": described["fingerprint"],
            "modality": described["modality"],
            "input_cols": list(described["input_cols"]),
            "label_col": described["label_col"],
            "label_names": names,
            "data_config": data_config,
        },
        "run": {
            "key": config["key"],
            "folder": str(Path(view.path).resolve()),
            "scoring_version": config["scoring_version"],
            "git_revision": config.get("git_revision"),
            "noise": config["config"].get("noise"),
        },
        "selection": selection.to_dict(),
        "seed": selection.seed,
        "selected": plan.n_written,
        "apply_decisions": with_decisions,
        "decisions": {
            "applied": dropped + relabelled,
            "dropped": dropped,
            "relabelled": relabelled,
            "in_run": plan.n_decisions,
        },
        # After the decisions, before the rule (`plan.plan_selection`): training rows only.
        "pre_steps": {
            "drop_duplicates": selection.drop_duplicates or RULES[selection.rule].dedups,
            "drop_leaks": selection.drop_leaks,
            "duplicates_dropped": plan.n_duplicates_dropped,
            "leaks_dropped": plan.n_leaks_dropped,
            "kept_of_group": "the lowest id among the group's rows still in play",
        },
        "columns": columns,
        "images": IMAGES[fmt] if columns["images"] else None,
        "labels": (
            "the source's own labels in its own column and representation (injected --noise "
            "labels are not exported), with relabel decisions applied"
        ),
        "consensus_label": consensus,  # the label column holds CROWDLAB's consensus label
        "ids_sha256": hashlib.sha256(ids.tobytes()).hexdigest(),
        "reproduce": _command(view.path, selection, fmt, target, with_decisions)
        + (" --consensus-label" if consensus else ""),
    }


def _command(
    run: Path, selection: SelectionConfig, fmt: str, target: Path, with_decisions: bool
) -> str:
    """The CLI line that makes this export again (the offset as the number it resolved to)."""
    args = ["python", "-m", "scoring", "export", "--run", str(Path(run).resolve())]
    args += selection.cli_args()
    if RULES[selection.rule].keeps_all:  # the CLI applies the decisions unless told not to
        if not with_decisions:
            args.append("--no-decisions")
    else:
        args += ["--fraction", repr(float(selection.fraction)), "--seed", str(selection.seed)]
        if with_decisions:
            args.append("--apply-decisions")
    args += ["--format", fmt, "--out", str(target)]
    return shlex.join(args)


# --- writing -----------------------------------------------------------------------------


def _check_free(target: Path, manifest_file: Path, fmt: str, force: bool) -> None:
    """Refuse to replace anything without `force`, and some things even with it."""
    if target.is_symlink():
        raise InputError(f"{target} is a symbolic link; exports do not write through links")
    if fmt != "hf" and target.is_dir():
        raise InputError(f"{target} is a folder; a {fmt} export is one file: name a file")
    occupied = [p for p in (target, manifest_file) if os.path.lexists(p)]
    if occupied and not force:
        raise InputError(
            f"{occupied[0]} already exists; pass --force to overwrite it, or pick another path"
        )
    if fmt == "hf" and target.is_dir() and any(target.iterdir()):
        looks_like_dataset = any(
            (target / name).exists() for name in ("manifest.json", "dataset_info.json")
        )
        if not looks_like_dataset:
            raise InputError(
                f"{target} is a folder that does not hold a dataset export; refusing to "
                "replace it even with --force: pick a new folder name"
            )


def _write_file(
    table: datasets.Dataset,
    fmt: str,
    target: Path,
    manifest_file: Path,
    manifest: dict[str, Any],
) -> None:
    """Write to a temp sibling, move it into place, then write the manifest."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if fmt == "parquet":
            table.to_parquet(tmp)
        elif fmt == "csv":
            table.to_csv(tmp, index=False)
        else:
            _write_jsonl(table, Path(tmp))
        _fsync(Path(tmp))
        os.chmod(tmp, 0o644)
        # An old manifest must not describe the new data, even for a moment.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(manifest_file)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    store.write_json(manifest_file, manifest)
    os.chmod(manifest_file, 0o644)  # mkstemp made it owner-only; an export is for sharing


def _write_folder(table: datasets.Dataset, target: Path, manifest: dict[str, Any]) -> None:
    """save_to_disk into a temp sibling folder (manifest last), then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    old = None
    try:
        table.save_to_disk(str(tmp))
        store.write_json(tmp / "manifest.json", manifest)
        os.chmod(tmp / "manifest.json", 0o644)  # mkstemp/mkdtemp made them owner-only
        os.chmod(tmp, 0o755)
        if os.path.lexists(target):  # `_check_free` allowed it: force was given
            old = target.with_name(f".{target.name}.{os.getpid()}.old")
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        if old is not None and not os.path.lexists(target):
            os.rename(old, target)  # put the previous export back
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(old)


def _write_jsonl(table: datasets.Dataset, path: Path) -> None:
    """One JSON object per row; floats keep every digit (pandas' writer rounds to 10)."""
    with path.open("w", encoding="utf-8") as file:
        for batch in table.data.table.to_batches(max_chunksize=1000):
            for row in batch.to_pylist():
                record = {k: _json_value(v) for k, v in row.items()}
                file.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")


def _json_value(value: Any) -> Any:
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    """Bytes (a binary column besides the images) as base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
