"""A small real cache for page tests: tiny digits and text runs scored once per session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scoring.config import DataConfig, NoiseConfig, ScoreConfig, TrainConfig
from scoring.pipeline import score

PAGES = Path(__file__).resolve().parents[2] / "app_pages"


def _digits_config() -> ScoreConfig:
    return ScoreConfig(
        data=DataConfig(source="digits", limit=500),
        train=TrainConfig(runs=2, epochs=6),
        noise=NoiseConfig(fraction=0.1, seed=1),
        cv_folds=2,
    )


@pytest.fixture(scope="session")
def built_cache(tmp_path_factory) -> Path:
    """A cache holding one finished digits run (with injected noise) and one text run."""
    root = tmp_path_factory.mktemp("app_cache")
    score(_digits_config(), root, show_progress=False)
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
    """A private copy of the built cache (pages may write decisions), as WINNOW_CACHE_DIR."""
    copy = tmp_path / "cache"
    shutil.copytree(built_cache, copy)
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(copy))
    return copy


def digits_run(cache: Path) -> Path:
    from scoring import cache as store

    (run,) = [r.path for r in store.list_runs(cache) if "digits" in r.dataset]
    return run


def text_run(cache: Path) -> Path:
    from scoring import cache as store

    (run,) = [r.path for r in store.list_runs(cache) if "digits" not in r.dataset]
    return run
