"""`bench/gpu.sh --smoke`: the GPU script's every step, end to end on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "cifar10").exists(), reason="needs ../shared/data")
def test_gpu_script_smoke_runs_every_step_on_the_cpu() -> None:
    out = ROOT / "bench" / "out" / "gpu-smoke"
    env = {**os.environ, "PYTHON": sys.executable, "WINNOW_DATA": str(DATA)}
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), "--smoke"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = (out / "gpu.md").read_text()
    for row in ("| cifar10-probe | 200 + 40 |", "| cifar10-resnet18 | 64 + 40 |"):
        assert row in report
    assert "| sst2-finetune | 64 + 40 |" in report
    assert "## Gradient scores, cnn32" in report and "## Gradient scores, resnet18" in report
    probe = json.loads((out / "cifar10-probe.json").read_text())
    # The stages account for the whole run; the floor was measured and compared.
    assert sum(probe["stages_s"].values()) == pytest.approx(probe["wall_s"], rel=1e-6)
    assert probe["floor_s"] > 0 and probe["ratio"] == pytest.approx(
        probe["wall_s"] / probe["floor_s"]
    )
    resnet = json.loads((out / "cifar10-resnet18.json").read_text())
    assert (resnet["recipe"], resnet["runs"], resnet["epochs"]) == ("resnet18", 1, 1)
    assert set(resnet["scores_s"]) == {"el2n", "grand"}
    bad = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--fast"], cwd=ROOT, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "usage" in bad.stderr
