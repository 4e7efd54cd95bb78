"""Background jobs: start, poll and cancel `python -m scoring ...` processes.

The app never trains in its own process: a job is the CLI started in its own process session,
with its output in a log. Each job has a small JSON file under `<cache>/_jobs/` that the CLI
keeps current (`--job-file`): the run folder once known, then the exit code and the final
message. Progress comes from the run's own `status.json`; until the run has one, the job
file's `stage` says what the job is doing (loading libraries, reading data). Everything a page
needs survives an app restart, because it lives in files.

`check_score` answers bad input (a missing file, a wrong column name) from headers in well
under a second, so a form can refuse it before any job starts; `steady_time_left` turns
successive readings of a job into a time left that is shown only once it is stable.

A job gets its config, never hand-built flags: `start_score` and `start_sweep` write the
typed config as JSON (`<cache>/_jobs/<id>.config.json`, the `to_dict` form that `from_dict`
reads back) and start `python -m scoring KIND --config FILE`. How a job executes
(`--executor`, `--ray-address`) is no part of the run's key, so it travels as flags beside
the config file. The job's own record keeps the config too, for a page or a test to read.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring import store

if TYPE_CHECKING:  # the sweep module reads pandas; a score job should not need it here
    from scoring.config import ScoreConfig
    from scoring.prune.sweeps import SweepConfig

# The folder that holds the `scoring` package (the repo, or site-packages once installed): put
# on the job's PYTHONPATH so `python -m scoring` finds this very copy from any working folder.
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
    # The engine's own estimate of the time left (a smoothed rate, `training.progress`),
    # as of `updated` (when the run's status was written); None while it has none.
    seconds_left: float | None = None
    updated: float | None = None


def jobs_dir(cache_dir: Path | str) -> Path:
    return Path(cache_dir) / "_jobs"


def check_score(config: ScoreConfig) -> ScoreConfig:
    """What `winnow score` checks before any work, answered before a job starts.

    The config's own values (`ScoreConfig.validate`), then the source, the --test and
    --annotations files and the named columns from their headers (`data.sources.check_source`):
    the CLI calls the same two, so the app's form refuses what the job would refuse, in well
    under a second and before any torch loads. What needs the data itself (auto-detected
    columns, label values, the encoder's token limit) is still the job's to refuse.

    Returns
    -------
    ScoreConfig
        `config` itself.

    Raises
    ------
    InputError
        One line: what was expected and how to fix it.
    """
    from scoring.data.sources import check_source  # numpy and pyarrow only: no torch

    config.validate()
    check_source(config.data)
    return config


def start_score(
    config: ScoreConfig,
    cache_dir: Path | str,
    *,
    executor: str = "local",
    ray_address: str | None = None,
    name: str | None = None,
    preset: str | None = None,
) -> str:
    """Start a scoring run of `config` in the background; returns the job id.

    Parameters
    ----------
    config : ScoreConfig
        The whole run, presets already resolved (`scoring.config.apply_preset`).
    cache_dir : path
        The cache root the job writes to (and the app reads from).
    executor : str
        "local" or "ray"; with `ray_address`, how the runs execute, not what they compute.
    ray_address : str, optional
        A Ray cluster to join; None starts a local Ray when `executor` is "ray".
    name : str, optional
        The run's name (`--name`): a label in `meta.json`, not part of the run's key, so a
        second job for the same config renames the run.
    preset : str, optional
        The name of the preset `config` was resolved with (a key of `config.PRESETS`),
        recorded beside the run for its title; it changes nothing computed.
    """
    args = _executor_args(executor, ray_address)
    if name is not None and name.strip():
        args += ["--name", name.strip()]
    if preset is not None:
        args += ["--preset", preset]
    return _start("score", args, cache_dir, config.to_dict())


def start_sweep(
    run: Path | str,
    config: SweepConfig,
    cache_dir: Path | str,
    *,
    executor: str = "local",
    ray_address: str | None = None,
) -> str:
    """Start a pruning sweep of `config` on the run folder `run`; returns the job id."""
    args = ["--run", str(run), *_executor_args(executor, ray_address)]
    return _start("sweep", args, cache_dir, config.to_dict())


def start_map(run: Path | str, cache_dir: Path | str, *, seed: int = 0) -> str:
    """Start the 2-D map of a finished run's embeddings; returns the job id."""
    return _start("map", ["--run", str(run), "--seed", str(int(seed))], cache_dir)


def _executor_args(executor: str, ray_address: str | None) -> list[str]:
    args = ["--executor", executor]
    return [*args, "--ray-address", ray_address] if ray_address else args


def _start(
    kind: str, args: list[str], cache_dir: Path | str, config: dict[str, Any] | None = None
) -> str:
    """Start `python -m scoring KIND ARGS [--config FILE]` in the background; returns the job id.

    `--cache-dir` and `--job-file` are added here, so a job always writes where the app reads.
    """
    if kind not in ("score", "map", "sweep"):
        raise ValueError(f"unknown job kind {kind!r}")
    folder = jobs_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    job_file, log = folder / f"{job_id}.json", folder / f"{job_id}.log"
    if config is not None:
        config_file = folder / f"{job_id}.config.json"
        store.write_json(config_file, config)
        args = [*args, "--config", str(config_file)]
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
    record = {"id": job_id, "kind": kind, "argv": argv, "started": time.time()}
    if config is not None:
        record["config"] = config
    store.write_json(job_file, record)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": _pythonpath()}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=Path.cwd(),  # a relative data path means what it meant to the caller
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
    """Called by the CLI to keep its job file current (a no-op without --job-file).

    A `pid` is recorded with its process's start time (`pid_start`), so the app can tell the
    job from a later process that was given the same pid.
    """
    if job_file:
        if "pid" in fields and "pid_start" not in fields:
            fields["pid_start"] = store.process_start(fields["pid"])
        _update(Path(job_file), **fields)


def _alive(job_id: str, record: dict[str, Any]) -> bool:
    child = _CHILDREN.get(job_id)
    if child is not None:
        return child.poll() is None
    pid = record.get("pid")
    if pid is None:  # not started by this process and has not said its pid yet
        return time.time() - float(record.get("started", 0.0)) < STARTUP_GRACE_S
    # A pid alone is no proof: a dead job's pid may since belong to another process.
    return store.pid_alive(pid, record.get("pid_start"))


def _proven_pid(job_id: str, record: dict[str, Any]) -> int | None:
    """The job's pid if it is provably the job's process (safe to signal), else None.

    Our own child is proven by its unreaped `Popen` (its pid cannot be reused before we reap
    it); any other job by the start time it recorded beside its pid.
    """
    child = _CHILDREN.get(job_id)
    if child is not None:
        return child.pid if child.poll() is None else None
    pid = record.get("pid")
    return pid if store.is_process(pid, record.get("pid_start")) else None


def status(job_id: str, cache_dir: Path | str) -> JobStatus | None:
    """The job's state, progress and message; None for an unknown (or unreadable) job id."""
    try:
        record = store.read_json(jobs_dir(cache_dir) / f"{job_id}.json")
    except (OSError, ValueError):  # missing, or not JSON (UnicodeDecodeError included)
        return None
    if not isinstance(record, dict):
        return None
    run = record.get("run")
    run_status = store.read_status(Path(run)) if run else None
    progress = float((run_status or {}).get("progress", 0.0))
    # Before the run writes its status, the job's own stage (loading libraries, reading data).
    stage = record.get("stage") if isinstance(record.get("stage"), str) else "starting"
    message = (run_status or {}).get("message") or stage
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
    left, updated = (run_status or {}).get("seconds_left"), (run_status or {}).get("updated")
    return JobStatus(
        job_id,
        record.get("kind", "score"),
        state,
        progress,
        message,
        run,
        float(record.get("started", 0.0)),
        seconds_left=float(left) if _is_number(left) and state == "running" else None,
        updated=float(updated) if _is_number(updated) else None,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
    records = (p for p in folder.glob("*.json") if not p.name.endswith(".config.json"))
    found = (status(p.stem, cache_dir) for p in records)
    return sorted((j for j in found if j is not None), key=lambda j: j.started, reverse=True)


def running(cache_dir: Path | str) -> list[JobStatus]:
    return [j for j in list_jobs(cache_dir) if j.state == "running"]


def cancel(job_id: str, cache_dir: Path | str) -> bool:
    """Ask the job to stop (SIGTERM to its process group); it marks its run `cancelled`.

    Returns False, signalling nothing, unless the process is provably the job's: its pid
    and the start time it recorded both match (or it is this process's own running child).
    """
    try:
        record = store.read_json(jobs_dir(cache_dir) / f"{job_id}.json")
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    if "exit_code" in record:  # finished or finishing
        return False
    pid = _proven_pid(job_id, record)
    if pid is None:  # gone, not started yet, or a pid we cannot prove is still the job's
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # the job leads its own session: its group id is its pid
    except (ProcessLookupError, PermissionError):
        return False
    return True


def log_tail(job_id: str, cache_dir: Path | str, n_chars: int = 4000) -> str:
    try:
        return (jobs_dir(cache_dir) / f"{job_id}.log").read_text(errors="replace")[-n_chars:]
    except FileNotFoundError:
        return ""


def job_config(job_id: str, cache_dir: Path | str) -> dict[str, Any] | None:
    """The config a job was handed (its `to_dict` form), or None (a map job, an unknown id)."""
    try:
        record = store.read_json(jobs_dir(cache_dir) / f"{job_id}.json")
    except (OSError, ValueError):
        return None
    config = record.get("config") if isinstance(record, dict) else None
    return config if isinstance(config, dict) else None


# Below this much measured progress time the rate is noise (startup, data loading): no estimate.
MIN_RATE_WINDOW_S = 3.0


def time_left(
    first: tuple[float, float] | None, last: tuple[float, float], eta_s: float | None = None
) -> float | None:
    """Seconds left, from the measured rate of progress, or None while it is unknown.

    Parameters
    ----------
    first, last : (time in s, progress in [0, 1])
        The first reading seen with progress under way, and the latest one. The rate is
        taken between them, so startup time and work read back from disk (a resumed run)
        do not count as speed.
    eta_s : float, optional
        The engine's own estimate when its status file gives one; preferred.
    """
    if eta_s is not None and eta_s >= 0:
        return float(eta_s)
    if first is None:
        return None
    (t0, p0), (t1, p1) = first, last
    if t1 - t0 < MIN_RATE_WINDOW_S or p1 <= p0:
        return None
    return max(1.0 - p1, 0.0) * (t1 - t0) / (p1 - p0)


# A time left is shown only once it is stable: the job is at least STEADY_MIN_PROGRESS done,
# and over the last STEADY_SPAN_S seconds (at least STEADY_READINGS readings, all with an
# estimate) the finish times the estimates predict agree within STEADY_TOLERANCE of the time
# left, or STEADY_SLACK_S, whichever is larger. Comparing predicted finish times rather
# than times left keeps a steady estimate steady as the clock runs.
STEADY_MIN_PROGRESS = 0.05
STEADY_SPAN_S = 6.0
STEADY_READINGS = 3
STEADY_TOLERANCE = 0.2
STEADY_SLACK_S = 3.0


def steady_time_left(
    readings: Sequence[tuple[float, float, float | None]], now: float
) -> float | None:
    """Seconds left once successive estimates agree, else None (nothing shown).

    Parameters
    ----------
    readings : sequence of (time in s, progress in [0, 1], predicted finish time in s or None)
        One per poll of the job, oldest first; the predicted finish is when the estimate of
        that moment says the job ends (None while there is no estimate). Readings older
        than `now - STEADY_SPAN_S` count only as proof of having watched that long.
    now : float
        The current time, in the readings' clock.

    Returns
    -------
    float or None
        The latest estimate's seconds left from `now`; None while the job is under
        STEADY_MIN_PROGRESS done, has been watched less than STEADY_SPAN_S, or its recent
        estimates disagree (or are missing, or already overdue).
    """
    if not readings or readings[0][0] > now - STEADY_SPAN_S:
        return None
    recent = [r for r in readings if r[0] >= now - STEADY_SPAN_S]
    if len(recent) < STEADY_READINGS or recent[-1][1] < STEADY_MIN_PROGRESS:
        return None
    finishes = [finish for _, _, finish in recent]
    if any(f is None for f in finishes):
        return None
    left = finishes[-1] - now
    if left <= 0:  # overdue: the estimate was wrong, and the next one will say by how much
        return None
    if max(finishes) - min(finishes) > max(STEADY_TOLERANCE * left, STEADY_SLACK_S):
        return None
    return left
