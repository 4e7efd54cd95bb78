"""Tests for scoring.prune.hub and `winnow export --hub-dir / --push-to-hub`.

The card is parsed back with `huggingface_hub.DatasetCard` and its counts are checked against
counts made here (the decisions the test records, the duplicate groups counted by hand); the
shards are loaded back with `datasets.load_dataset(DIR)`. Three small real runs: the
neighbour run (images with duplicates injected, `tests/neighbour_run.py`), a tiny digits run
(its held-out rows carved from the source: a `test` split) and a tiny text CSV (string labels).
Nothing here touches the network: the upload is tested against a stand-in `HfApi`.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import datasets
import huggingface_hub
import numpy as np
import pandas as pd
import pytest
from huggingface_hub import DatasetCard
from PIL import Image

from scoring import store
from scoring.cli.main import main
from scoring.config import DataConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.prune.export import export_selection
from scoring.prune.hub import MANIFEST_NAME, push_to_hub, size_category, write_hub_dir
from scoring.prune.select import SelectionConfig
from scoring.read import decisions
from scoring.read.suspects import heldout_rows
from scoring.read.views import load_run
from scoring.training.pipeline import score
from tests.conftest import ROOT, digits_config, run_cli
from tests.neighbour_run import private_copy

ALL = SelectionConfig(rule="all", fraction=1.0)
MOODS = ("meh", "sad", "happy")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny digits run (carved held-out rows) and a tiny text CSV run (string labels)."""
    root = tmp_path_factory.mktemp("hub_cache")
    digits = score(
        digits_config(120, epochs=2, scores=("el2n", "cl_issue")), root, show_progress=False
    )
    texts = tmp_path_factory.mktemp("hub_src") / "moods.csv"
    with texts.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "mood"])
        for i in range(30):
            writer.writerow([f"review {i}: {MOODS[i % 3]}", MOODS[i % 3]])
    text = score(
        ScoreConfig(
            data=DataConfig(source=str(texts)),
            train=TrainConfig(runs=2, epochs=2, recipe="tfidf"),
            cv_folds=2,
            scores=("el2n",),
        ),
        root,
        show_progress=False,
    )
    return {"digits": digits, "text": text}


@pytest.fixture
def neighbour(neighbour_cache, tmp_path) -> Path:
    """A private copy of the neighbour run (duplicates injected) that decisions may go to."""
    return private_copy(neighbour_cache, tmp_path)


def _load(folder: Path, tmp_path: Path) -> datasets.DatasetDict:
    return datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf_read"))


def _section(text: str, heading: str) -> str:
    """The markdown between `heading` and the next heading of level 2."""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


# --- the card ----------------------------------------------------------------------------


def test_card_metadata_and_data_quality_state_what_was_done(neighbour, tmp_path):
    view = load_run(neighbour)
    table = view.table.sort_values("id")
    ids, groups = table["id"].to_numpy(), table["dup_group"].to_numpy()
    # Decisions outside every duplicate group, so the groups' count below stays a hand count.
    free = [int(i) for i in ids[groups < 0]]
    dropped, relabelled = free[:2], free[2]
    for example in dropped:
        decisions.append(neighbour, example, "drop")
    given = int(table.set_index("id").loc[relabelled, "label"])
    decisions.append(neighbour, relabelled, "relabel", (given + 1) % 10)
    # By hand: every duplicate group keeps one row.
    n_dups = int(sum(n - 1 for n in pd.Series(groups[groups >= 0]).value_counts()))
    assert n_dups > 0  # the run has copies injected: the count below means something

    selection = SelectionConfig(rule="all", fraction=1.0, drop_duplicates=True)
    out = write_hub_dir(neighbour, selection, out_dir=tmp_path / "hub", apply_decisions=True)

    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "other" and "License: not set" in card.text
    assert card.data.task_categories == ["image-classification"]
    assert card.data.size_categories == ["n<1K"] and "winnow" in card.data.tags
    assert card.data.pretty_name.startswith(view.dataset_name)
    label = next(f for f in card.data.dataset_info["features"] if f["name"] == "label")
    names = label["dtype"]["class_label"]["names"]
    assert [names[k] for k in sorted(names, key=int)] == view.label_names
    assert card.data.configs[0]["data_files"] == [{"split": "train", "path": "data/train-*"}]

    rows = len(ids) - len(dropped) - n_dups
    quality = _section(card.text, "## Data quality")
    assert f"Rows written: {rows} ({rows} training, 0 held-out)" in quality
    assert "2 row(s) dropped, 1 relabelled (3 decision(s) recorded" in quality
    assert f"Duplicates: {n_dups} row(s) dropped" in quality
    assert "Leaks: not removed" in quality
    assert view.config["key"] in card.text and view.title() in card.text
    assert "--hub-dir" in card.text and "--drop-duplicates" in card.text  # the reproduce line
    manifest = store.read_json(out / MANIFEST_NAME)
    assert manifest["pre_steps"]["duplicates_dropped"] == n_dups
    assert manifest["decisions"] == {"applied": 3, "dropped": 2, "relabelled": 1, "in_run": 3}
    assert manifest["format"] == "hub" and manifest["path"] == out.name
    # Meant to be shared: no local path in the folder's text files (the run is RUN_DIR).
    for text in (card.text, (out / MANIFEST_NAME).read_text()):
        assert str(tmp_path) not in text and str(Path(neighbour).parent) not in text
    assert "--run RUN_DIR" in manifest["reproduce"] and view.config["key"] in card.text

    loaded = _load(out, tmp_path)["train"]
    written = list(loaded["id"])
    assert loaded.num_rows == rows and not set(dropped) & set(written)
    at = written.index(relabelled)
    assert (loaded["label"][at], loaded["original_label"][at]) == ((given + 1) % 10, given)
    counts = np.bincount(loaded["label"], minlength=10)  # (K,), from the data written
    classes = _section(card.text, "## Classes")
    for name, n in zip(view.label_names, counts, strict=True):
        assert f"| {name} | {n} |" in classes


def test_card_states_the_runs_own_figures(runs, tmp_path):
    view = load_run(runs["digits"])
    out = write_hub_dir(runs["digits"], ALL, out_dir=tmp_path / "hub")
    text = DatasetCard.load(out / "README.md").text
    accuracy = float(np.mean(view.summary["test_accuracy"]))
    assert f"held-out/test rows: {accuracy:.3f} ± " in text
    held = heldout_rows(view)
    flags = int((view.table["cl_issue"] > 0.5).sum() + (held["cl_issue"] > 0.5).sum())
    assert f"cleanlab flagged {flags} row(s)" in text
    assert re.search(rf"\| label \| {flags} rows? \| {flags} ", text)  # the health table
    assert "Review decisions not applied (0 recorded in the run)" in text


def test_a_subset_card_names_the_rule_and_what_it_kept(runs, tmp_path):
    selection = SelectionConfig(rule="hardest", fraction=0.5, score="el2n")
    out = write_hub_dir(runs["digits"], selection, out_dir=tmp_path / "hub")
    card = DatasetCard.load(out / "README.md")
    n_run = len(load_run(runs["digits"]).table)
    kept = _load(out, tmp_path)["train"].num_rows
    assert kept == n_run // 2 and card.data.pretty_name.endswith("(a subset selected with Winnow)")
    assert card.data.configs[0]["data_files"] == [{"split": "train", "path": "data/train-*"}]
    rule = "Selection rule: `hardest`, keep hardest, fraction 0.5, score `el2n`"
    assert rule in card.text and f"it kept {kept} of the {n_run} training rows left" in card.text


@pytest.mark.parametrize(
    ("n", "bucket"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (123_456, "100K<n<1M")]
)
def test_size_category_buckets(n, bucket):
    assert size_category(n) == bucket


# --- the shards --------------------------------------------------------------------------


def test_shards_load_back_with_splits_images_and_the_parquet_exports_features(runs, tmp_path):
    run = runs["digits"]
    out = write_hub_dir(run, ALL, out_dir=tmp_path / "hub", max_shard_bytes=8_000)
    train_files = sorted(p.name for p in (out / "data").glob("train-*.parquet"))
    assert len(train_files) > 1  # a small cap: several shards, named as the Hub expects
    assert train_files[0] == f"train-00000-of-{len(train_files):05d}.parquet"
    assert [p.name for p in (out / "data").glob("test-*")] == ["test-00000-of-00001.parquet"]

    loaded = _load(out, tmp_path)
    view = load_run(run)
    assert set(loaded) == {"train", "test"}
    assert loaded["train"].num_rows == len(view.table)
    assert loaded["test"].num_rows == len(heldout_rows(view))
    assert set(loaded["test"]["split"]) == {"heldout"}
    assert loaded["train"].features["label"].names == view.label_names
    assert isinstance(loaded["train"][0]["image"], Image.Image)

    plain = export_selection(run, ALL, fmt="parquet", out=tmp_path / "all.parquet")
    reference = datasets.load_dataset(
        "parquet", data_files=str(plain), cache_dir=str(tmp_path / "hf_plain")
    )["train"]
    assert loaded["train"].features == reference.features
    assert list(loaded["train"]["id"]) + list(loaded["test"]["id"]) == list(reference["id"])
    card = DatasetCard.load(out / "README.md")
    splits = {s["name"]: s for s in card.data.dataset_info["splits"]}
    for name, split in loaded.items():  # the sizes the card states are the ones datasets counts
        assert splits[name]["num_examples"] == split.info.splits[name].num_examples


def test_text_run_card_lists_string_classes(runs, tmp_path):
    out = write_hub_dir(runs["text"], ALL, out_dir=tmp_path / "hub")
    card = DatasetCard.load(out / "README.md")
    assert card.data.task_categories == ["text-classification"]
    source = load_run(runs["text"]).config["config"]["data"]["source"]  # a local CSV's path
    manifest = (out / MANIFEST_NAME).read_text()
    assert Path(source).is_absolute() and source not in manifest and source not in card.text
    assert store.read_json(out / MANIFEST_NAME)["source"]["path"] == Path(source).name
    loaded = _load(out, tmp_path)
    rows = [mood for split in loaded.values() for mood in split["mood"]]
    classes = _section(card.text, "## Classes")
    for mood in MOODS:
        assert f"| {mood} | {rows.count(mood)} |" in classes


# --- refusals ----------------------------------------------------------------------------


def test_occupied_missing_and_foreign_folders_are_refused(runs, tmp_path):
    run, out = runs["digits"], tmp_path / "hub"
    write_hub_dir(run, ALL, out_dir=out)
    with pytest.raises(InputError, match="pass --force"):
        write_hub_dir(run, ALL, out_dir=out)
    (out / "stale.txt").write_text("from the last export")
    write_hub_dir(run, ALL, out_dir=out, force=True)
    assert not (out / "stale.txt").exists() and (out / "README.md").is_file()

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="even with --force"):
        write_hub_dir(run, ALL, out_dir=precious, force=True)
    assert (precious / "notes.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="does not exist"):
        write_hub_dir(run, ALL, out_dir=tmp_path / "missing" / "hub")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# --- CLI ---------------------------------------------------------------------------------


def test_cli_hub_dir_writes_then_refuses_a_second_time(runs, tmp_path):
    out = tmp_path / "hub"
    args = ["export", "--run", str(runs["digits"]), "--rule", "all", "--hub-dir", str(out)]
    done = run_cli(*args, cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(out)
    assert (out / "README.md").is_file() and (out / MANIFEST_NAME).is_file()
    again = run_cli(*args, cache=tmp_path / "cache")
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"error: {out} already exists and is not empty; pass --force to overwrite it, or "
        "pick another folder"
    ]


def test_cli_needs_an_output_and_writes_both_when_asked(runs, tmp_path, capsys):
    base = ["export", "--run", str(runs["digits"]), "--rule", "all"]
    assert main(base) == 2
    assert "give --format and --out" in capsys.readouterr().err
    assert main([*base, "--format", "parquet"]) == 2
    assert "--format needs --out" in capsys.readouterr().err

    out, hub = tmp_path / "clean.parquet", tmp_path / "hub"
    assert main([*base, "--format", "parquet", "--out", str(out), "--hub-dir", str(hub)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-2:] == [str(out.resolve()), str(hub)]
    assert out.is_file() and (hub / "README.md").is_file()


def test_cli_bad_repo_id_exits_2_before_writing(runs, tmp_path, capsys):
    base = ["export", "--run", str(runs["digits"]), "--rule", "all"]
    for bad in ("bad--name", "a/b/c", "-dash", "name.git", "x" * 97):
        code = main([*base, "--hub-dir", str(tmp_path / "hub"), f"--push-to-hub={bad}"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: --push-to-hub") and len(err.splitlines()) == 1
    assert main([*base, "--push-to-hub", "me/clean"]) == 2
    assert "add --hub-dir" in capsys.readouterr().err
    assert not (tmp_path / "hub").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder


class _Api:
    """Stands in for `huggingface_hub.HfApi`: records the calls, or fails as a network does."""

    calls: list = []
    fail: Exception | None = None

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))
        if self.fail is not None:
            raise self.fail
        return huggingface_hub.RepoUrl(f"https://huggingface.co/datasets/{repo_id}")

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw))


def test_cli_push_uploads_the_written_folder(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_Api, "calls", [])
    monkeypatch.setattr(huggingface_hub, "HfApi", _Api)
    hub = tmp_path / "hub"
    args = ["export", "--run", str(runs["digits"]), "--rule", "all", "--hub-dir", str(hub)]
    assert main([*args, "--push-to-hub", "someone/clean-digits", "--private"]) == 0
    assert "https://huggingface.co/datasets/someone/clean-digits" in capsys.readouterr().err
    (create, repo, kw), (upload, uploaded) = _Api.calls
    assert (create, repo, kw["repo_type"], kw["exist_ok"], kw["private"]) == (
        "create_repo",
        "someone/clean-digits",
        "dataset",
        True,
        True,
    )
    assert upload == "upload_folder" and Path(uploaded["folder_path"]) == hub
    assert (uploaded["repo_id"], uploaded["repo_type"]) == ("someone/clean-digits", "dataset")


def test_cli_push_failure_is_one_line_and_keeps_the_folder(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_Api, "calls", [])
    monkeypatch.setattr(_Api, "fail", ConnectionError("Name or service not known"))
    monkeypatch.setattr(huggingface_hub, "HfApi", _Api)
    hub = tmp_path / "hub"
    args = ["export", "--run", str(runs["digits"]), "--rule", "all", "--hub-dir", str(hub)]
    assert main([*args, "--push-to-hub", "clean-digits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"-> {hub};" in err[0]  # the summary of what was written, then the upload's error
    assert len(err) == 2 and err[1].startswith("error: uploading to the Hub dataset clean-digits")
    assert f"kept at {hub}" in err[1] and "Name or service not known" in err[1]
    assert (hub / "README.md").is_file()
    with pytest.raises(InputError, match="kept at"):  # the library call says the same
        push_to_hub(hub, "clean-digits", api=_Api())


def test_readme_documents_the_flags():
    readme = (ROOT / "README.md").read_text()
    assert "--hub-dir" in readme and "--push-to-hub" in readme
