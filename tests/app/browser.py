"""Browser-test plumbing: a live Streamlit server and Debian's chromium through Playwright.

The fixtures (`page`, `server`, `server_with_runs`) live in tests/app/conftest.py; the
helpers here are what the browser tests call.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# No background traffic: this machine's network is closed, and tests check that no request
# leaves 127.0.0.1.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log_path.read_text()[-3000:])
        time.sleep(0.3)


@contextlib.contextmanager
def serve(cache_dir: Path, log_dir: Path) -> Iterator[str]:
    """`streamlit run serve.py` on 127.0.0.1 over `cache_dir`; yields its URL, then stops it."""
    port = free_port()
    env = {**os.environ, "WINNOW_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port)]
    argv += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    log_path = log_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, log_path)
        yield url
    finally:  # the test owns the server: stop it (and its scoring jobs) whatever happened
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def no_error(pg) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0
    assert pg.locator('[data-testid="stAlertContentError"]').count() == 0


def goto(pg, url: str, title: str) -> None:
    pg.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    pg.wait_for_load_state("networkidle")
    pg.get_by_role("heading", name=title).first.wait_for()


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    """Poll `condition` (e.g. a file's state after a click) until true; fail naming `what`
    after `timeout` seconds. For state the page writes, not what it shows (Playwright's
    `expect` waits for that)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
