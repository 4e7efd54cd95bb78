"""Who is computing a folder and how far it got: `status.json`, process identity, the lock.

`status.json` says `done` only after everything else is written (with the manifest of what
was: `scoring.store.integrity`). A pid is always recorded with its process's start time, so a
pid the system has since given to another process is told apart from the job; the run lock
(`RunLock`) uses the same test to take over a dead job's claim, which is how a crashed run
resumes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.store.atomic import read_json, write_json
from scoring.store.paths import LOCK_NAME, STATUS_NAME

STATES = ("running", "done", "failed", "cancelled")


def write_status(
    path: Path, state: str, *, progress: float = 0.0, message: str = "", **extra: Any
) -> None:
    """Write `status.json` in run folder `path` (state, progress in [0, 1], message, pid)."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    status = {
        "state": state,
        "progress": round(float(progress), 4),
        "message": message,
        "pid": os.getpid(),
        "pid_start": process_start(os.getpid()),  # with the pid: this process, not a reuse
        "host": socket.gethostname(),
        "updated": time.time(),
        **extra,
    }
    write_json(Path(path) / STATUS_NAME, status)


def read_status(path: Path) -> dict[str, Any] | None:
    """The folder's status, or None when it has none yet or it cannot be read.

    Lenient on purpose: job panels and sweeps only ask "is it done?", and a damaged status
    file means no. `RunDir.read_status` raises `DamagedRun` instead, and `RunDir.check`
    says why.
    """
    try:
        status = read_json(Path(path) / STATUS_NAME)
    except (OSError, ValueError):  # missing, unreadable, not JSON (UnicodeDecodeError too)
        return None
    return status if isinstance(status, dict) and isinstance(status.get("state"), str) else None


def process_start(pid: int) -> int | float | None:
    """When process `pid` started, as this machine counts it; None if unknown or gone.

    Recorded beside every pid a job writes (status.json, the run lock, the job record), so a
    pid the system has since given to another process is told apart from the job: same pid,
    other start. Linux: field 22 of /proc/<pid>/stat (clock ticks since boot); elsewhere
    psutil's create_time when psutil is installed.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # Linux, and the process is gone
    except OSError:
        return None
    else:
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        try:
            return int(fields[19])  # field 22 of the whole line
        except (IndexError, ValueError):
            return None
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def process_started_at(pid: Any) -> float | None:
    """When process `pid` started, in seconds since the epoch (comparable with file times);
    None if unknown or gone. Linux: boot time (/proc/stat btime) plus the start's clock ticks;
    elsewhere psutil's create_time when psutil is installed."""
    ticks = process_start(pid)
    if ticks is None:
        return None
    if not Path("/proc/stat").exists():
        return float(ticks)  # psutil's create_time is already seconds since the epoch
    try:
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    return boot + float(ticks) / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int, started: int | float | None = None) -> bool:
    """Whether process `pid` exists and, when `started` is given, is the one that started then.

    `started` is what `process_start` recorded with the pid; a process whose start differs
    took over a dead job's pid and counts as dead. Without a recorded start (records from
    before it was kept) only the pid is checked.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False  # os.kill(0 or -1, ...) would address whole process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started is None:
        return True
    now = process_start(pid)
    if now is None:  # on Linux it just exited; elsewhere the start is unknowable: trust the pid
        return not Path("/proc/self/stat").exists()
    return now == started


def is_process(pid: int, started: int | float | None) -> bool:
    """Whether `pid` is provably the process that started at `started` (safe to signal).

    Stricter than `pid_alive`: an unknown start on either side is no proof, so a process
    that cannot be identified is never signalled.
    """
    if started is None or not pid_alive(pid):
        return False
    return process_start(pid) == started


def unfinished_reason(path: Path | str) -> str | None:
    """Why the run at `path` cannot be read yet, with what to do; None once it is done.

    One line for every consumer that needs a finished run (export, the map, the pages):
    running, interrupted (its job died: the status still says running, but the job's
    process is gone or its pid went to another), failed or cancelled, each with the
    progress and message it stopped with.
    """
    status = read_status(Path(path))
    if status is None:
        return "this run is not finished: it has no status yet (just starting); wait for it"
    state = status["state"]
    if state == "done":
        return None
    progress = status.get("progress")
    at = f" at {progress:.0%}" if isinstance(progress, int | float) and progress > 0 else ""
    message = str(status.get("message") or "").strip()
    said = f" ({message})" if message else ""
    rerun = "run the same score command again to resume it (finished runs are kept)"
    if state == "running":
        # Another host's job cannot be checked from here: it counts as running, as its lock.
        live = status.get("host") not in (None, socket.gethostname()) or pid_alive(
            status.get("pid"), status.get("pid_start")
        )
        if live:
            return f"this run is not finished: it is still running{at}{said}; wait for it"
        return f"this run is not finished: it was interrupted{at}{said}, its job stopped; {rerun}"
    if state == "failed":
        return f"this run is not finished: it failed{said}; fix that, then {rerun}"
    return f"this run is not finished: it was {state}{at}; {rerun}"


# -- one job per key -------------------------------------------------------------------


@dataclass
class RunLock:
    """An exclusive claim on a run folder, so the same key is never computed twice at once.

    The lock file holds the owner's pid, its start time and host; a lock whose owner on this
    host is dead (killed job), or whose pid now belongs to a process that started at another
    time, is stale and taken over, which is how a crashed run resumes.
    """

    path: Path
    held: bool = False

    @property
    def file(self) -> Path:
        return self.path / LOCK_NAME

    def owner(self) -> dict[str, Any] | None:
        """What the lock file says (pid, pid_start, host), or None when it cannot be read."""
        try:
            owner = read_json(self.file)
        except (OSError, ValueError):  # gone, or being written (or garbage: taken over)
            return None
        return owner if isinstance(owner, dict) else None

    def acquire(self) -> bool:
        """Take the lock; False when a live process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        me = json.dumps(
            {
                "pid": os.getpid(),
                "pid_start": process_start(os.getpid()),
                "host": socket.gethostname(),
            }
        ).encode()
        for _ in range(3):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except OSError as err:
                if err.errno != errno.EEXIST:
                    raise
                owner = self.owner()
                if owner is None:
                    time.sleep(0.05)  # being written right now
                    owner = self.owner()
                if owner and (
                    owner.get("host") != socket.gethostname()
                    or (
                        pid_alive(owner.get("pid"), owner.get("pid_start"))
                        and not self._older_lock_reused(owner)
                    )
                ):
                    return False
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.file)  # stale: its owner died (or its pid went to another)
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(me)
            self.held = True
            return True
        return False

    def _older_lock_reused(self, owner: dict[str, Any]) -> bool:
        """A lock in the older format (a pid, no start time) whose pid now belongs to a process
        that started after the lock was written: not its owner, so the lock is stale."""
        if owner.get("pid_start") is not None:
            return False
        started = process_started_at(owner.get("pid"))
        try:
            written = self.file.stat().st_mtime
        except OSError:
            return False
        return started is not None and started > written + 1.0  # 1 s: the clocks' grain

    def release(self) -> None:
        """Remove the lock file, when this object took it."""
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file)
            self.held = False
