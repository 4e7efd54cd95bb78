"""Fault injection: one file of a run damaged (missing, empty, garbage, cut short, a JSON list)
must never break another run, must be reported with its file and reason, and must be
repaired by rerunning the same `score` command to what an undamaged run holds.

One tiny finished run (with a cross-fit fold, decisions and a map) and a second, different
run are scored once per module; every case damages a private copy. The Python API covers
the whole product of files x kinds; the CLI a representative few (a subprocess costs ~3 s).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.errors import InputError
from scoring.prune.export import export_selection
from scoring.prune.select import SelectionConfig
from scoring.read import decisions
from scoring.read.maps import compute_map, read_map
from scoring.read.views import load_run
from tests.conftest import digits_config, run_cli

# The run the cases damage (cl_issue: so a cross-fit fold exists; leakage: so both label-free
# feature files exist) and a bystander.
TARGET = digits_config(150, runs=2, epochs=2, scores=("el2n", "cl_issue", "leakage"))
OTHER = digits_config(150, runs=2, epochs=2, scores=("el2n",))
# What a digits run never writes: several annotators' votes, texts.
NOT_WRITTEN = ("annotations.npz", "examples/texts.parquet", "examples/heldout_texts.parquet")
# Files the pipeline writes (recomputed by `score`), derived from RunDir's own list so a new
# result file is a new case by construction (`test_the_cases_cover_every_file_a_run_writes`),
# and the user's / app's later files.
_NAMES = store.RunDir(Path("run")).result_files()
PIPELINE_FILES = (
    "status.json",
    *(
        f.relative_to("run").as_posix()
        for f in _NAMES
        if f.relative_to("run").as_posix() not in NOT_WRITTEN
    ),
    "runs/run_000.npz",
    "cv/fold_0.npz",
)
USER_FILES = ("decisions.jsonl", "map.parquet")
KINDS = ("missing", "empty", "garbage", "truncated")
JSON_FILES = ("config.json", "status.json", "summary.json")
# Derived files a repaired run must hold byte for byte as the undamaged run does.
SAME_BYTES = (
    "scores.parquet",
    "scores_per_run.parquet",
    "predictions.parquet",
    "examples/images.npy",
)
# What legitimately differs between two computations of the same run: wall-clock figures.
TIMING_KEYS = ("timings_s", "training_s", "gradient_scores_s", "train_examples_per_s")
DECIDED = [(3, "drop", None), (5, "relabel", 1), (7, "keep", None)]  # (row, action, label)


def cases(files: tuple[str, ...]) -> list[tuple[str, str]]:
    """files x KINDS, plus a list-valued document for each JSON file."""
    out = [(f, k) for f in files for k in KINDS]
    return out + [(f, "list") for f in files if f in JSON_FILES]


def build_pristine(root: Path) -> tuple[Path, Path]:
    """Score TARGET and OTHER under `root`; give TARGET decisions and a map. Returns both."""
    from scoring.training.pipeline import score

    target = score(TARGET, root, show_progress=False)
    other = score(OTHER, root, show_progress=False)
    ids = store.RunDir(target).read_split().train_ids
    for row, action, label in DECIDED:
        decisions.append(target, int(ids[row]), action, label)
    # A stand-in for UMAP's output (the readers only need id, x, y): keeps the module fast.
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(len(ids), 2)).astype(np.float32)
    store.write_parquet(
        store.RunDir(target).map_file, pd.DataFrame({"id": ids, "x": xy[:, 0], "y": xy[:, 1]})
    )
    return target, other


def damage(file: Path, kind: str) -> None:
    """Damage `file` the way disks, editors and killed copies do."""
    data = file.read_bytes()
    if kind == "missing":
        file.unlink()
    elif kind == "empty":
        file.write_bytes(b"")
    elif kind == "truncated":
        file.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        if file.name == "decisions.jsonl":  # one garbage line among the user's decisions
            lines = data.splitlines(keepends=True)
            file.write_bytes(b"".join([lines[0], b"\x00\xff{not json\n", *lines[1:]]))
        else:  # same size: only the contents (and the modification time) give it away
            file.write_bytes(np.random.default_rng(1).bytes(len(data)))
    elif kind == "list":
        file.write_text("[1, 2, 3]\n")
    elif kind == "wrong":  # whole and readable, but not what this file holds
        if file.suffix == ".npz":  # the same names, as 2-D floats
            arrays = store.load_arrays(file)
            store.save_arrays(file, **{k: np.zeros((2, 2)) for k in arrays})
        else:  # another table under this name
            pd.DataFrame({"unrelated": [1.0, 2.0]}).to_parquet(file)
    else:
        raise ValueError(kind)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, Path]:
    return build_pristine(tmp_path_factory.mktemp("pristine") / "cache")


@pytest.fixture
def damaged(pristine, tmp_path, request) -> tuple[Path, Path, Path, str, str]:
    """A copy of the pristine cache with (file, kind) = request.param damaged in TARGET.

    Returns the copy's root, its TARGET and OTHER folders, the file and the kind.
    """
    target, other = pristine
    root = tmp_path / "copy"
    shutil.copytree(target.parent.parent, root)  # copy2: modification times kept
    t = root / target.relative_to(target.parent.parent)
    o = root / other.relative_to(other.parent.parent)
    file, kind = request.param
    damage(t / file, kind)
    return root, t, o, file, kind


def as_id(case: tuple[str, str]) -> str:
    return f"{case[0]}-{case[1]}"


def assert_same_run(repaired: Path, pristine: Path) -> None:
    """`repaired` holds what `pristine` holds: bytes, arrays, and JSON up to wall-clock time."""
    a, b = store.RunDir(repaired), store.RunDir(pristine)
    assert a.check(deep=True) == []
    assert a.read_status()["state"] == "done"
    for name in SAME_BYTES:
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name
    npz = sorted(b.relative(f) for f in b.written_files() if f.suffix == ".npz")
    assert npz == sorted(a.relative(f) for f in a.written_files() if f.suffix == ".npz")
    for name in npz:  # .npz bytes carry zip timestamps; the arrays must match exactly
        got, want = store.load_arrays(a.path / name), store.load_arrays(b.path / name)
        assert set(got) == set(want), name
        for key in want:
            if not key.endswith("_seconds"):
                assert np.array_equal(got[key], want[key]), (name, key)
    strip = lambda d, keys: {k: v for k, v in d.items() if k not in keys}  # noqa: E731
    assert strip(a.read_summary(), TIMING_KEYS) == strip(b.read_summary(), TIMING_KEYS)
    config_keys = ("created", "git_revision")
    assert strip(a.read_config(), config_keys) == strip(b.read_config(), config_keys)


# -- list ----------------------------------------------------------------------------------


@pytest.mark.parametrize("damaged", cases(PIPELINE_FILES + USER_FILES), ids=as_id, indirect=True)
def test_list_marks_the_damaged_run_and_lists_the_other(damaged):
    root, target, other, file, kind = damaged
    runs = {r.path: r for r in store.list_runs(root)}
    assert set(runs) == {target, other}
    assert runs[other].state == "done" and runs[other].problems == []
    assert runs[other].test_accuracy is not None
    info = runs[target]
    if file in USER_FILES:  # the user's and the app's files are not the run's results
        assert info.state == "done" and info.problems == []
        return
    assert info.state == "damaged"
    assert info.problem.startswith(file), info.problem
    reason = info.problems[0].reason
    expected = {"missing": "missing", "empty": "empty", "list": "list"}.get(kind)
    if expected:
        assert expected in reason
    assert "run the same `winnow score` command again" in info.fix or file == "config.json"


# -- score repairs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damaged",
    cases(PIPELINE_FILES) + [("features_free_test.npz", "wrong"), ("heldout.parquet", "wrong")],
    ids=as_id,
    indirect=True,
)
def test_score_again_repairs_to_the_undamaged_run(damaged, pristine):
    from scoring.training.pipeline import score

    root, target, other, file, _kind = damaged
    other_before = store.RunDir(other).digest()
    assert score(TARGET, root, show_progress=False) == target
    assert_same_run(target, pristine[0])
    assert store.RunDir(other).digest() == other_before  # the bystander is untouched
    assert len(decisions.latest(target)) == len(DECIDED)  # the user's work survives repair


def test_repair_retrains_only_the_damaged_run(pristine, tmp_path, monkeypatch):
    """A damaged run_000.npz retrains run 0, not run 1 nor the folds (counted, not timed)."""
    from scoring.training import pipeline, steps

    root = tmp_path / "copy"
    shutil.copytree(pristine[0].parent.parent, root)
    target = root / pristine[0].relative_to(pristine[0].parent.parent)
    damage(target / "runs/run_000.npz", "truncated")
    trained, folds = [], []
    real_run, real_fold = steps.train_one_run, steps.cross_fit_fold
    monkeypatch.setattr(
        steps, "train_one_run", lambda *a, **k: trained.append(a[3]) or real_run(*a, **k)
    )
    monkeypatch.setattr(
        steps, "cross_fit_fold", lambda *a, **k: folds.append(a[1]) or real_fold(*a, **k)
    )
    pipeline.score(TARGET, root, show_progress=False)
    assert trained == [0] and folds == []
    assert_same_run(target, pristine[0])


def test_resume_without_a_manifest_retrains_a_run_that_does_not_load(pristine, tmp_path):
    """An unfinished run has no manifest: a recorded run that fails to load is retrained."""
    from scoring.training.pipeline import score

    root = tmp_path / "copy"
    shutil.copytree(pristine[0].parent.parent, root)
    target = root / pristine[0].relative_to(pristine[0].parent.parent)
    store.write_status(target, "cancelled", message="cancelled")
    damage(target / "cv/fold_0.npz", "garbage")
    damage(target / "runs/run_001.npz", "truncated")
    assert store.RunDir(target).manifest() == {}
    score(TARGET, root, show_progress=False)
    assert_same_run(target, pristine[0])


def test_score_on_an_intact_run_recomputes_nothing(pristine, tmp_path):
    from scoring.training.pipeline import score

    root = tmp_path / "copy"
    shutil.copytree(pristine[0].parent.parent, root)
    target = root / pristine[0].relative_to(pristine[0].parent.parent)
    before = {f: f.stat().st_mtime_ns for f in store.RunDir(target).written_files()}
    status_before = (target / "status.json").read_bytes()
    score(TARGET, root, show_progress=False)
    after = {f: f.stat().st_mtime_ns for f in store.RunDir(target).written_files()}
    assert after == before and (target / "status.json").read_bytes() == status_before


def test_the_cases_cover_every_file_a_run_writes(pristine):
    """Every file of the target's manifest is damaged by the suite (runs and folds: the
    first of each), and every case names a file the target has."""
    rd = store.RunDir(pristine[0])
    written = {rd.relative(f) for f in rd.written_files()}
    numbered = {n for n in written if n.startswith(("runs/", "cv/"))}
    assert written - numbered <= set(PIPELINE_FILES)
    assert {n for n in PIPELINE_FILES if n != "status.json"} <= written
    assert {"features_free.npz", "features_free_test.npz", "heldout.parquet"} <= written


def test_done_status_records_every_written_file(pristine):
    import hashlib

    rd = store.RunDir(pristine[0])
    files = rd.read_status()["files"]
    on_disk = {
        p.relative_to(rd.path).as_posix()
        for p in rd.path.rglob("*")
        if p.is_file()
        and p.name not in ("status.json", "decisions.jsonl", "map.parquet")
        and p.suffix != ".safetensors"
    }
    assert set(files) == on_disk
    for name, meta in files.items():
        data = (rd.path / name).read_bytes()
        assert meta["size"] == len(data)
        assert meta["sha256"] == hashlib.sha256(data).hexdigest()


# -- export and map --------------------------------------------------------------------------


def _export(run: Path, out: Path) -> Path:
    selection = SelectionConfig(rule="hardest", score="el2n", fraction=0.5)
    return export_selection(run, selection, fmt="csv", out=out, apply_decisions=True)


@pytest.mark.parametrize("damaged", cases(PIPELINE_FILES), ids=as_id, indirect=True)
def test_export_and_map_refuse_a_damaged_run_naming_the_file(damaged, tmp_path):
    _root, target, other, file, _kind = damaged
    for action in (lambda: _export(target, tmp_path / "out.csv"), lambda: compute_map(target)):
        with pytest.raises(store.DamagedRun) as err:
            action()
        assert err.value.file == file
        assert file in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(store.DamagedRun):
        load_run(target)
    assert len(load_run(other).table) == 150  # the bystander reads as ever


@pytest.mark.parametrize("damaged", cases(("decisions.jsonl",)), ids=as_id, indirect=True)
def test_damaged_decisions_keep_every_readable_decision(damaged, tmp_path, pristine):
    _root, target, _other, _file, kind = damaged
    want = decisions.latest(pristine[0])
    if kind == "garbage":
        with pytest.warns(UserWarning, match="skipped 1 unreadable line"):
            got = decisions.latest(target)
        pd.testing.assert_frame_equal(got, want)
    else:  # missing, empty, cut short: what is left reads, no crash
        got = decisions.latest(target)
        assert len(got) <= len(want)
        if len(got):
            pd.testing.assert_frame_equal(got, want.iloc[: len(got)], check_like=True)
    out = _export(target, tmp_path / "out.csv")  # export works: the file is optional
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["rows"] == len(pd.read_csv(out)) > 0
    if kind == "garbage":  # every decision applied, as in the undamaged run's export
        want_rows = pd.read_csv(_export(pristine[0], tmp_path / "want.csv"))
        assert pd.read_csv(out)["id"].tolist() == want_rows["id"].tolist()


@pytest.mark.parametrize("damaged", cases(("map.parquet",)), ids=as_id, indirect=True)
def test_damaged_map_is_reported_and_the_rest_works(damaged, tmp_path):
    _root, target, _other, _file, kind = damaged
    if kind == "missing":
        assert read_map(target) is None  # not computed yet: the page offers to compute it
    else:
        with pytest.raises(store.DamagedRun, match="compute the map again"):
            read_map(target)
    assert _export(target, tmp_path / "out.csv").exists()
    assert load_run(target).table.shape[0] == 150


@pytest.mark.slow
def test_map_recomputes_a_damaged_map(pristine, tmp_path):
    pytest.importorskip("umap")
    root = tmp_path / "copy"
    shutil.copytree(pristine[0].parent.parent, root)
    target = root / pristine[0].relative_to(pristine[0].parent.parent)
    damage(target / "map.parquet", "garbage")
    compute_map(target)
    frame = read_map(target)
    assert list(frame.columns) == ["id", "x", "y"] and len(frame) == 150


# -- the CLI, for a representative few -------------------------------------------------------


def _one_line_error(result, file: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: damaged run"), result.stderr
    assert file in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "damaged", [("status.json", "garbage"), ("config.json", "list")], ids=as_id, indirect=True
)
def test_cli_list_shows_the_damage_and_the_other_run(damaged):
    root, target, other, file, _kind = damaged
    result = run_cli("list", "--cache-dir", str(root), cache=root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    (other_line,) = [line for line in lines if str(other) in line]
    assert "  done  " in other_line
    i = next(i for i, line in enumerate(lines) if str(target) in line)
    assert "damaged" in lines[i]
    assert lines[i + 1].strip().startswith(file) and "delete the run folder" in lines[i + 1]


@pytest.mark.parametrize(
    "damaged",
    [
        ("runs/run_000.npz", "truncated"),
        pytest.param(("status.json", "list"), marks=pytest.mark.slow),
    ],
    ids=as_id,
    indirect=True,
)
def test_cli_export_and_map_exit_2_with_one_line(damaged, tmp_path):
    root, target, _other, file, _kind = damaged
    out = tmp_path / "out.csv"
    args = ("--rule", "hardest", "--score", "el2n", "--fraction", "0.5", "--format", "csv")
    _one_line_error(
        run_cli("export", "--run", str(target), *args, "--out", str(out), cache=root), file
    )
    _one_line_error(run_cli("map", "--run", str(target), cache=root), file)
    assert not out.exists()


@pytest.mark.parametrize("damaged", [("scores.parquet", "garbage")], ids=as_id, indirect=True)
def test_cli_score_again_repairs(damaged, pristine, tmp_path):
    root, target, _other, _file, _kind = damaged
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TARGET.to_dict()))
    result = run_cli("score", "--config", str(config), "--cache-dir", str(root), cache=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(target)
    assert "repairing" in result.stderr and "scores.parquet" in result.stderr
    assert_same_run(target, pristine[0])


# -- runs finished before manifests were kept -----------------------------------------------

# A done run without a manifest (an older run): no size or hash to compare, so damage shows
# only when a file is read. Its result files, each damaged as above.
OLD_RUN_FILES = tuple(
    f for f in PIPELINE_FILES if f not in ("status.json", "config.json", "summary.json")
)


@pytest.fixture
def damaged_old(pristine, tmp_path, request) -> tuple[Path, Path, str, str]:
    """A copy of the pristine cache whose TARGET lost its manifest, then (file, kind)."""
    target, _other = pristine
    root = tmp_path / "copy"
    shutil.copytree(target.parent.parent, root)
    t = root / target.relative_to(target.parent.parent)
    status = store.read_json(t / "status.json")
    status.pop("files")
    store.write_json(t / "status.json", status)
    file, kind = request.param
    damage(t / file, kind)
    return root, t, file, kind


# Whole files of the wrong type or columns: only a typed reader can tell.
WRONG_TYPED = ("split.npz", "runs/run_000.npz", "heldout.parquet", "scores.parquet")


@pytest.mark.slow  # 56 repairs: `make test-slow` (and .ci/run) runs them
@pytest.mark.parametrize(
    "damaged_old",
    cases(OLD_RUN_FILES) + [(f, "wrong") for f in WRONG_TYPED],
    ids=as_id,
    indirect=True,
)
def test_an_older_run_is_repaired_by_score_or_refused_by_readers_in_one_line(
    damaged_old, pristine, tmp_path
):
    from scoring.read.suspects import suspects
    from scoring.training.pipeline import score

    root, target, file, kind = damaged_old
    # The readers: a damaged file is named in one line, never a ValueError or KeyError. (The
    # map only where it reads the file: otherwise it would compute a whole UMAP per case.)
    actions = [lambda: suspects(load_run(target)), lambda: _export(target, tmp_path / "o.csv")]
    if file in ("split.npz", "runs/run_000.npz"):
        actions.append(lambda: compute_map(target))
    for action in actions:
        try:
            action()
        except store.DamagedRun as err:
            assert "\n" not in str(err)
        except InputError as err:
            assert "\n" not in str(err)
    # `score` finds a file that does not read and computes it again, as for a run with a
    # manifest. A missing file may be one an older version never wrote: the run must then
    # still read whole (and `score` may leave it out).
    assert score(TARGET, root, show_progress=False) == target
    rd = store.RunDir(target)
    assert rd.check(deep=True) == [] and rd.read_status()["state"] == "done"
    if kind != "missing" or (target / file).exists():
        assert_same_run(target, pristine[0])
    else:
        assert len(load_run(target).table) == 150
