"""Background jobs as the app drives them: start, poll, cancel, failure messages."""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scoring import jobs, store
from scoring.__main__ import main
from scoring.config import DataConfig, ScoreConfig, TrainConfig, apply_preset
from scoring.errors import InputError
from scoring.prune.select import SelectionConfig
from scoring.prune.sweeps import SweepConfig
from tests.app.pages import fake_job
from tests.conftest import digits_run

TINY = apply_preset(ScoreConfig(data=DataConfig(source="digits", limit=300)), "tiny")


def _missing(tmp_path: Path, name: str) -> ScoreConfig:
    return dataclasses.replace(TINY, data=DataConfig(source=str(tmp_path / name)))


def _wait(job_id, cache_dir, until=("done", "failed", "cancelled"), timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = jobs.status(job_id, cache_dir)
        if st.state in until:
            return st
        time.sleep(0.2)
    raise AssertionError(f"job still {st.state}: {st.message}")


def test_a_score_job_runs_in_the_background_and_reports_its_run(cache_dir):
    job_id = jobs.start_score(TINY, cache_dir)
    first = jobs.status(job_id, cache_dir)
    assert first.state == "running" and first.kind == "score"
    assert [j.job_id for j in jobs.running(cache_dir)] == [job_id]
    done = _wait(job_id, cache_dir)
    assert done.state == "done" and done.progress == 1.0
    assert store.read_status(Path(done.run))["state"] == "done"
    assert jobs.running(cache_dir) == []
    assert "Traceback" not in jobs.log_tail(job_id, cache_dir)
    # The job got the config itself, not flags: the run records exactly that config.
    recorded = json.loads((Path(done.run) / "config.json").read_text())
    assert ScoreConfig.from_dict(recorded["config"]) == TINY
    assert recorded["key"] == TINY.key()
    argv = store.read_json(jobs.jobs_dir(cache_dir) / f"{job_id}.json")["argv"]
    assert argv[argv.index("score") + 1 : argv.index("--config")] == ["--executor", "local"]


def test_bad_input_job_fails_with_the_cli_message(cache_dir, tmp_path):
    job_id = jobs.start_score(_missing(tmp_path, "nope.csv"), cache_dir)
    st = _wait(job_id, cache_dir)
    assert st.state == "failed" and "does not exist" in st.message


def test_cancel_stops_the_job_and_marks_the_run(cache_dir):
    config = ScoreConfig(train=TrainConfig(runs=6, epochs=60), scores=("loss",))
    job_id = jobs.start_score(config, cache_dir)
    deadline = time.monotonic() + 120
    # Wait until it has started its run (a cancel before that has no run to mark).
    while (run := jobs.status(job_id, cache_dir).run) is None or store.read_status(run) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert jobs.cancel(job_id, cache_dir)
    st = _wait(job_id, cache_dir)
    assert st.state == "cancelled"
    assert store.read_status(Path(st.run))["state"] == "cancelled"
    assert not jobs.cancel(job_id, cache_dir)  # nothing left to cancel


def test_jobs_are_listed_newest_first_and_unknown_ids_are_none(cache_dir, tmp_path):
    a = jobs.start_score(_missing(tmp_path, "a.csv"), cache_dir)
    time.sleep(1.1)  # job ids and start times have one-second resolution in the name
    b = jobs.start_score(_missing(tmp_path, "b.csv"), cache_dir)
    _wait(a, cache_dir)
    _wait(b, cache_dir)
    assert [j.job_id for j in jobs.list_jobs(cache_dir)] == [b, a]
    assert jobs.status("no-such-job", cache_dir) is None


def test_a_sweep_job_gets_its_config_as_json_and_finishes(app_cache):
    run = digits_run(app_cache)
    selection = SelectionConfig(rule="easiest", fraction=0.5, score="el2n", normalization="class")
    config = SweepConfig(selection, fractions=(0.5,), seeds=1, schedule="epochs")
    job_id = jobs.start_sweep(run, config, app_cache)
    record = store.read_json(jobs.jobs_dir(app_cache) / f"{job_id}.json")
    argv = record["argv"]
    assert argv[argv.index("sweep") + 1 : argv.index("sweep") + 3] == ["--run", str(run)]
    assert SweepConfig.from_dict(store.read_json(Path(argv[argv.index("--config") + 1]))) == config
    assert record["config"] == config.to_dict()
    st = _wait(job_id, app_cache)
    assert st.state == "done", jobs.log_tail(job_id, app_cache)
    assert st.kind == "sweep" and Path(st.run) == run
    # The config files beside the job files are not jobs.
    assert [j.job_id for j in jobs.list_jobs(app_cache)] == [job_id]


def test_a_map_job_writes_the_map(app_cache):
    run = digits_run(app_cache)
    job_id = jobs.start_map(run, app_cache)
    st = _wait(job_id, app_cache)
    assert st.state == "done" and st.kind == "map", jobs.log_tail(job_id, app_cache)


# -- pid reuse: a live, unrelated process stands in for a dead job whose pid was reused -----


@pytest.fixture
def stranger():
    """A live process that is not a job (in its own session, so a group signal could reach it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    yield proc
    proc.kill()
    proc.wait()


def _wrong_start(pid: int) -> int | float:
    start = store.process_start(pid)
    assert start is not None  # Linux (/proc) or psutil: the start time is known
    return start - 1  # the job that held this pid started earlier and died


def test_process_start_tells_processes_apart(stranger):
    mine, theirs = store.process_start(os.getpid()), store.process_start(stranger.pid)
    assert mine is not None and theirs is not None
    assert store.process_start(os.getpid()) == mine  # stable for one process
    assert theirs >= mine  # started after this test process
    assert store.pid_alive(stranger.pid, theirs) and store.pid_alive(stranger.pid)
    assert not store.pid_alive(stranger.pid, theirs - 1)
    assert store.is_process(stranger.pid, theirs)
    assert not store.is_process(stranger.pid, None)  # no recorded start: no proof
    for nonsense in (None, 0, -1, True, "12"):
        assert not store.pid_alive(nonsense) and store.process_start(nonsense) is None


def test_a_lock_whose_pid_was_reused_is_taken_over(tmp_path, stranger):
    lock = store.RunLock(tmp_path / "run")
    lock.path.mkdir()
    owner = {"pid": stranger.pid, "host": socket.gethostname()}
    store.write_json(lock.file, {**owner, "pid_start": store.process_start(stranger.pid)})
    assert not lock.acquire()  # the real owner is alive: wait for it
    store.write_json(lock.file, {**owner, "pid_start": _wrong_start(stranger.pid)})
    assert lock.acquire()  # same pid, other start: the owner died, its lock is stale
    assert store.read_json(lock.file)["pid"] == os.getpid()
    assert store.read_json(lock.file)["pid_start"] == store.process_start(os.getpid())
    lock.release()
    assert stranger.poll() is None


def test_an_older_lock_without_a_start_time_is_stale_once_its_pid_is_a_newer_process(
    tmp_path, stranger
):
    """Locks written before start times were kept hold a pid alone: a live process that
    started after the lock was written cannot be its owner."""
    lock = store.RunLock(tmp_path / "run")
    lock.path.mkdir()
    store.write_json(lock.file, {"pid": stranger.pid, "host": socket.gethostname()})
    born = store.process_started_at(stranger.pid)
    assert born is not None and abs(born - time.time()) < 120  # seconds since the epoch
    os.utime(lock.file, (born + 30, born + 30))  # written after the process started
    assert not lock.acquire()  # it may be the owner: wait for it
    os.utime(lock.file, (born - 30, born - 30))  # written before the process existed
    assert lock.acquire()  # so the pid was reused: the lock is stale
    assert store.read_json(lock.file)["pid"] == os.getpid()
    lock.release()
    assert stranger.poll() is None


def test_a_run_whose_job_pid_was_reused_is_interrupted(app_cache, stranger):
    run = digits_run(app_cache)
    status = store.read_json(run / "status.json")
    status.update(state="running", pid=stranger.pid, pid_start=_wrong_start(stranger.pid))
    status.pop("files", None)
    store.write_json(run / "status.json", status)
    assert "interrupted" in store.unfinished_reason(run)
    (info,) = [r for r in store.list_runs(app_cache) if r.path == run]
    assert info.state == "interrupted"


def test_a_job_whose_pid_was_reused_is_not_running_and_cancel_leaves_it_alone(cache_dir, stranger):
    job_id = fake_job(
        cache_dir,
        cache_dir / "run",
        "score",
        pid=stranger.pid,
        pid_start=_wrong_start(stranger.pid),
    )
    assert jobs.status(job_id, cache_dir).state != "running"
    assert jobs.running(cache_dir) == []
    assert not jobs.cancel(job_id, cache_dir)
    time.sleep(0.2)
    assert stranger.poll() is None  # never signalled
    # An old record without a start time is no proof either: never signalled.
    record = store.read_json(jobs.jobs_dir(cache_dir) / f"{job_id}.json")
    record.pop("pid_start")
    store.write_json(jobs.jobs_dir(cache_dir) / f"{job_id}.json", record)
    assert not jobs.cancel(job_id, cache_dir)
    time.sleep(0.2)
    assert stranger.poll() is None


def test_cancel_signals_a_job_proven_by_its_start_time(cache_dir, stranger):
    """The positive control: with the right start time the same record is the job."""
    start = store.process_start(stranger.pid)
    job_id = fake_job(cache_dir, cache_dir / "run", "score", pid=stranger.pid, pid_start=start)
    assert jobs.status(job_id, cache_dir).state == "running"
    assert jobs.cancel(job_id, cache_dir)
    assert stranger.wait(timeout=10) == -signal.SIGTERM


def test_the_cli_records_its_start_time_in_the_job_file(cache_dir, tmp_path):
    job_file = tmp_path / "job.json"
    # A map of no run: refused, but the pid was recorded first (the app polls and cancels it).
    assert main(["map", "--run", str(tmp_path / "none"), "--job-file", str(job_file)]) == 2
    record = store.read_json(job_file)
    assert record["pid"] == os.getpid()
    assert record["pid_start"] == store.process_start(os.getpid())


# -- issue 23: checks before a job, the stage a job is in, a time left only once steady -------


def test_check_score_refuses_bad_input_from_headers_before_any_job(cache_dir, tmp_path):
    texts = tmp_path / "texts.csv"
    texts.write_text("text,label\n" + "".join(f"word {i},{i % 2}\n" for i in range(20)))
    bad = [
        (_missing(tmp_path, "nope.csv"), "does not exist"),
        (dataclasses.replace(TINY, data=DataConfig(source=str(texts), label_col="y")), "'y'"),
        (
            dataclasses.replace(TINY, data=DataConfig(source=str(texts), test=str(tmp_path))),
            "holds no images",  # a folder as --test: the image folder's own refusal
        ),
        (dataclasses.replace(TINY, train=TrainConfig(runs=0)), "--runs"),
    ]
    for config, said in bad:
        t0 = time.perf_counter()
        with pytest.raises(InputError, match=said):
            jobs.check_score(config)
        assert time.perf_counter() - t0 < 1.0
    good = dataclasses.replace(TINY, data=DataConfig(source=str(texts), label_col="label"))
    assert jobs.check_score(good) is good
    assert not jobs.jobs_dir(cache_dir).exists()  # checking starts nothing


def test_a_job_says_its_own_stage_until_its_run_writes_one(cache_dir):
    alive = {"pid": os.getpid(), "pid_start": store.process_start(os.getpid())}
    job_id = fake_job(cache_dir, cache_dir / "run", "score", stage="reading data", **alive)
    st = jobs.status(job_id, cache_dir)
    assert st.message == "reading data" and st.seconds_left is None
    store.write_status(cache_dir / "run", "running", progress=0.5, message="run 1/2")
    assert jobs.status(job_id, cache_dir).message == "run 1/2"
    store.write_status(cache_dir / "run", "running", progress=0.6, message="x", seconds_left=9.5)
    st = jobs.status(job_id, cache_dir)
    assert st.seconds_left == 9.5 and st.updated is not None


def test_steady_time_left_waits_for_estimates_that_agree():
    steady = jobs.steady_time_left
    # Polled every second for 8 s, each estimate predicting the end at t = 100.
    agreeing = [(float(t), 0.1 + 0.01 * t, 100.0) for t in range(8)]
    assert steady(agreeing, now=7.0) == pytest.approx(93.0)
    # The same readings watched for less than STEADY_SPAN_S: not yet.
    assert steady(agreeing[4:], now=7.0) is None
    # The end predicted at 60, then 100, then 140 s: the estimate is still moving.
    drifting = [(float(t), 0.1 + 0.01 * t, 60.0 + 20 * max(t - 5, 0)) for t in range(8)]
    assert steady(drifting, now=7.0) is None
    # Small wobble (within 20% of the time left) is steady.
    wobble = [(float(t), 0.2, 100.0 + (3 if t % 2 else -3)) for t in range(8)]
    assert steady(wobble, now=7.0) is not None
    # No estimate in the window, too little done, or the predicted end already past: None.
    assert steady([(float(t), 0.3, None) for t in range(8)], now=7.0) is None
    assert steady([(float(t), 0.01, 100.0) for t in range(8)], now=7.0) is None
    assert steady([(float(t), 0.5, 5.0) for t in range(8)], now=7.0) is None
    assert steady([], now=7.0) is None


def test_a_job_reports_loading_libraries_and_reading_data_before_embedding(
    cache_dir, tmp_path, monkeypatch
):
    """What the app's job panel shows, in order, for a text probe: the stage that runs."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from scoring.cli import score as score_cli
    from scoring.training.embed import resolve_model_path

    encoder = tmp_path / "tiny-encoder"  # a random 2-layer BERT: embeds in milliseconds
    tok = AutoTokenizer.from_pretrained(resolve_model_path(None))
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(encoder)
    tok.save_pretrained(encoder)
    texts = tmp_path / "texts.csv"
    rows = "".join(f"a {'good' if i % 2 else 'bad'} film {i},{i % 2}\n" for i in range(40))
    texts.write_text("text,label\n" + rows)
    job_id = fake_job(cache_dir, cache_dir / "none", "score")
    job_file = jobs.jobs_dir(cache_dir) / f"{job_id}.json"
    store.write_json(job_file, {"id": job_id, "kind": "score"})  # as `jobs.start_score` does
    shown: list[str] = []

    def seen() -> None:
        message = jobs.status(job_id, cache_dir).message
        if not shown or shown[-1] != message:
            shown.append(message)

    def spy(real):
        def call(*args, **kwargs):
            real(*args, **kwargs)
            seen()

        return call

    monkeypatch.setattr(jobs, "report", spy(jobs.report))
    monkeypatch.setattr(store, "write_status", spy(store.write_status))
    monkeypatch.setattr(score_cli, "cancel_on_signals", lambda: None)  # pytest keeps its own
    flags = ["--dataset", str(texts), "--recipe", "probe", "--model", str(encoder)]
    flags += ["--max-length", "32", "--preset", "tiny", "--scores", "el2n", "--quiet"]
    flags += ["--cache-dir", str(cache_dir), "--job-file", str(job_file)]
    assert main(["score", *flags]) == 0
    stages = [m for m in shown if m in ("loading libraries", "reading data")]
    assert stages == ["loading libraries", "reading data"], shown
    embedding = [i for i, m in enumerate(shown) if m.startswith("embedding text")]
    assert embedding and shown.index("reading data") < embedding[0], shown
    assert shown[embedding[0]] == "embedding text: loading the model"
    assert shown[embedding[-1]] == "embedding text: 40/40 sentences", shown
    assert shown[-1] == "done"
