"""`python -m scoring` as a user runs it: subprocesses, signals, exit codes, messages."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.__main__ import main
from tests.conftest import ROOT, run_cli

TINY = ("--dataset", "digits", "--preset", "tiny", "--limit", "300", "--quiet")


def _popen(args, cache_dir):
    env = {**os.environ, "WINNOW_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "scoring", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_score_prints_run_dir_last_and_list_shows_it(cache_dir):
    out = run_cli("score", *TINY, cache=cache_dir)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.is_dir() and store.read_status(path)["state"] == "done"
    listing = run_cli("list", cache=cache_dir)
    assert listing.returncode == 0 and str(path) in listing.stdout and "done" in listing.stdout
    header, line = listing.stdout.splitlines()[:2]
    assert "test_acc" in header.split() and "digits" in line and " 0." in line


def test_list_with_no_runs_names_the_folder_it_searched(tmp_path):
    # Outside the repo, with no WINNOW_CACHE_DIR: the default `./cache` is relative, so the
    # message must say which absolute folder that was and how to point elsewhere.
    env = {k: v for k, v in os.environ.items() if k != "WINNOW_CACHE_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "scoring", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    message = out.stderr.strip()
    assert f"no runs in {(tmp_path / 'cache').resolve()} (no such folder)" in message
    assert "--cache-dir" in message and "WINNOW_CACHE_DIR" in message


def test_killed_job_resumes_run_by_run_with_identical_results(cache_dir, tmp_path):
    args = (
        "--dataset digits --limit 400 --runs 3 --epochs 40 --quiet --scores el2n,aum,forgetting"
    ).split()
    proc = _popen(["score", *args], cache_dir)
    run0 = []
    _wait_for(lambda: run0.extend(cache_dir.glob("*/*/runs/run_000.npz")) or bool(run0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    path = run0[0].parents[1]
    assert store.read_status(path)["state"] == "running"  # never claimed done
    assert not (path / "scores.parquet").exists()
    listing = run_cli("list", cache=cache_dir)
    assert "interrupted" in listing.stdout
    stamp = run0[0].stat().st_mtime_ns

    out = run_cli("score", *args, cache=cache_dir)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip().splitlines()[-1]) == path
    assert run0[0].stat().st_mtime_ns == stamp  # run 0 was loaded, not recomputed

    clean = run_cli("score", *args, cache=tmp_path / "clean")
    clean_path = Path(clean.stdout.strip().splitlines()[-1])
    pd.testing.assert_frame_equal(
        pd.read_parquet(path / "scores.parquet"), pd.read_parquet(clean_path / "scores.parquet")
    )


def test_sigterm_cancels_cleanly_and_rerun_finishes(cache_dir):
    args = tuple("--dataset digits --limit 400 --runs 4 --epochs 40 --scores loss --quiet".split())
    proc = _popen(["score", *args], cache_dir)
    _wait_for(lambda: any(cache_dir.glob("*/*/runs/run_000.npz")))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "cancelled" in err
    (path,) = store.iter_run_dirs(cache_dir)
    assert store.read_status(path)["state"] == "cancelled"
    assert not (path / "lock").exists()
    out = run_cli("score", *args, cache=cache_dir)
    assert out.returncode == 0 and store.read_status(path)["state"] == "done"


def test_two_requests_for_one_key_share_one_job(cache_dir):
    args = tuple("--dataset digits --limit 400 --runs 2 --epochs 10 --scores el2n --quiet".split())
    first = _popen(["score", *args], cache_dir)
    _wait_for(lambda: any(cache_dir.glob("*/*/lock")))
    first.send_signal(signal.SIGSTOP)  # hold the first job mid-run, deterministically
    try:
        second = _popen(["score", *args], cache_dir)
        line = second.stderr.readline()  # blocks until the second job says what it does
        assert "waiting" in line
    finally:
        first.send_signal(signal.SIGCONT)
    out1, _ = first.communicate(timeout=120)
    out2, _ = second.communicate(timeout=120)
    assert first.returncode == second.returncode == 0
    assert out1.strip().splitlines()[-1] == out2.strip().splitlines()[-1]
    path = Path(out1.strip().splitlines()[-1])
    assert store.read_status(path)["pid"] == first.pid  # the second one never computed


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    ok_rows = "".join(f"a fine sentence number {i}\t{i % 2}\n" for i in range(20))
    return [
        (["--dataset", str(tmp / "missing.csv")], "does not exist"),
        (["--dataset", str(_write(tmp / "empty.csv", "text,label\n"))], "no examples"),
        (
            ["--dataset", str(_write(tmp / "one.tsv", "text\tlabel\n" + "x y\t1\n" * 12))],
            "only one class",
        ),
        (
            [
                "--dataset",
                str(
                    _write(
                        tmp / "reg.csv",
                        "text,score\n"
                        + "".join(f"sentence {i},{i * 0.37:.2f}\n" for i in range(20)),
                    )
                ),
                "--label-col",
                "score",
            ],
            "regression",
        ),
        (["--dataset", str(_write(tmp / "nan.tsv", "text\tlabel\n" + ok_rows + "\t1\n"))], "empty"),
        (
            [
                "--dataset",
                str(_write(tmp / "ok.tsv", "text\tlabel\n" + ok_rows)),
                "--input-col",
                "body",
            ],
            "body",
        ),
        (["--dataset", str(tmp / "ok.tsv"), "--scores", "el2n,grandd"], "unknown score 'grandd'"),
        (["--dataset", str(tmp / "ok.tsv"), "--runs", "0"], "--runs must be at least 1"),
        (["--dataset", str(tmp / "ok.tsv"), "--recipe", "cnn32"], "does not fit text data"),
        (["--dataset", "digits", "--noise", "1.5"], "--noise must be a fraction"),
        (["--dataset", "digits", "--scores", "vog", "--checkpoints", "1"], "--checkpoints must"),
        (["--dataset", "digits", "--scores", "grand", "--grad-at", "end"], "--grad-at must be"),
        (["--dataset", "digits", "--limit", "0"], "limit"),
        (["--dataset", str(_write(tmp / "data.xlsx", "nope"))], "xlsx"),
    ]


def test_bad_input_gets_one_clear_message_and_exit_2(cache_dir, tmp_path, capsys):
    for args, message in _bad_inputs(tmp_path):
        code = main(["score", *args, "--quiet"])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message.lower() in err.lower(), (args, err)
        assert err.startswith("error: ") and "Traceback" not in err
        # Nothing half-done is ever marked done.
        for path in store.iter_run_dirs(cache_dir):
            assert (store.read_status(path) or {}).get("state") != "done"


def test_bad_input_from_a_real_process_has_no_traceback(cache_dir, tmp_path):
    out = run_cli("score", "--dataset", str(tmp_path / "nope.parquet"), cache=cache_dir)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "does not exist" in out.stderr
    assert out.stdout == ""


def test_scores_are_written_with_per_run_values(cache_dir):
    out = run_cli("score", *TINY, "--scores", "el2n,forgetting", cache=cache_dir)
    path = Path(out.stdout.strip().splitlines()[-1])
    summary = json.loads((path / "summary.json").read_text())
    assert set(summary["scores"]) == {"el2n", "forgetting"}
    per_run = pd.read_parquet(path / "scores_per_run.parquet")
    assert {"el2n__run0", "el2n__run1", "forgetting__run0", "forgetting__run1"} <= set(per_run)
    frame = pd.read_parquet(path / "scores.parquet")
    np.testing.assert_allclose(
        frame["forgetting"], per_run[["forgetting__run0", "forgetting__run1"]].mean(axis=1)
    )


@pytest.mark.parametrize("bad", ["--runs=x", "--nonsense"])
def test_argparse_errors_exit_2(bad, cache_dir):
    out = run_cli("score", bad, cache=cache_dir)
    assert out.returncode == 2 and "usage:" in out.stderr


def test_gradient_options_reach_the_run(cache_dir):
    out = run_cli(
        "score", *TINY, "--scores", "grand,tracin", "--grad-params", "last", "--grad-at",
        "early", "--checkpoints", "2", cache=cache_dir,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip().splitlines()[-1])
    config = json.loads((path / "config.json").read_text())["config"]
    assert config["grads"] == {"at": "early", "params": "last", "checkpoints": 2}
    assert len(store.load_arrays(path / "runs" / "run_000.npz")["checkpoint_steps"]) == 2
    assert (path / "runs" / "run_000.safetensors").is_file()


def test_tiny_preset_is_per_recipe_and_flags_override_it():
    from scoring.cli.main import build_parser
    from scoring.cli.score import config_from_args

    def cfg(*extra):
        return config_from_args(build_parser().parse_args(["score", "--dataset", "t.tsv", *extra]))

    fine = cfg("--recipe", "finetune", "--preset", "tiny")
    assert (fine.train.epochs, fine.train.max_length, fine.train.runs) == (1, 64, 2)
    mine = cfg("--recipe", "finetune", "--preset", "tiny", "--epochs", "3", "--max-length", "32")
    assert (mine.train.epochs, mine.train.max_length) == (3, 32)
    mlp = cfg("--recipe", "mlp", "--preset", "tiny")
    assert (mlp.train.epochs, mlp.train.max_length, mlp.cv_folds) == (4, None, 2)


def _flags_config(*flags: str):
    from scoring.cli.main import build_parser
    from scoring.cli.score import config_from_args

    return config_from_args(build_parser().parse_args(["score", *flags]))


def test_a_config_file_is_the_same_run_as_its_flags(cache_dir, tmp_path):
    by_flags = run_cli("score", *TINY, cache=cache_dir)
    assert by_flags.returncode == 0, by_flags.stderr
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(_flags_config(*TINY).to_dict()))
    by_file = run_cli("score", "--config", str(config_file), "--quiet", cache=cache_dir)
    assert by_file.returncode == 0, by_file.stderr
    # The same key, so the same (cached) run folder: nothing was trained twice.
    assert by_file.stdout.strip().splitlines()[-1] == by_flags.stdout.strip().splitlines()[-1]


def test_a_sweep_config_file_is_the_same_sweep_as_its_flags(app_cache, tmp_path):
    from scoring.prune.select import SelectionConfig
    from scoring.prune.sweeps import SweepConfig
    from tests.conftest import digits_run

    run = str(digits_run(app_cache))
    flags = "--score el2n --rule easiest --fractions 0.5 --seeds 1 --schedule epochs".split()
    by_flags = run_cli("sweep", "--run", run, *flags, "--quiet", cache=app_cache)
    assert by_flags.returncode == 0, by_flags.stderr
    sweep = SweepConfig(SelectionConfig("easiest", 0.5, "el2n"), (0.5,), 1, "epochs")
    (tmp_path / "sweep.json").write_text(json.dumps(sweep.to_dict()))
    args = ("sweep", "--run", run, "--config", str(tmp_path / "sweep.json"), "--quiet")
    by_file = run_cli(*args, cache=app_cache)
    assert by_file.returncode == 0, by_file.stderr
    assert by_file.stdout.strip().splitlines()[-1] == by_flags.stdout.strip().splitlines()[-1]


def test_config_file_mistakes_get_one_line_and_exit_2(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_flags_config(*TINY).to_dict()))
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "typo.json").write_text(json.dumps({"train": {"epoch": 3}}))
    cases = [
        (["score", "--config", str(tmp_path / "none.json")], "--config: no file"),
        (["score", "--config", str(tmp_path / "broken.json")], "not a readable JSON file"),
        (["score", "--config", str(tmp_path / "list.json")], "must hold a JSON object"),
        (
            ["score", "--config", str(tmp_path / "typo.json")],
            "config.train: unknown field(s) epoch",
        ),
        (["score", "--config", str(good), "--epochs", "3"], "drop --epochs"),
        (["sweep", "--run", "r", "--config", str(good), "--rule", "easiest"], "drop --rule"),
        (["sweep", "--run", str(tmp_path), "--config", str(good)], "unknown field(s)"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (args, err)
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--run", "r", "--score", "el2n"])
    assert exc.value.code == 2
    assert "--rule is required (or give --config FILE)" in capsys.readouterr().err


def test_flags_are_checked_before_heavy_imports(cache_dir):
    """A typo is answered at once: neither torch nor pandas loads to say so."""
    code = (
        "import sys\n"
        "from scoring.__main__ import main\n"
        "try:\n"
        "    main(['score', '--runs=x'])\n"
        "except SystemExit as exit:\n"
        "    print(exit.code, sorted({'torch', 'pandas'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "2 []", out.stderr


def _winnow() -> Path:
    script = Path(sys.executable).with_name("winnow")
    if not script.is_file():
        pytest.skip(f"no `winnow` script beside {sys.executable}: run `pip install -e .` first")
    return script


def test_the_winnow_command_works_from_any_folder(cache_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # No PYTHONPATH: the installed package is found, not the repo's folder.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["WINNOW_CACHE_DIR"] = str(cache_dir)

    def winnow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(_winnow()), *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )

    usage = winnow("--help")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: winnow")
    assert "score" in usage.stdout and "sweep" in usage.stdout
    listing = winnow("list")
    assert listing.returncode == 0 and f"no runs in {cache_dir}" in listing.stderr
    assert winnow("score", "--runs=x").returncode == 2


def test_suspects_table_shows_each_rows_input_and_says_when_the_models_agree(app_cache, capsys):
    from scoring.read.suspects import suspects
    from scoring.read.views import load_run
    from tests.conftest import digits_run, text_run

    run = text_run(app_cache)
    rd = store.RunDir(run)
    texts = pd.read_parquet(rd.texts_file)
    first = int(suspects(load_run(run), split="train")["id"].iloc[0])
    long = "a very long premise\nthat goes on " + "and on " * 20
    texts.loc[texts["id"] == first, "text"] = long
    texts.to_parquet(rd.texts_file)
    frame = suspects(load_run(run))

    assert main(["suspects", "--run", str(run)]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["id", "premise", "hypothesis", "split"]
    by_id = {int(line.split()[0]): line for line in lines}
    shown = " ".join(long.split())[:59] + "…"  # one line, 60 characters with the ellipsis
    assert shown in by_id[first] and " ".join(long.split()) not in by_id[first]
    for row in frame.itertuples():
        if row.id != first:
            assert "a man plays guitar" in by_id[row.id]
        if row.label == row.suggested_label:  # not a label error by this evidence: said so
            assert "the models agree with the given label" in by_id[row.id]
    assert (frame["label"] == frame["suggested_label"]).any()
    # csv keeps its columns: the id joins them back to the data.
    assert main(["suspects", "--run", str(run), "--format", "csv", "--top", "1"]) == 0
    assert "premise" not in capsys.readouterr().out.splitlines()[0]

    assert main(["suspects", "--run", str(digits_run(app_cache)), "--top", "3"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["id", "input", "split"]
    assert all(line.split()[1] == "image" for line in lines)
