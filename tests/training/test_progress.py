"""The epoch bar: no time left shown until it is known, never a negative one."""

from __future__ import annotations

import time

from scoring import store
from scoring.training.progress import Progress


def _line(progress: Progress) -> str:
    return str(progress.bar)


def test_time_left_appears_only_once_known_and_never_below_zero(tmp_path, capsys):
    progress = Progress(tmp_path, total=3.0, enabled=True, tty=True)
    progress.stage("run 1/1")
    assert _line(progress).endswith("[00:00]")  # no "<?" before any epoch is done
    for _ in range(30):  # fractional steps whose float sum overshoots 3.0
        time.sleep(0.002)
        progress.advance(0.1 + 1e-9)
    line = _line(progress)
    assert "<" in line and "-" not in line.split("[")[-1], line
    assert progress.bar.n == 3.0 and "3.0/3 epochs" in line
    assert store.read_status(tmp_path)["progress"] <= 0.999  # done is written by the pipeline
    progress.close()
    assert "TqdmWarning" not in capsys.readouterr().err


def test_a_resumed_run_starts_the_bar_at_its_work_read_back(tmp_path, capsys):
    progress = Progress(tmp_path, total=10.0, enabled=True, tty=True)
    progress.advance(4.0)  # runs read back from disk before any stage
    progress.stage("runs 3 of 3")
    assert progress.bar.n == 4.0 and progress.bar.initial == 4.0
    assert _line(progress).endswith("[00:00]")  # the read-back work says nothing of speed
    progress.close()
