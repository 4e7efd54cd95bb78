"""What this machine offers a job: its cores (no torch here, so scores may ask too)."""

from __future__ import annotations

import os


def cpu_threads() -> int:
    """Cores this process may use (respects CPU affinity, e.g. in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
