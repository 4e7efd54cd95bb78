"""Shared fixtures: every test gets its own cache folder; nothing touches ./cache.

One small real cache (a noisy tiny digits run and a text-pair run) is scored once per test
session for the tests that read finished runs: pages, the layering wall.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scoring.config import DataConfig, NoiseConfig, ScoreConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PAGES = ROOT / "app_pages"


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


def digits_config(
    limit: int = 300,
    *,
    runs: int = 2,
    epochs: int = 3,
    noise_fraction: float = 0.0,
    noise_seed: int = 0,
    **overrides,
) -> ScoreConfig:
    """The small digits run tests score: `limit` examples, 2 runs x 3 epochs, 2 folds.

    `overrides` replace whole ScoreConfig fields (`scores=...`, `grads=...`, `train=...`).
    """
    base = dict(
        data=DataConfig(source="digits", limit=limit),
        train=TrainConfig(runs=runs, epochs=epochs),
        noise=NoiseConfig(fraction=noise_fraction, seed=noise_seed),
        cv_folds=2,
    )
    return ScoreConfig(**{**base, **overrides})


@pytest.fixture(scope="session")
def built_cache(tmp_path_factory) -> Path:
    """A cache holding one finished digits run (with injected noise) and one text run."""
    from scoring.training.pipeline import score

    root = tmp_path_factory.mktemp("app_cache")
    score(digits_config(500, epochs=6, noise_fraction=0.1, noise_seed=1), root, show_progress=False)
    texts = tmp_path_factory.mktemp("text_src") / "pairs.jsonl"
    rows = [
        json.dumps(
            {
                "premise": f"a man plays guitar {i}",
                "hypothesis": "someone makes music" if i % 2 else "nobody is there",
                "label": "yes" if i % 2 else "no",
            }
        )
        for i in range(40)
    ]
    texts.write_text("\n".join(rows) + "\n")
    score(
        ScoreConfig(
            data=DataConfig(source=str(texts)),
            train=TrainConfig(runs=2, epochs=3),
            cv_folds=2,
            scores=("el2n", "aum", "loss", "cl_quality"),
        ),
        root,
        show_progress=False,
    )
    return root


@pytest.fixture
def app_cache(built_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the built cache (pages may write decisions), as WINNOW_CACHE_DIR.

    Its runs' status lists no file manifest, as a run from before manifests were kept: tests
    edit files in place to stand in for other runs, which would otherwise read as damage
    (tests/test_damage.py covers the manifest).
    """
    from scoring import store

    copy = tmp_path / "cache"
    shutil.copytree(built_cache, copy)
    for run in store.iter_run_dirs(copy):
        status = store.read_status(run)
        if status is not None:
            status.pop("files", None)
            store.write_json(store.RunDir(run).status_file, status)
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(copy))
    return copy


@pytest.fixture(scope="session")
def neighbour_cache(tmp_path_factory) -> Path:
    """A cache holding one image run with duplicates and train/test leaks injected by hand
    (`tests/neighbour_run.py`); copy it (`neighbour_run.private_copy`) before writing to it."""
    from tests.neighbour_run import build

    root = tmp_path_factory.mktemp("neighbour_cache")
    build(root, tmp_path_factory.mktemp("neighbour_src"))
    return root


def digits_run(cache: Path) -> Path:
    from scoring import store

    (run,) = [r.path for r in store.list_runs(cache) if "digits" in r.dataset]
    return run


def text_run(cache: Path) -> Path:
    from scoring import store

    (run,) = [r.path for r in store.list_runs(cache) if "digits" not in r.dataset]
    return run
