"""Shared fixtures: every test gets its own cache folder; nothing touches ./cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp cache root, also exported as WINNOW_CACHE_DIR for code that reads the default."""
    path = tmp_path / "cache"
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(path))
    return path


def run_cli(*args: str, cache: Path, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """`python -m scoring ARGS` in a subprocess against `cache`, as a user would run it."""
    env = {**os.environ, "WINNOW_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "scoring", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )
