import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scoring import store
from scoring.config import SCORING_VERSION
from scoring.errors import InputError


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    store.write_json(target, {"v": 1})

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left


def test_arrays_round_trip_without_pickle(tmp_path):
    path = tmp_path / "run.npz"
    store.save_arrays(path, a=np.arange(3), b=np.eye(2, dtype=np.float32))
    got = store.load_arrays(path)
    assert np.array_equal(got["a"], np.arange(3)) and got["b"].dtype == np.float32
    store.save_arrays(path, obj=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):  # object arrays would need pickle: refused
        store.load_arrays(path)


def test_status_round_trip(tmp_path):
    assert store.read_status(tmp_path) is None
    store.write_status(tmp_path, "running", progress=0.25, message="run 1/5")
    st = store.read_status(tmp_path)
    assert st["state"] == "running" and st["progress"] == 0.25 and st["pid"] == os.getpid()
    with pytest.raises(ValueError):
        store.write_status(tmp_path, "finished")


def test_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path):
    first, second = store.RunLock(tmp_path), store.RunLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()  # held by a live process (us)
    first.release()
    assert second.acquire()
    second.release()
    # A lock left by a process that died is stale.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.RunDir(tmp_path).lock_file.write_text(
        json.dumps({"pid": dead.pid, "host": os.uname().nodename})
    )
    assert store.RunLock(tmp_path).acquire()


def test_check_version_refuses_other_versions(tmp_path):
    rd = store.RunDir(tmp_path)
    store.write_json(rd.config_file, {"scoring_version": SCORING_VERSION})
    store.check_version(tmp_path)
    store.write_json(rd.config_file, {"scoring_version": SCORING_VERSION + 1})
    with pytest.raises(InputError, match="written by scoring version"):
        store.check_version(tmp_path)


# -- RunDir ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_run_dir_names_every_file_under_its_folder(tmp_path):
    rd = store.RunDir(tmp_path / "cache" / "fp" / "key")
    assert (rd.key, rd.fingerprint, rd.cache_dir) == ("key", "fp", tmp_path / "cache")
    assert rd.run_file(3).name == "run_003.npz" and rd.states_file(3).parent == rd.runs_dir
    assert rd.fold_file(1).relative_to(rd.path).as_posix() == "cv/fold_1.npz"
    assert rd.images_file.relative_to(rd.path).as_posix() == "examples/images.npy"
    assert rd.trial_file("abc").relative_to(rd.path).as_posix() == "sweeps/trials/abc.json"
    sweep = rd.sweep("s1")
    assert sweep.trials_file.parent == sweep.path == rd.sweeps_dir / "s1"
    assert rd.embeddings_file("e").relative_to(rd.cache_dir).as_posix() == "fp/embeddings/e.npz"
    assert rd.lock().file == rd.lock_file
    assert rd.read_status() is None and rd.read_predictions() is None
    assert rd.read_texts() is None and rd.open_images() is None and rd.read_inputs() is None
    assert rd.trial_files() == []


def test_split_round_trips(tmp_path):
    rd = store.RunDir(tmp_path)
    split = store.RunSplit(
        train_ids=np.array([4, 7, 9]),
        test_ids=np.array([1]),
        labels=np.array([0, 1, 1]),
        true_labels=np.array([0, 1, 0]),
        test_labels=np.array([1]),
    )
    rd.write_split(split)
    got = rd.read_split()
    for name in ("train_ids", "test_ids", "labels", "true_labels", "test_labels"):
        assert np.array_equal(getattr(got, name), getattr(split, name)), name


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32)


@pytest.mark.parametrize(
    "make",
    [
        # the digits loader: float64 pixels 0..16 / 16, cast to float32
        lambda p: (p[:, :1] % 17 / 16).astype(np.float32),
        # image files: float32 pixels, then /= 255 in float32
        lambda p: np.ascontiguousarray(p, dtype=np.float32) / np.float32(255),
    ],
)
def test_image_inputs_come_back_bit_for_bit_from_uint8(tmp_path, make):
    pixels = np.random.default_rng(0).integers(0, 256, size=(50, 3, 4, 4))
    train, test = make(pixels[:40]), make(pixels[40:])
    rd = store.RunDir(tmp_path)
    rd.write_inputs(store.ModelInputs("images", train, test))
    stored = store.load_arrays(rd.inputs_file)
    assert stored["train"].dtype == np.uint8  # a quarter of the float32 size
    got = rd.read_inputs()
    assert got.kind == "images" and got.train.dtype == np.float32
    assert np.array_equal(_bits(got.train), _bits(train))
    assert np.array_equal(_bits(got.test), _bits(test))


def test_inputs_no_divisor_reproduces_are_kept_as_float32(tmp_path):
    train = np.random.default_rng(1).random((6, 1, 2, 2), dtype=np.float32)
    rd = store.RunDir(tmp_path)
    rd.write_inputs(store.ModelInputs("images", train, train[:2]))
    assert store.load_arrays(rd.inputs_file)["train"].dtype == np.float32
    assert np.array_equal(_bits(rd.read_inputs().train), _bits(train))


def test_token_and_embedding_inputs(tmp_path):
    rd = store.RunDir(tmp_path / "cache" / "fp" / "key")
    tokens = np.random.default_rng(2).integers(0, 30_000, size=(5, 3, 8))  # int64
    rd.write_inputs(store.ModelInputs("tokens", tokens, tokens[:2]))
    got = rd.read_inputs()
    assert got.train.dtype == np.int64 and np.array_equal(got.train, tokens)
    emb = np.random.default_rng(3).random((5, 4), dtype=np.float32)
    rd.write_inputs(store.ModelInputs("embeddings", emb, emb[:2]), embedding_key="enc")
    assert rd.read_inputs() is None  # the dataset's embeddings file is gone: prepare again
    store.save_arrays(rd.embeddings_file("enc"), train=emb, test=emb[:2])
    got = rd.read_inputs()
    assert got.kind == "embeddings" and np.array_equal(got.train, emb)


# Every file name a run folder holds (RunDir's table), and the folders inside one.
RUN_FILES = (
    "config.json",
    "status.json",
    "split.npz",
    "annotations.npz",
    "inputs.npz",
    "scores.parquet",
    "scores_per_run.parquet",
    "predictions.parquet",
    "summary.json",
    "images.npy",
    "texts.parquet",
    "decisions.jsonl",
    "map.parquet",
    "sweep.json",
    "trials.parquet",
)
RUN_FILE_PREFIXES = ("run_", "fold_")  # f"run_{r:03d}.npz", f"fold_{f}.npz"
RUN_FOLDERS = ("runs", "cv", "examples", "sweeps", "trials", "embeddings", "lock", "_hf")


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, nodes)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _spelled_run_files(path: Path) -> list[str]:
    """Run-file names spelled in code (strings, f-string parts, `x / "folder"`), not docs."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found += [
                f"{node.lineno}: {name}"
                for name in RUN_FILES
                if re.search(rf"(?<![\w.]){re.escape(name)}\b", node.value)  # not x.config.json
            ]
        if isinstance(node, ast.JoinedStr):
            parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
            found += [
                f"{node.lineno}: {p}"
                for p in parts
                if isinstance(p, str) and p.startswith(RUN_FILE_PREFIXES)
            ]
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant)
            and node.right.value in RUN_FOLDERS
        ):
            found.append(f"{node.lineno}: / {node.right.value!r}")
    return found


# The one module that spells a run file's name: the store's `paths` part (`RunPaths`,
# `SweepDir` and the few name constants the other parts of the store import).
NAMES_OWNER = ROOT / "scoring" / "store" / "paths.py"


def test_only_store_spells_a_run_file_name():
    """One owner per file format: every other module goes through `store.RunDir`."""
    files = [ROOT / "app.py", *sorted((ROOT / "scoring").rglob("*.py"))]
    files += sorted((ROOT / "app_pages").glob("*.py"))
    assert NAMES_OWNER in files and _spelled_run_files(NAMES_OWNER)  # the owner is still there
    spelled = {
        str(f.relative_to(ROOT)): hits
        for f in files
        if f != NAMES_OWNER and (hits := _spelled_run_files(f))
    }
    assert spelled == {}


def test_the_check_sees_a_spelled_name(tmp_path):
    code = tmp_path / "bad.py"
    code.write_text(
        '"""Reads scores.parquet (a docstring may say so)."""\n'
        'a = run / "scores.parquet"\n'
        'b = run / "runs" / f"run_{r:03d}.npz"\n'
        'c = jobs / f"{job}.config.json"\n'
    )
    assert sorted(_spelled_run_files(code)) == ["2: scores.parquet", "3: / 'runs'", "3: run_"]


# -- damaged runs -------------------------------------------------------------------------


def _finished_run(root: Path) -> store.RunDir:
    """A minimal finished run: config, summary, scores and a done status with its manifest."""
    rd = store.RunDir(root / "fp" / "key")
    config = {"scoring_version": SCORING_VERSION, "config": {}, "dataset": {}, "recipe": {}}
    store.write_json(rd.config_file, config)
    store.write_json(rd.summary_file, {"scores": {}, "test_accuracy_mean": 0.5})
    store.save_arrays(rd.run_file(0), test_accuracy=np.float64(0.5), probs_final=np.eye(2))
    store.write_status(rd.path, "done", files=rd.digest())
    return rd


def test_damaged_run_is_an_input_error_in_one_line(tmp_path):
    err = store.DamagedRun(tmp_path, "runs/run_000.npz", "is empty")
    assert isinstance(err, InputError) and "\n" not in str(err)
    assert str(err).startswith(f"damaged run {tmp_path}: runs/run_000.npz is empty; run the same")
    assert store.DamagedRun(tmp_path, "config.json", "x").fix == store.FIX_CONFIG
    assert store.DamagedRun(tmp_path, "map.parquet", "x").fix == store.FIX_MAP


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "is empty"), (b"{not json", "is not valid JSON"), (b"[1]", "holds a list")],
)
def test_status_readers_strict_and_lenient(tmp_path, content, reason):
    rd = _finished_run(tmp_path)
    rd.status_file.write_bytes(content)
    assert store.read_status(rd.path) is None  # lenient: jobs and sweeps ask "done?" only
    with pytest.raises(store.DamagedRun, match=reason) as err:
        rd.read_status()
    assert err.value.file == "status.json"
    assert [p.file for p in rd.check()] == ["status.json"]


def test_status_with_an_unknown_state_is_damage(tmp_path):
    rd = _finished_run(tmp_path)
    store.write_json(rd.status_file, {"state": "exploded"})
    with pytest.raises(store.DamagedRun, match="no valid state"):
        rd.read_status()


def test_check_compares_sizes_and_hashes_when_the_time_moved(tmp_path):
    rd = _finished_run(tmp_path)
    assert rd.check(deep=True) == []
    file = rd.run_file(0)
    data = file.read_bytes()
    stat = file.stat()
    flipped = data[:-1] + bytes([data[-1] ^ 1])  # same size, one bit
    file.write_bytes(flipped)
    (problem,) = rd.check()  # the time moved: hashed, found
    assert problem.file == "runs/run_000.npz" and "sha256" in problem.reason
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # damage that kept the time
    assert rd.check() == []  # a stat cannot see it ...
    assert [p.file for p in rd.check(deep=True)] == ["runs/run_000.npz"]  # ... a hash can
    file.write_bytes(data)  # the original bytes under a new time (a copy without -p): fine
    assert rd.check() == []
    file.write_bytes(data[:10])
    assert rd.check()[0].reason == f"is cut short (10 of {len(data):,} bytes)"


def test_iter_run_dirs_finds_a_run_without_its_config(tmp_path):
    rd = _finished_run(tmp_path)
    rd.config_file.unlink()
    (tmp_path / "_jobs" / "x").mkdir(parents=True)
    store.write_json(tmp_path / "_jobs" / "x" / "status.json", {"state": "done"})
    assert list(store.iter_run_dirs(tmp_path)) == [rd.path]
    (info,) = store.list_runs(tmp_path)
    assert info.state == "damaged" and info.problem == "config.json is missing"
    assert info.fix == store.FIX_CONFIG and info.dataset == "?"


def test_remove_deletes_only_run_folders(tmp_path):
    rd = _finished_run(tmp_path)
    with pytest.raises(InputError, match="not a Winnow run folder"):
        store.RunDir(tmp_path / "fp").remove()
    rd.remove()
    assert not rd.path.exists() and (tmp_path / "fp").exists()
