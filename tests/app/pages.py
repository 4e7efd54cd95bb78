"""Helpers every page test shares: open a page on a run, read its figures and texts, fake a job."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from app_pages._shared import UIState
from scoring import jobs, store
from tests.conftest import PAGES


def open_page(page: str, run: Path | None = None, **choices) -> AppTest:
    """Run `app_pages/<page>` with `run` as the current run and remembered widget `choices`."""
    at = AppTest.from_file(str(PAGES / page), default_timeout=60)
    at.session_state["ui"] = UIState(run=None if run is None else str(run), choices=dict(choices))
    return at.run()


def figures(at: AppTest) -> list[dict]:
    """Every plotly figure on the page, as its JSON spec."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def plotly_array(value: list | dict) -> np.ndarray:
    """A plotly JSON array: a plain (nested) list, or {"dtype", "bdata", "shape"} (plotly >= 6)."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(d) for d in str(shape).split(",")]) if shape else flat
    return np.array(value)  # object dtype where the list holds nulls


def page_text(at: AppTest) -> str:
    """Everything the page says in messages, captions and markdown, one element a line."""
    parts = [*at.info, *at.warning, *at.error, *at.success, *at.caption, *at.markdown]
    return "\n".join(str(p.value) for p in parts)


def shown(markdown: str) -> str:
    """What a reader sees of markdown that escapes user text: backslash escapes removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", str(markdown))


def fake_job(cache_dir: Path, run: Path, kind: str, **record) -> str:
    """A job record as `scoring.jobs` and the CLI would leave it; returns its id."""
    job_id = "20250101-000000-abcdef"
    folder = jobs.jobs_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    store.write_json(
        folder / f"{job_id}.json",
        {"id": job_id, "kind": kind, "run": str(run), "started": time.time(), **record},
    )
    return job_id


def runs_table(at: AppTest):
    """Home's "Runs in the cache" table (a DataFrame): the one with a `state` column (the
    current run's Health table comes before it)."""
    return next(d.value for d in at.dataframe if "state" in d.value.columns)
