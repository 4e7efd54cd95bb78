"""Pruning: a running sweep has a Cancel button that stops the job's process (jobs.cancel)."""

from __future__ import annotations

import signal
import subprocess

from scoring import store
from tests.app.pages import fake_job, open_page
from tests.conftest import digits_run


def test_cancel_stops_a_running_sweep(app_cache):
    run = digits_run(app_cache)
    # A stand-in for the job's process, in its own session as jobs start them.
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        job_id = fake_job(
            app_cache, run, "sweep", pid=proc.pid, pid_start=store.process_start(proc.pid)
        )
        at = open_page("pruning.py", run)
        assert not at.exception
        assert f"job `{job_id}`" in at.get("progress")[0].proto.text
        assert proc.poll() is None
        at.button(key=f"prune_cancel_{job_id}").click().run()
        assert not at.exception
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
