"""Background jobs: start, poll and cancel `python -m scoring ...` processes.

The app never trains in its own process: a job is the CLI started in its own process session,
with its output in a log. Each job has a small JSON file under `<cache>/_jobs/` that the CLI
keeps current (`--job-file`): the run folder once known, then the exit code and the final
message. Progress comes from the run's own `status.json`. Everything a page needs survives
an app restart, because it lives in files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring import store

ROOT = Path(__file__).resolve().parents[1]
# Children started by this process, by job id: polled so finished ones are reaped (no zombies
# that would look alive to os.kill(pid, 0)). Only the job itself writes its job file once it
# runs (it records its own pid first), so no two processes ever update the file at once.
_CHILDREN: dict[str, subprocess.Popen] = {}
STARTUP_GRACE_S = 60.0  # a job that has not recorded its pid yet is still starting


@dataclass
class JobStatus:
    """What a page shows about a job."""

    job_id: str
    kind: str  # "score" | "map" | "sweep"
    state: str  # running | done | failed | cancelled
    progress: float  # in [0, 1]
    message: str
    run: str | None  # the run folder, once the job knows it
    started: float


def jobs_dir(cache_dir: Path | str) -> Path:
    return Path(cache_dir) / "_jobs"


def start(kind: str, args: list[str], cache_dir: Path | str) -> str:
    """Start `python -m scoring KIND ARGS` in the background; returns the job id.

    `--cache-dir` and `--job-file` are added here, so a job always writes where the app reads.
    """
    if kind not in ("score", "map", "sweep"):
        raise ValueError(f"unknown job kind {kind!r}")
    folder = jobs_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    job_file, log = folder / f"{job_id}.json", folder / f"{job_id}.log"
    argv = [
        sys.executable,
        "-m",
        "scoring",
        kind,
        *args,
        "--quiet",
        "--cache-dir",
        str(cache_dir),
        "--job-file",
        str(job_file),
    ]
    store.write_json(job_file, {"id": job_id, "kind": kind, "argv": argv, "started": time.time()})
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": _pythonpath()}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _CHILDREN[job_id] = proc
    return job_id


def _pythonpath() -> str:
    extra = os.environ.get("PYTHONPATH")
    return f"{ROOT}{os.pathsep}{extra}" if extra else str(ROOT)


def _update(job_file: Path, **fields: Any) -> None:
    try:
        record = store.read_json(job_file)
    except FileNotFoundError:
        record = {}
    record.update(fields)
    store.write_json(job_file, record)


def report(job_file: str | os.PathLike | None, **fields: Any) -> None:
    """Called by the CLI to keep its job file current (a no-op without --job-file)."""
    if job_file:
        _update(Path(job_file), **fields)


def _alive(job_id: str, record: dict[str, Any]) -> bool:
    child = _CHILDREN.get(job_id)
    if child is not None:
        return child.poll() is None
    pid = record.get("pid")
    if pid is None:  # not started by this process and has not said its pid yet
        return time.time() - float(record.get("started", 0.0)) < STARTUP_GRACE_S
    return store.pid_alive(pid)


def _pid(job_id: str, record: dict[str, Any]) -> int | None:
    child = _CHILDREN.get(job_id)
    return child.pid if child is not None else record.get("pid")


def status(job_id: str, cache_dir: Path | str) -> JobStatus | None:
    """The job's state, progress and message; None for an unknown job id."""
    try:
        record = store.read_json(jobs_dir(cache_dir) / f"{job_id}.json")
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    run = record.get("run")
    run_status = store.read_status(Path(run)) if run else None
    progress = float((run_status or {}).get("progress", 0.0))
    message = (run_status or {}).get("message", "starting")
    if "exit_code" in record:
        code = record["exit_code"]
        state = "done" if code == 0 else "cancelled" if code == 130 else "failed"
        message = record.get("message") or message
        progress = 1.0 if state == "done" else progress
    elif _alive(job_id, record):
        state = "running"
    else:  # died without saying so (killed): trust the run's own status, else failed
        state = (run_status or {}).get("state", "failed")
        state = "failed" if state == "running" else state
        message = _last_error(jobs_dir(cache_dir) / f"{job_id}.log") or "the job stopped"
    return JobStatus(
        job_id,
        record.get("kind", "score"),
        state,
        progress,
        message,
        run,
        float(record.get("started", 0.0)),
    )


def _last_error(log: Path) -> str | None:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: ") :]
    return lines[-1][-300:] if lines else None


def list_jobs(cache_dir: Path | str) -> list[JobStatus]:
    """Every job, newest first."""
    folder = jobs_dir(cache_dir)
    if not folder.is_dir():
        return []
    found = (status(p.stem, cache_dir) for p in folder.glob("*.json"))
    return sorted((j for j in found if j is not None), key=lambda j: j.started, reverse=True)


def running(cache_dir: Path | str) -> list[JobStatus]:
    return [j for j in list_jobs(cache_dir) if j.state == "running"]


def cancel(job_id: str, cache_dir: Path | str) -> bool:
    """Ask the job to stop (SIGTERM to its process group); it marks its run `cancelled`."""
    try:
        record = store.read_json(jobs_dir(cache_dir) / f"{job_id}.json")
    except FileNotFoundError:
        return False
    pid = _pid(job_id, record)
    if pid is None or "exit_code" in record or not _alive(job_id, record):  # finished/finishing
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def log_tail(job_id: str, cache_dir: Path | str, n_chars: int = 4000) -> str:
    try:
        return (jobs_dir(cache_dir) / f"{job_id}.log").read_text(errors="replace")[-n_chars:]
    except FileNotFoundError:
        return ""
