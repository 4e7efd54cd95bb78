"""Background jobs as the app drives them: start, poll, cancel, failure messages."""

import time
from pathlib import Path

from scoring import jobs, store


def _wait(job_id, cache_dir, until=("done", "failed", "cancelled"), timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = jobs.status(job_id, cache_dir)
        if st.state in until:
            return st
        time.sleep(0.2)
    raise AssertionError(f"job still {st.state}: {st.message}")


def test_a_score_job_runs_in_the_background_and_reports_its_run(cache_dir):
    job_id = jobs.start(
        "score", ["--dataset", "digits", "--preset", "tiny", "--limit", "300"], cache_dir
    )
    first = jobs.status(job_id, cache_dir)
    assert first.state == "running" and first.kind == "score"
    assert [j.job_id for j in jobs.running(cache_dir)] == [job_id]
    done = _wait(job_id, cache_dir)
    assert done.state == "done" and done.progress == 1.0
    assert store.read_status(Path(done.run))["state"] == "done"
    assert jobs.running(cache_dir) == []
    assert "Traceback" not in jobs.log_tail(job_id, cache_dir)


def test_bad_input_job_fails_with_the_cli_message(cache_dir, tmp_path):
    job_id = jobs.start("score", ["--dataset", str(tmp_path / "nope.csv")], cache_dir)
    st = _wait(job_id, cache_dir)
    assert st.state == "failed" and "does not exist" in st.message


def test_cancel_stops_the_job_and_marks_the_run(cache_dir):
    args = "--dataset digits --runs 6 --epochs 60 --scores loss".split()
    job_id = jobs.start("score", args, cache_dir)
    deadline = time.monotonic() + 120
    while jobs.status(job_id, cache_dir).run is None:  # wait until it knows its run
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert jobs.cancel(job_id, cache_dir)
    st = _wait(job_id, cache_dir)
    assert st.state == "cancelled"
    assert store.read_status(Path(st.run))["state"] == "cancelled"
    assert not jobs.cancel(job_id, cache_dir)  # nothing left to cancel


def test_jobs_are_listed_newest_first_and_unknown_ids_are_none(cache_dir, tmp_path):
    a = jobs.start("score", ["--dataset", str(tmp_path / "a.csv")], cache_dir)
    time.sleep(1.1)  # job ids and start times have one-second resolution in the name
    b = jobs.start("score", ["--dataset", str(tmp_path / "b.csv")], cache_dir)
    _wait(a, cache_dir)
    _wait(b, cache_dir)
    assert [j.job_id for j in jobs.list_jobs(cache_dir)] == [b, a]
    assert jobs.status("no-such-job", cache_dir) is None
