"""Tests for scoring.prune.export and data.source_rows: round trips, decisions, refusals.

Three small real runs are scored once per module: digits (images, 10% injected noise), a
CSV of texts with unusual column names (string labels, and an `id` column of its own), and a
tiny image folder (images the source holds as paths). Tests that write decisions work on a
copy of a run.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from scoring import data
from scoring.__main__ import main
from scoring.config import DataConfig, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.prune.export import FORMATS, export_selection, manifest_path
from scoring.prune.plan import select_run
from scoring.prune.select import SelectionConfig
from scoring.read import decisions
from scoring.read.views import load_run
from scoring.training.pipeline import score
from tests.conftest import digits_config

SELECTION = SelectionConfig(rule="hardest", fraction=0.3, score="el2n")
TEXT_COL, LABEL_COL = "Review Text!", "stars (1-3)"
MOODS = ("meh", "sad", "happy")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Finished runs: digits, a text CSV, an image folder."""
    root = tmp_path_factory.mktemp("export_cache")
    src = tmp_path_factory.mktemp("export_src")
    digits = score(
        digits_config(
            noise_fraction=0.1, noise_seed=1, scores=("el2n", "aum", "forgetting", "cl_issue")
        ),
        root,
        show_progress=False,
    )
    texts = src / "reviews.csv"
    with texts.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", TEXT_COL, LABEL_COL])
        for i in range(45):
            mood = MOODS[i % 3]
            writer.writerow([f"r{i:03d}", f'review {i}: "{mood}", really, {mood} ', mood])
    text = score(
        ScoreConfig(
            data=DataConfig(source=str(texts), input_cols=(TEXT_COL,), label_col=LABEL_COL),
            train=TrainConfig(runs=2, epochs=3),
            cv_folds=2,
            scores=("el2n", "aum"),
        ),
        root,
        show_progress=False,
    )
    folder = src / "shapes"
    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        (folder / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    images = score(
        ScoreConfig(
            data=DataConfig(source=str(folder)),
            train=TrainConfig(runs=2, epochs=2),
            cv_folds=2,
            scores=("el2n",),
        ),
        root,
        show_progress=False,
    )
    return {"digits": digits, "text": text, "folder": images, "text_csv": texts}


def _copy_run(run: Path, tmp_path: Path) -> Path:
    """A private copy (same <cache>/<fingerprint>/<key> shape) that a test may add decisions to."""
    copy = tmp_path / "cache" / run.parent.name / run.name
    shutil.copytree(run, copy)
    return copy


def _load(fmt: str, out: Path, tmp_path: Path) -> datasets.Dataset:
    if fmt == "hf":
        return datasets.load_from_disk(str(out))
    builder = "json" if fmt == "jsonl" else fmt
    return datasets.load_dataset(builder, data_files=str(out), cache_dir=str(tmp_path / "hf_read"))[
        "train"
    ]


def _selected_ids(run: Path, selection: SelectionConfig = SELECTION) -> np.ndarray:
    view = load_run(run)
    return view.table["id"].to_numpy()[select_run(view, selection)]


def _pixels(cell) -> np.ndarray:
    """uint8 pixels of a decoded image, or of a base64 text cell."""
    if isinstance(cell, str):
        cell = Image.open(io.BytesIO(base64.b64decode(cell)))
    return np.asarray(cell)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_digits_round_trip_has_exact_ids_scores_labels_and_pixels(runs, tmp_path, fmt):
    run = runs["digits"]
    out = export_selection(run, SELECTION, fmt=fmt, out=tmp_path / "out" / f"subset.{fmt}")
    assert out == (tmp_path / "out" / f"subset.{fmt}").resolve()
    loaded = _load(fmt, out, tmp_path)

    view = load_run(run)
    rows = select_run(view, SELECTION)
    picked = view.table.iloc[rows]
    assert loaded["id"] == picked["id"].tolist()
    for key in view.score_keys:
        np.testing.assert_allclose(loaded[key], picked[key].to_numpy(dtype=float), rtol=1e-12)
    # the source's labels (true_label), not the labels the noise check permuted
    assert loaded["label"] == picked["true_label"].tolist()
    assert (picked["true_label"] != picked["label"]).any()  # the check above means something
    assert "original_label" not in loaded.column_names

    dataset = data.load(DataConfig(source="digits", limit=300))
    position = {i: p for p, i in enumerate(dataset.train.ids)}
    for cell, example in zip(loaded["image"], loaded["id"], strict=True):
        inputs = dataset.train.inputs[position[example], 0] / 16  # (8, 8), pixels 0..16 / 16
        np.testing.assert_allclose(_pixels(cell) / 255, inputs, atol=0.5 / 255 + 1e-6)

    manifest = json.loads(manifest_path(out, fmt).read_text())
    assert manifest["rows"] == len(rows) == loaded.num_rows
    assert sum(manifest["counts_per_class"].values()) == manifest["rows"]
    assert list(manifest["counts_per_class"]) == view.label_names
    assert manifest["selection"] == SELECTION.to_dict() and manifest["seed"] == 0
    assert manifest["format"] == fmt and manifest["apply_decisions"] is False
    assert manifest["run"]["key"] == view.config["key"]
    assert manifest["run"]["folder"] == str(run.resolve())
    assert manifest["run"]["scoring_version"] == view.config["scoring_version"]
    assert manifest["source"]["description"] == "digits" and manifest["source"]["path"] == "digits"
    assert manifest["source"]["name"] == "digits"  # no upload: the description
    assert manifest["decisions"]["applied"] == 0 and manifest["created"]
    leftovers = sorted(p.name for p in out.parent.iterdir())
    expected = [out.name] if fmt == "hf" else [out.name, manifest_path(out, fmt).name]
    assert leftovers == sorted(expected)  # no temp files left behind


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_text_round_trip_keeps_original_columns_and_moves_our_id_aside(runs, tmp_path, fmt):
    run, selection = runs["text"], SelectionConfig(rule="easiest", fraction=0.5, score="aum")
    out = export_selection(run, selection, fmt=fmt, out=tmp_path / f"texts.{fmt}")
    loaded = _load(fmt, out, tmp_path)

    ids = _selected_ids(run, selection)
    with runs["text_csv"].open(newline="") as f:
        source = list(csv.DictReader(f))
    assert loaded["winnow_id"] == ids.tolist()  # the source has an `id` column of its own
    assert loaded["id"] == [source[i]["id"] for i in ids]
    assert loaded[TEXT_COL] == [source[i][TEXT_COL] for i in ids]
    assert loaded[LABEL_COL] == [source[i][LABEL_COL] for i in ids]
    assert {"el2n", "aum"} <= set(loaded.column_names)
    manifest = json.loads(manifest_path(out, fmt).read_text())
    assert manifest["columns"]["id"] == "winnow_id" and manifest["images"] is None
    counts = manifest["counts_per_class"]
    assert sum(counts.values()) == len(ids) and set(counts) == set(MOODS)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_image_folder_images_are_embedded_or_base64_with_their_path(runs, tmp_path, fmt):
    run, selection = runs["folder"], SelectionConfig(rule="random", fraction=0.5, seed=3)
    out = export_selection(run, selection, fmt=fmt, out=tmp_path / f"shapes.{fmt}")
    ids = _selected_ids(run, selection)
    loaded = _load(fmt, out, tmp_path)
    assert loaded["id"] == ids.tolist()
    source = Path(load_run(run).config["config"]["data"]["source"])
    cells = data.source_rows(DataConfig(source=str(source)), ids, hf_cache_dir=str(tmp_path))
    cells = cells.data.table.column("image").to_pylist()
    assert all(cell["bytes"] is None for cell in cells)  # the source holds paths only
    files = [Path(cell["path"]) for cell in cells]
    if fmt == "csv":
        assert [Path(p) for p in loaded["image_path"]] == files
        for cell, file in zip(loaded["image"], files, strict=True):
            assert base64.b64decode(cell) == file.read_bytes()
    else:
        expected = [np.asarray(Image.open(file)) for file in files]
        shutil.rmtree(source)  # the export holds the bytes, not links to the source's files
        try:
            for image, pixels in zip(loaded["image"], expected, strict=True):
                np.testing.assert_array_equal(np.asarray(image), pixels)
        finally:
            _restore_folder(source)


def _restore_folder(folder: Path) -> None:
    """Re-create the image folder exactly as the fixture wrote it (other tests read it)."""
    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        (folder / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")


# --- decisions -----------------------------------------------------------------------------


def test_decisions_drop_and_relabel_with_original_label(runs, tmp_path):
    run = _copy_run(runs["digits"], tmp_path)
    ids = _selected_ids(run)
    view = load_run(run)
    source_label = dict(zip(view.table["id"], view.table["true_label"], strict=True))
    dropped, changed = int(ids[0]), int(ids[1])
    new = (source_label[changed] + 1) % 10
    decisions.append(run, dropped, "drop")
    decisions.append(run, changed, "relabel", new)
    decisions.append(run, int(_unselected_id(view, ids)), "drop")

    plain = _load(
        "parquet", export_selection(run, SELECTION, fmt="parquet", out=tmp_path / "a"), tmp_path
    )
    assert plain["id"] == ids.tolist() and "original_label" not in plain.column_names

    out = export_selection(
        run, SELECTION, fmt="parquet", out=tmp_path / "b.parquet", apply_decisions=True
    )
    loaded = _load("parquet", out, tmp_path)
    # Decisions come first: the rule then picks its fraction among the examples kept.
    rows = select_run(view, SELECTION, decisions=decisions.latest(run))
    expected = view.table["id"].to_numpy()[rows].tolist()
    assert loaded["id"] == expected and dropped not in expected
    at = loaded["id"].index(changed)
    assert loaded["label"][at] == new and loaded["original_label"][at] == source_label[changed]
    others = [i for i in range(loaded.num_rows) if i != at]
    assert all(loaded["label"][i] == loaded["original_label"][i] for i in others)
    manifest = json.loads(manifest_path(out, "parquet").read_text())
    assert manifest["decisions"] == {"applied": 3, "dropped": 2, "relabelled": 1, "in_run": 3}
    assert manifest["rows"] == len(expected) == sum(manifest["counts_per_class"].values())
    assert manifest["apply_decisions"] is True


def _unselected_id(view, selected: np.ndarray) -> int:
    return int(np.setdiff1d(view.table["id"].to_numpy(), selected)[0])


def test_relabel_writes_the_label_name_into_a_string_label_column(runs, tmp_path):
    run = _copy_run(runs["text"], tmp_path)
    selection = SelectionConfig(rule="hardest", fraction=0.5, score="el2n")
    ids = _selected_ids(run, selection)
    names = load_run(run).label_names
    decisions.append(run, int(ids[0]), "relabel", names.index("happy"))
    decisions.append(run, int(ids[1]), "relabel", names.index("sad"))
    out = export_selection(
        run, selection, fmt="jsonl", out=tmp_path / "t.jsonl", apply_decisions=True
    )
    loaded = _load("jsonl", out, tmp_path)
    assert loaded[LABEL_COL][:2] == ["happy", "sad"]
    with runs["text_csv"].open(newline="") as f:
        source = list(csv.DictReader(f))
    assert loaded["original_label"] == [source[i][LABEL_COL] for i in ids]


def test_selection_emptied_by_decisions_is_refused(runs, tmp_path):
    run = _copy_run(runs["digits"], tmp_path)
    selection = SelectionConfig(rule="hardest", fraction=0.01, score="el2n")
    for example in load_run(run).table["id"]:  # every example dropped: nothing left to pick
        decisions.append(run, int(example), "drop")
    with pytest.raises(InputError, match="no examples"):
        export_selection(run, selection, fmt="csv", out=tmp_path / "x.csv", apply_decisions=True)
    assert not (tmp_path / "x.csv").exists()
    assert export_selection(run, selection, fmt="csv", out=tmp_path / "x.csv").exists()


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_existing_output_needs_force(runs, tmp_path, fmt):
    run, out = runs["digits"], tmp_path / "subset"
    export_selection(run, SELECTION, fmt=fmt, out=out)
    half = SelectionConfig(rule="hardest", fraction=0.5, score="el2n")
    with pytest.raises(InputError, match="pass --force"):
        export_selection(run, half, fmt=fmt, out=out)
    export_selection(run, half, fmt=fmt, out=out, force=True)
    assert _load(fmt, out, tmp_path).num_rows == len(_selected_ids(run, half))
    assert json.loads(manifest_path(out, fmt).read_text())["selection"]["fraction"] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_lone_manifest_also_needs_force(runs, tmp_path):
    (tmp_path / "s.csv.manifest.json").write_text("{}")
    with pytest.raises(InputError, match="pass --force"):
        export_selection(runs["digits"], SELECTION, fmt="csv", out=tmp_path / "s.csv")


def test_force_never_replaces_a_folder_that_is_not_an_export(runs, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    for fmt in ("hf", "parquet"):
        with pytest.raises(InputError, match="folder"):
            export_selection(runs["digits"], SELECTION, fmt=fmt, out=precious, force=True)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_paths_escaping_the_named_folder_are_refused(runs, tmp_path):
    exports = tmp_path / "exports"
    (exports / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match=r"'\.\.'"):
        export_selection(runs["digits"], SELECTION, fmt="csv", out=exports / "sub/../../x.csv")
    with pytest.raises(InputError, match=r"'\.\.'"):
        export_selection(runs["digits"], SELECTION, fmt="csv", out="sub/../../x.csv", base=exports)
    (tmp_path / "elsewhere").mkdir()
    (exports / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="outside the export folder"):
        export_selection(runs["digits"], SELECTION, fmt="csv", out="link/x.csv", base=exports)
    # Without a base (the CLI): a folder of the path that is a link is refused too.
    with pytest.raises(InputError, match=r"goes through the symbolic link .*link \(to "):
        export_selection(runs["digits"], SELECTION, fmt="csv", out=exports / "link" / "x.csv")
    with (
        pytest.raises(InputError, match="goes through the symbolic link link"),
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.chdir(exports)
        export_selection(runs["digits"], SELECTION, fmt="csv", out="link/x.csv")
    written = export_selection(runs["digits"], SELECTION, fmt="csv", out="sub/x.csv", base=exports)
    assert written == (exports / "sub" / "x.csv").resolve()
    assert not (tmp_path / "x.csv").exists() and not any((tmp_path / "elsewhere").iterdir())


def test_unknown_format_lists_the_formats(runs, tmp_path):
    with pytest.raises(InputError, match="parquet, csv, jsonl, hf"):
        export_selection(runs["digits"], SELECTION, fmt="xlsx", out=tmp_path / "x.xlsx")


def test_bad_selection_and_non_run_are_input_errors(runs, tmp_path):
    with pytest.raises(InputError, match="no score"):
        export_selection(
            runs["digits"],
            SelectionConfig(rule="hardest", fraction=0.3, score="vog"),
            fmt="csv",
            out=tmp_path / "x.csv",
        )
    with pytest.raises(InputError, match="not a Winnow run"):
        export_selection(tmp_path, SELECTION, fmt="csv", out=tmp_path / "x.csv")


# --- source_rows -----------------------------------------------------------------------------


def test_source_rows_refuses_a_changed_source_and_bad_ids(runs, tmp_path):
    view = load_run(runs["text"])
    cfg_dict = view.config["config"]["data"]
    cfg = DataConfig(**{**cfg_dict, "input_cols": tuple(cfg_dict["input_cols"])})
    fingerprint = view.config["dataset"]["fingerprint"]
    hf_cache = str(tmp_path / "hf")
    rows = data.source_rows(cfg, np.array([5, 2]), hf_cache_dir=hf_cache, fingerprint=fingerprint)
    assert rows.column_names == ["id", TEXT_COL, LABEL_COL] and rows["id"] == ["r005", "r002"]
    with pytest.raises(InputError, match="outside"):
        data.source_rows(cfg, np.array([0, 45]), hf_cache_dir=hf_cache)

    changed = tmp_path / "reviews.csv"
    changed.write_text(runs["text_csv"].read_text().replace("review 7:", "review 8:"))
    moved = DataConfig(**{**cfg_dict, "source": str(changed), "input_cols": (TEXT_COL,)})
    with pytest.raises(InputError, match="not the one this run was scored on"):
        data.source_rows(moved, np.array([1]), hf_cache_dir=hf_cache, fingerprint=fingerprint)


def test_digits_source_rows_are_png_images_and_class_labels():
    from sklearn.datasets import load_digits

    rows = data.source_rows(DataConfig(), np.array([10, 0]))
    assert isinstance(rows.features["image"], datasets.Image)
    assert rows.features["label"].names == [str(k) for k in range(10)]
    bunch = load_digits()
    assert rows["label"] == [int(bunch.target[10]), int(bunch.target[0])]
    expected = np.rint(bunch.images[10] * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(rows[0]["image"]), expected)


# --- CLI -------------------------------------------------------------------------------------


def test_cli_export_prints_the_path_and_bad_input_exits_2(runs, tmp_path, capsys):
    out = tmp_path / "cli.parquet"
    args = ["export", "--run", str(runs["digits"]), "--score", "el2n", "--rule", "offset"]
    code = main(
        [
            *args,
            "--fraction",
            "0.4",
            "--offset",
            "auto",
            "--class-balanced",
            "--format",
            "parquet",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip().splitlines()[-1] == str(out.resolve())
    manifest = json.loads(manifest_path(out, "parquet").read_text())
    selection = manifest["selection"]
    assert selection["rule"] == "offset" and selection["class_balanced"] is True
    assert 0 < selection["offset"] < 0.6  # the run's own noise estimate
    assert (
        _load("parquet", out, tmp_path)["id"]
        == _selected_ids(runs["digits"], SelectionConfig(**selection)).tolist()
    )

    for bad in (["--format", "xlsx"], ["--format", "csv", "--offset", "lots"]):
        code = main([*args, "--fraction", "0.4", *bad, "--out", str(tmp_path / "bad")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ")
    code = main([*args, "--fraction", "0.4", "--format", "parquet", "--out", str(out)])
    assert code == 2 and "pass --force" in capsys.readouterr().err


def test_cli_offset_auto_without_score_ranks_by_the_default_detector(runs, tmp_path, capsys):
    """`--offset auto` with no `--score`: the run's default detector ranks (consensus when
    held, tests/read/test_suspects.py; this run has none, so its best on the noise)."""
    from scoring.read.suspects import default_detector
    from scoring.read.views import load_run

    detector = default_detector(load_run(runs["digits"]))
    out = tmp_path / "auto.parquet"
    base = ["export", "--run", str(runs["digits"]), "--rule", "offset", "--fraction", "0.4"]
    code = main([*base, "--offset", "auto", "--format", "parquet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"ranked by {detector}" in captured.err
    selection = json.loads(manifest_path(out, "parquet").read_text())["selection"]
    assert selection["score"] == detector
    assert (
        _load("parquet", out, tmp_path)["id"]
        == _selected_ids(runs["digits"], SelectionConfig(**selection)).tolist()
    )
    # A fixed offset still needs a score: nothing is guessed there.
    code = main([*base, "--offset", "0.1", "--format", "parquet", "--out", str(tmp_path / "x")])
    assert code == 2 and "ranks by a score" in capsys.readouterr().err
