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
