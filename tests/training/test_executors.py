"""Executors: the Ray path gives the same cache as the local one, and bad options are refused.

The Ray tests start a real local Ray (bound to 127.0.0.1) through the CLI, as a user would,
and compare every recorded array, snapshot file and score with a local run of the same
config (same seeds, CPU: bit-identical).
"""

from __future__ import annotations

import filecmp
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.errors import InputError
from scoring.training.executors import LocalExecutor, make
from tests.conftest import run_cli

TIMING = {"train_seconds", "grad_seconds"}  # wall-clock seconds: the only fields that differ


def test_bad_executor_options_are_refused() -> None:
    with pytest.raises(InputError, match="--executor must be one of local, ray"):
        make("dask")
    with pytest.raises(InputError, match="--ray-address only applies with --executor ray"):
        make("local", address="10.0.0.1:6379")
    assert isinstance(make("local"), LocalExecutor)


def test_missing_ray_gets_an_install_hint(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(InputError, match="pip install -r requirements-ray.txt"):
        make("ray")


def test_unreachable_cluster_fails_fast_with_a_message() -> None:
    pytest.importorskip("ray")
    import socket
    import time

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(InputError, match="cannot reach a Ray cluster"):
        make("ray", address=f"127.0.0.1:{port}")
    assert time.monotonic() - t0 < 10
    with pytest.raises(InputError, match="--ray-address must look like host:6379"):
        make("ray", address="head-node")


def test_cli_reports_a_bad_executor(cache_dir) -> None:
    out = run_cli("score", "--dataset", "digits", "--executor", "spark", cache=cache_dir)
    assert out.returncode == 2 and "--executor must be one of" in out.stderr


def _run_folder(out) -> Path:
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_ray_runs_and_trials_match_local_ones(tmp_path) -> None:
    pytest.importorskip("ray")
    args = ("--dataset", "digits", "--preset", "tiny", "--limit", "300", "--quiet")
    args += ("--scores", "el2n,forgetting,grand,tracin,cl_issue", "--seed", "7")
    local = _run_folder(run_cli("score", *args, cache=tmp_path / "local"))
    ray = _run_folder(run_cli("score", *args, "--executor", "ray", cache=tmp_path / "ray"))
    assert local.name == ray.name  # the executor is not part of the run's key
    for r in (0, 1):
        a = store.load_arrays(local / "runs" / f"run_{r:03d}.npz")
        b = store.load_arrays(ray / "runs" / f"run_{r:03d}.npz")
        assert set(a) == set(b)
        for key in set(a) - TIMING:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert filecmp.cmp(
            local / "runs" / f"run_{r:03d}.safetensors",
            ray / "runs" / f"run_{r:03d}.safetensors",
            shallow=False,
        )
    pd.testing.assert_frame_equal(store.read_scores(local), store.read_scores(ray))
    assert store.read_status(ray)["state"] == "done"

    sweep = ("--score", "el2n", "--rule", "hardest", "--fractions", "0.5", "--seeds", "2")
    sweep += ("--quiet",)
    a = pd.read_parquet(
        _run_folder(run_cli("sweep", "--run", str(local), *sweep, cache=tmp_path / "local"))
    )
    b = pd.read_parquet(
        _run_folder(
            run_cli("sweep", "--run", str(ray), *sweep, "--executor", "ray", cache=tmp_path / "ray")
        )
    )
    assert len(a) == len(b) == 4  # 2 seeds x (rule + random)
    columns = [c for c in a.columns if c != "train_seconds"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    summary = json.loads((ray / "summary.json").read_text())
    assert (
        summary["test_accuracy"]
        == json.loads((local / "summary.json").read_text())["test_accuracy"]
    )


class _Sink:
    def __init__(self) -> None:
        self.done, self.messages = 0.0, []

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount

    def stage(self, message: str) -> None:
        self.messages.append(message)


def _work(item: int, report) -> int:
    report.stage(f"item {item}")
    report.advance(0.25)
    report.advance(0.75)
    return item * item


@pytest.mark.slow
def test_ray_tasks_report_progress_and_results_to_the_caller() -> None:
    ray = pytest.importorskip("ray")
    from scoring.training.executors import RayExecutor

    # This module is not on the workers' path: ship `_work` by value, as a user's script is.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    executor, sink, results = RayExecutor(), _Sink(), {}
    try:
        executor.map(_work, [1, 2, 3], sink, lambda i, r: results.__setitem__(i, r))
        assert executor.started
        nodes = ray.nodes()
        assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]  # localhost only
    finally:
        executor.close()
    assert results == {0: 1, 1: 4, 2: 9}
    assert sink.done == pytest.approx(3.0)  # every task's reports reached the caller
    assert sink.messages and all(m.startswith("item ") for m in sink.messages)


def test_score_with_a_spreading_executor_sends_the_knn_blocks_to_it(tmp_path) -> None:
    """`score --executor ray` hands the neighbour searches' query blocks to the executor
    (here one that runs them in this process under Ray's name), with the local scores."""
    from scoring.config import DataConfig, ScoreConfig, TrainConfig
    from scoring.scores.knn import _Block
    from scoring.training.pipeline import score

    class Spreading(LocalExecutor):
        name = "ray"

        def __init__(self) -> None:
            self.units: list[str] = []

        def map(self, fn, items, progress, on_result) -> None:
            self.units += [type(fn).__name__] * len(items)
            super().map(fn, items, progress, on_result)

    config = ScoreConfig(
        data=DataConfig(source="digits", limit=200),
        train=TrainConfig(recipe="mlp", runs=2, epochs=2),
        scores=("el2n", "near_dup", "outlier", "leakage"),
    )
    spreading = Spreading()
    spread = score(config, tmp_path / "spread", show_progress=False, executor=spreading)
    local = score(config, tmp_path / "local", show_progress=False)
    assert spreading.units.count(_Block.__name__) >= 3  # near_dup, outlier, leakage searches
    pd.testing.assert_frame_equal(store.read_scores(spread), store.read_scores(local))
