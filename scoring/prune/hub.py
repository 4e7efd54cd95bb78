"""Write a run's cleaned (or selected) rows as a Hugging Face Hub dataset folder, with its card.

`write_hub_dir` lays a folder out as the Hub and `datasets.load_dataset(FOLDER)` read it:

- ``data/train-00000-of-0000N.parquet``: the training rows, in shards of at most
  `SHARD_BYTES` of Arrow data each (a small dataset is one shard);
- ``data/test-00000-of-0000M.parquet``: the held-out rows, when the export has any (rule
  `all` on a run whose held-out split was carved from the same source). The Hub calls such
  a split ``test``; the rows keep Winnow's ``split`` column (``heldout``) as every export does;
- ``winnow_manifest.json``: the export's manifest (`scoring.prune.export`), its ``format``
  ``hub``, ``path`` the folder, ``hub_splits`` the shards and rows of each Hub split and
  ``reproduce`` the ``--hub-dir`` command;
- ``README.md``: the dataset card (`dataset_card`), written last: its presence means complete.

The rows are the export's own: `export_selection` writes one parquet file into the folder's
temporary sibling and the shards are cut from it, so they hold the same columns and features
as ``--format parquet`` (images as HF ``Image``, ClassLabel labels with the run's names),
and the card's ``dataset_info`` repeats those features so the Hub shows them.

`push_to_hub` uploads such a folder as a dataset repository (`HfApi.upload_folder`).
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring import store
from scoring.errors import InputError
from scoring.prune.export import export_selection, manifest_path, resolve_out
from scoring.prune.rules import PARAMETERS, RULES
from scoring.prune.select import SelectionConfig
from scoring.read.views import RunView, load_run

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa
    from huggingface_hub import DatasetCard

SHARD_BYTES = 500 * 1000**2  # datasets' own `push_to_hub` default shard size ("500MB")
MANIFEST_NAME = "winnow_manifest.json"
CARD_NAME = "README.md"
DATA_DIR = "data"
HUB_SPLITS = {"train": "train", "heldout": "test"}  # the export's split value -> Hub split
TASKS = {"image": "image-classification", "text": "text-classification"}
# The Hub's size buckets (upper bound exclusive), as its dataset search filters them.
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
)
TAGS = ["winnow", "data-quality", "cleaned"]
LICENSE_NOTE = (
    "**License: not set.** `license: other` in the metadata above is a placeholder: replace "
    "it with the license of the source data (and `license_name` / `license_link` if it is "
    "not a standard one) before you share this dataset."
)


def size_category(n_rows: int) -> str:
    """The Hub's `size_categories` bucket of a dataset with `n_rows` rows ("n<1K", ...)."""
    for bound, name in SIZE_CATEGORIES:
        if n_rows < bound:
            return name
    return "n>1T"


def check_hub_dir(out_dir: Path | str, *, force: bool) -> Path:
    """The absolute folder to write, refused (InputError) when it cannot or may not be.

    Refused: a ``..`` in the path, a symbolic link, a file, a missing parent folder, and a
    non-empty folder unless `force`, and even with `force` a non-empty folder that does not
    hold a Hub export of ours (no `MANIFEST_NAME`), so nothing else is ever replaced.
    """
    target = resolve_out(out_dir)
    if target.is_symlink():
        raise InputError(f"{target} is a symbolic link; exports do not write through links")
    if not target.parent.is_dir():
        raise InputError(
            f"the folder {target.parent} does not exist; create it first or pick a --hub-dir "
            "inside an existing folder"
        )
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} is a file; --hub-dir names a folder: pick a new folder name")
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise InputError(
                f"{target} already exists and is not empty; pass --force to overwrite it, or "
                "pick another folder"
            )
        if not (target / MANIFEST_NAME).is_file():
            raise InputError(
                f"{target} is a folder that does not hold a Hub export ({MANIFEST_NAME} "
                "missing); refusing to replace it even with --force: pick a new folder name"
            )
    return target


def check_repo_id(repo: str) -> str:
    """`repo` as given when it names a Hub repository (``name`` or ``owner/name``).

    Checked with `huggingface_hub`'s own rules (1-96 characters of letters, digits, ``-``,
    ``_``, ``.``; no ``--`` or ``..``; not ending in ``.git``) before any work is done.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as err:
        raise InputError(
            f"--push-to-hub {repo!r} is not a Hub repository id: expected NAME or OWNER/NAME "
            f"(letters, digits, '-', '_', '.'; at most 96 characters) ({err})"
        ) from None
    return repo


# Longer than 60 lines: the public entry's docstring names every option; the body is a dozen
# steps, each a call, around the temp folder it must clean up.
def write_hub_dir(
    run: Path | str,
    selection: SelectionConfig,
    *,
    out_dir: Path | str,
    apply_decisions: bool = False,
    force: bool = False,
    consensus_label: bool = False,
    max_shard_bytes: int = SHARD_BYTES,
) -> Path:
    """Write the rows `selection` keeps from `run` as a Hub dataset folder with its card.

    Parameters
    ----------
    run : path of a finished run folder
    selection : SelectionConfig
        As for `export_selection` (rule `all` for the cleaned dataset).
    out_dir : path
        The folder to write; its parent must exist (see `check_hub_dir` for what is refused).
    apply_decisions : bool
        Drop the examples the run's decisions drop and apply its relabels.
    force : bool
        Replace a Hub export already at `out_dir`.
    consensus_label : bool
        As for `export_selection`: CROWDLAB's consensus label as the label.
    max_shard_bytes : int
        Upper bound on a shard's Arrow data (uncompressed), so each file stays uploadable.

    Returns
    -------
    Path
        The absolute folder written.

    Raises
    ------
    InputError
        As `export_selection`, or an unusable `out_dir`.
    """
    if max_shard_bytes < 1:
        raise InputError(f"max_shard_bytes must be a positive number, got {max_shard_bytes}")
    target = check_hub_dir(out_dir, force=force)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        whole = export_selection(
            run,
            selection,
            fmt="parquet",
            out=tmp / "export.parquet",
            apply_decisions=apply_decisions,
            consensus_label=consensus_label,
        )
        manifest = store.read_json(manifest_path(whole, "parquet"))
        table, features = _read_export(whole)
        os.unlink(manifest_path(whole, "parquet"))
        os.unlink(whole)
        splits = _write_shards(table, manifest["columns"]["split"], tmp, max_shard_bytes)
        manifest = _hub_manifest(manifest, target, splits)
        store.write_json(tmp / MANIFEST_NAME, manifest)
        card = dataset_card(load_run(run), manifest, features)
        card.save(tmp / CARD_NAME)  # last: a folder with its card is complete
        for path in (tmp, *tmp.rglob("*")):  # mkdtemp/mkstemp made them owner-only
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _read_export(path: Path) -> tuple[pa.Table, datasets.Features]:
    """The export's table and its features (kept in the parquet schema's metadata)."""
    import datasets as hf_datasets
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table, hf_datasets.Features.from_arrow_schema(table.schema)


def _write_shards(
    table: pa.Table, split_col: str, folder: Path, max_shard_bytes: int
) -> dict[str, dict[str, Any]]:
    """``data/<split>-0000i-of-0000n.parquet`` per Hub split that has rows.

    The shards of a split hold equal row counts, enough of them that each holds at most
    `max_shard_bytes` of Arrow data (image bytes are already compressed, so a file is about
    that size); the schema's metadata, which carries the features, goes into every shard.

    Returns
    -------
    dict
        Hub split -> `files` (paths relative to `folder`), `rows` and `winnow_split` (the
        export's `split` value).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    (folder / DATA_DIR).mkdir()
    splits: dict[str, dict[str, Any]] = {}
    for ours, hub in HUB_SPLITS.items():
        part = table.filter(pc.equal(table.column(split_col), ours))
        if part.num_rows == 0:
            continue
        n_shards = min(part.num_rows, max(1, math.ceil(part.nbytes / max_shard_bytes)))
        bounds = np.linspace(0, part.num_rows, n_shards + 1).astype(int)  # (n_shards + 1,)
        files = []
        for i in range(n_shards):
            name = f"{DATA_DIR}/{hub}-{i:05d}-of-{n_shards:05d}.parquet"
            pq.write_table(part.slice(bounds[i], bounds[i + 1] - bounds[i]), folder / name)
            files.append(name)
        splits[hub] = {"files": files, "rows": part.num_rows, "winnow_split": ours}
    return splits


def _hub_manifest(
    manifest: dict[str, Any], target: Path, splits: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The export's manifest, saying where and how this folder was written (`hub_splits`:
    `_write_shards`' account, checked against the export's own split counts)."""
    written = {s["winnow_split"]: s["rows"] for s in splits.values()}
    expected = {k: v for k, v in manifest["splits"].items() if v}
    if written != expected:  # a bug, not bad input: the card would state wrong counts
        raise RuntimeError(f"wrote splits {written}, the export counted {manifest['splits']}")
    reproduce = shlex.split(manifest["reproduce"])
    for flag in ("--format", "--out"):  # the temp file's flags, replaced by --hub-dir
        at = reproduce.index(flag)
        del reproduce[at : at + 2]
    # The folder is meant to be shared: no local path goes in it. The run is RUN_DIR (the
    # card names its key), the folder and local source files by their names alone.
    reproduce[reproduce.index("--run") + 1] = "RUN_DIR"
    reproduce += ["--hub-dir", target.name]
    source = dict(manifest["source"])
    for key in ("path", "test"):
        source[key] = _local_name(source.get(key))
    source["data_config"] = {
        k: _local_name(v) if k in ("source", "test", "annotations") else v
        for k, v in source.get("data_config", {}).items()
    }
    return {
        **manifest,
        "format": "hub",
        "path": target.name,
        "source": source,
        "run": {**manifest["run"], "folder": "RUN_DIR"},
        "hub_splits": splits,
        "reproduce": shlex.join(reproduce),
    }


def _local_name(value: Any) -> Any:
    """A local file's name alone (a Hub dataset name, or no value, as it is)."""
    if isinstance(value, str) and (Path(value).is_absolute() or Path(value).exists()):
        return Path(value).name
    return value


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished `tmp` folder to `target`, an old export (force) moved aside first
    and put back if the rename fails."""
    old = None
    if os.path.lexists(target):  # `check_hub_dir` allowed it: empty, or ours with force
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# --- the card ----------------------------------------------------------------------------


def dataset_card(
    view: RunView, manifest: dict[str, Any], features: datasets.Features
) -> DatasetCard:
    """The dataset card of a Hub export: YAML metadata and a body from `manifest` and the run.

    Parameters
    ----------
    view : RunView
        The run the rows come from (its title and figures).
    manifest : dict
        The export's manifest with `hub_splits` (`_hub_manifest`); every count the card
        states about this copy is read from it.
    features : datasets.Features
        The written columns' features (the card's `dataset_info`).

    Returns
    -------
    huggingface_hub.DatasetCard
    """
    from huggingface_hub import DatasetCard

    data = _card_data(manifest, features)
    body = "\n".join(
        [
            *_intro(view, manifest),
            *_files(manifest),
            *_classes(manifest),
            *_quality(manifest, len(view.table)),
            *_run_figures(view),
            "## Reproduce",
            "",
            f"With the run (key `{manifest['run']['key']}`) in your Winnow cache as RUN_DIR:",
            "",
            "```bash",
            manifest["reproduce"],
            "```",
            "",
        ]
    )
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _card_data(manifest: dict[str, Any], features: datasets.Features) -> Any:
    """The card's YAML: license placeholder, task, size, name, tags, configs, dataset_info."""
    import datasets as hf_datasets
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    source, hub_splits = manifest["source"], manifest["hub_splits"]
    data_files = [{"split": split, "path": f"{DATA_DIR}/{split}-*"} for split in hub_splits]
    card = DatasetCardData(
        license="other",
        task_categories=[TASKS[source["modality"]]] if source["modality"] in TASKS else None,
        size_categories=[size_category(manifest["rows"])],
        pretty_name=_title(manifest),
        tags=TAGS,
        configs=[{"config_name": "default", "data_files": data_files}],
    )
    splits = hf_datasets.SplitDict()
    for split, written in hub_splits.items():
        splits.add(hf_datasets.SplitInfo(name=split, num_examples=written["rows"]))
    info = hf_datasets.DatasetInfo(features=features, splits=splits)
    DatasetInfosDict({"default": info}).to_dataset_card_data(card)
    # A split's num_bytes is the Arrow size as `datasets` batches it when it loads the
    # shards, which we cannot know here: left out rather than stated wrong (0, or a guess).
    for split in card["dataset_info"]["splits"]:
        del split["num_bytes"]
    return card


def _title(manifest: dict[str, Any]) -> str:
    how = "cleaned" if RULES[manifest["selection"]["rule"]].keeps_all else "a subset selected"
    return f"{manifest['source']['name']} ({how} with Winnow)"


def _intro(view: RunView, manifest: dict[str, Any]) -> list[str]:
    source, n_classes = manifest["source"], len(manifest["counts_per_class"])
    what = "The cleaned copy" if RULES[manifest["selection"]["rule"]].keeps_all else "A subset"
    return [
        f"# {_title(manifest)}",
        "",
        f"{what} of **{source['name']}** ({source['modality']} classification, {n_classes} "
        f"classes) that Winnow, a data-quality explorer, wrote from the run "
        f"*{view.title()}*: {manifest['rows']:,} rows. What was dropped and relabelled is in "
        f"*Data quality* below; `{MANIFEST_NAME}` holds every detail.",
        "",
        LICENSE_NOTE,
        "",
    ]


def _files(manifest: dict[str, Any]) -> list[str]:
    cols = manifest["columns"]
    lines = ["## Files and columns", ""]
    for split, written in manifest["hub_splits"].items():
        which = "training rows" if split == "train" else "held-out rows (carved from the source)"
        lines.append(
            f"- `{DATA_DIR}/{split}-*.parquet` ({len(written['files'])} file(s)): split "
            f"`{split}`, the {which}, {written['rows']:,} rows."
        )
    lines.append(f"- `{MANIFEST_NAME}`: Winnow's export manifest (selection, counts, ids' hash).")
    relabelled = cols.get("original_label")
    columns = [
        f"inputs {_names(cols['inputs'])}",
        f"the label `{cols['label']}`"
        + (f" (relabelled rows keep their given label in `{relabelled}`)" if relabelled else ""),
        f"`{cols['id']}`, the row's index in the source",
        f"`{cols['split']}`, Winnow's split (`train`, or `heldout` in the `test` split)",
    ]
    if cols["scores"]:
        columns.append(f"one column per Winnow score: {_names(cols['scores'].values())}")
    return [*lines, "", "Columns: " + "; ".join(columns) + ".", ""]


def _classes(manifest: dict[str, Any]) -> list[str]:
    lines = ["## Classes", "", "| class | rows |", "|---|---:|"]
    lines += [f"| {_cell(name)} | {n:,} |" for name, n in manifest["counts_per_class"].items()]
    if manifest["empty_classes"]:
        lines += ["", f"No rows left of class(es) {_names(manifest['empty_classes'])}."]
    return [*lines, ""]


def _quality(manifest: dict[str, Any], n_run: int) -> list[str]:
    """What this export did to the run's `n_run` training rows, in the order it was done
    (`plan.plan_selection`: decisions, leaks, duplicates, the rule); counts from the manifest."""
    splits, done, pre = manifest["splits"], manifest["decisions"], manifest["pre_steps"]
    lines = [
        "## Data quality",
        "",
        f"- Rows written: {manifest['rows']:,} ({splits['train']:,} training, "
        f"{splits['heldout']:,} held-out).",
    ]
    if manifest["apply_decisions"]:
        lines.append(
            f"- Review decisions applied: {done['dropped']:,} row(s) dropped, "
            f"{done['relabelled']:,} relabelled ({done['in_run']:,} decision(s) recorded "
            "in the run)."
        )
    else:
        lines.append(
            f"- Review decisions not applied ({done['in_run']:,} recorded in the run): rows "
            "and labels are the source's."
        )
    lines.append(
        f"- Leaks: {pre['leaks_dropped']:,} training row(s) dropped that copy a held-out/test row."
        if pre["drop_leaks"]
        else "- Leaks: not removed (exported without `--drop-leaks`)."
    )
    lines.append(
        f"- Duplicates: {pre['duplicates_dropped']:,} row(s) dropped, one row kept per "
        "duplicate group (the lowest id)."
        if pre["drop_duplicates"]
        else "- Duplicates: not removed (exported without `--drop-duplicates`)."
    )
    rule = f"- Selection rule: {_rule_text(manifest['selection'])}"
    if not RULES[manifest["selection"]["rule"]].keeps_all:
        # Held-out rows are only ever added by a keeps-all rule: every drop above was training.
        left = n_run - done["dropped"] - pre["leaks_dropped"] - pre["duplicates_dropped"]
        rule += f"; it kept {splits['train']:,} of the {left:,} training rows left"
    lines += [rule + ".", _labels_text(manifest)]
    if manifest["consensus_label"]:
        lines.append("- The label column holds CROWDLAB's consensus of the run's annotators.")
    return [*lines, ""]


def _labels_text(manifest: dict[str, Any]) -> str:
    """Where the labels come from: the source's, relabels and injected noise accounted for."""
    text = "- Labels: the source's own, in its own column"
    if manifest["apply_decisions"] and manifest["decisions"]["relabelled"]:
        text += ", with the relabel decisions applied"
    noise = manifest["run"].get("noise") or {}
    if noise.get("fraction"):
        text += (
            f"; the labels the run's `--noise` check corrupted (a share of {noise['fraction']:g}) "
            "were only for scoring and are not in this data"
        )
    return text + "."


def _rule_text(selection: dict[str, Any]) -> str:
    """The rule in words, with the parameters it read (from the manifest's `selection`)."""
    rule = RULES[selection["rule"]]
    text = f"`{selection['rule']}`, {rule.label}"
    if rule.keeps_all:
        return text
    text += f", fraction {selection['fraction']:g}"
    for name in PARAMETERS:
        if name in rule.uses:
            value = selection[name]
            text += f", {name} `{value}`" if isinstance(value, str) else f", {name} {value:g}"
    if selection["class_balanced"]:
        text += ", class-balanced"
    if rule.seeded:
        text += f", seed {selection['seed']}"
    return text


def _run_figures(view: RunView) -> list[str]:
    """The run's own figures that it holds: held-out accuracy, cleanlab flags, health counts."""
    from scoring.read import health, suspects

    config = view.config
    lines = [
        "### The run these rows come from",
        "",
        f"- Run: *{view.title()}*, key `{config['key']}`, Winnow scoring version "
        f"{config['scoring_version']}.",
    ]
    accuracy, std = suspects.heldout_accuracy(view), view.summary.get("test_accuracy_std")
    if accuracy is not None:
        runs = len(view.summary.get("test_accuracy") or [])
        spread = (
            f" ± {std:.3f} (mean ± std over {runs} runs)"
            if isinstance(std, int | float) and math.isfinite(std) and runs > 1
            else ""
        )
        lines.append(
            f"- Scoring models' accuracy on the held-out/test rows: {accuracy:.3f}{spread}."
        )
    if "cl_issue" in view.table.columns:
        lines.append(
            f"- cleanlab flagged {suspects.flagged_count(view):,} row(s) of the run as likely "
            "label errors (before this export's drops)."
        )
    noise = (config["config"].get("noise") or {}).get("fraction")
    if noise:
        lines.append(
            f"- These figures are of the labels the run scored, a share of {noise:g} of which "
            "its `--noise` check corrupted on purpose (not the labels written here)."
        )
    issues = [i for i in health.health_report(view) if i["available"]]
    if issues:
        lines += [
            "",
            "Health report of the run (`winnow report`; the whole run, before this export):",
            "",
            "| issue | count | rows affected | severity |",
            "|---|---:|---:|---|",
        ]
        lines += [
            f"| {i['type']} | {health.count_text(i)} | {i['rows_affected']:,} "
            f"({i['share']:.1%}) | {i['severity']} |"
            for i in issues
        ]
    return [*lines, ""]


def _names(names: Any) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (a class name may hold a pipe)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# --- upload ------------------------------------------------------------------------------


def push_to_hub(folder: Path | str, repo: str, *, private: bool = False, api: Any = None) -> str:
    """Upload a folder `write_hub_dir` wrote as the dataset repository `repo`; its URL.

    The folder is uploaded as it is (`HfApi.create_repo` + `upload_folder`) rather than with
    `datasets.Dataset.push_to_hub`, which would re-encode and re-shard the rows and write its
    own README over our card: the Hub then holds byte for byte the files tested offline.

    Parameters
    ----------
    folder : path
        The written Hub folder.
    repo : str
        ``name`` or ``owner/name`` (`check_repo_id`); created when missing, the files added
        as one commit when not.
    private : bool
        Create the repository private (an existing one keeps its visibility); else the
        account's default, usually public.
    api : huggingface_hub.HfApi, optional
        The client (default: a new one, reading the token `hf auth login` saved or HF_TOKEN).

    Raises
    ------
    InputError
        The upload failed (network, login, permissions): the local folder is kept, and the
        message says so and how to upload it later.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HTTPError

    check_repo_id(repo)
    api = HfApi() if api is None else api
    try:
        url = api.create_repo(repo, repo_type="dataset", exist_ok=True, private=private)
        api.upload_folder(
            repo_id=repo,
            folder_path=str(folder),
            repo_type="dataset",
            commit_message="Upload the cleaned dataset written by Winnow",
        )
    except (OSError, HTTPError, ValueError) as err:  # HfHubHTTPError, connection errors, and
        # the ValueError huggingface_hub raises for a token it cannot use
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"uploading to the Hub dataset {repo} failed ({first}); the dataset is written "
            f"and kept at {folder}: log in (`hf auth login` or HF_TOKEN), check the network, "
            f"then upload it with `hf upload {repo} {folder} --repo-type dataset`"
        ) from None
    return str(url)  # a RepoUrl is a str
