"""Decisions: append-only JSONL that survives restarts, crashes and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.errors import InputError
from scoring.read import decisions


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A minimal run folder: config.json with three label names, scores.parquet with ids."""
    path = tmp_path / "run"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"dataset": {"label_names": ["a", "b", "c"]}}))
    pd.DataFrame({"id": [10, 11, 12, 13], "label": [0, 1, 2, 0]}).to_parquet(
        path / "scores.parquet"
    )
    return path


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in decisions.path_of(run).read_text().splitlines()]


def test_round_trip(run):
    decisions.append(run, 10, "drop")
    decisions.append(run, 11, "relabel", new_label=2)
    decisions.append(run, np.int64(12), "keep")
    lines = _lines(run)
    assert [(r["id"], r["action"], r["new_label"]) for r in lines] == [
        (10, "drop", None),
        (11, "relabel", 2),
        (12, "keep", None),
    ]
    assert all(r["time"].endswith("+00:00") for r in lines)
    got = decisions.latest(run)
    assert list(got.columns) == ["id", "action", "new_label", "time", "evaluation"]
    assert got["id"].tolist() == [10, 11, 12]
    assert got["action"].tolist() == ["drop", "relabel", "keep"]
    assert got["new_label"].tolist() == [pd.NA, 2, pd.NA]


def test_last_decision_wins_and_clear_removes(run):
    decisions.append(run, 10, "drop")
    decisions.append(run, 11, "keep")
    decisions.append(run, 10, "relabel", new_label=1)
    decisions.append(run, 11, "clear")
    got = decisions.latest(run)
    assert got["id"].tolist() == [10]
    assert (got["action"].iloc[0], got["new_label"].iloc[0]) == ("relabel", 1)
    assert len(decisions.history(run)) == 4  # append-only: nothing was rewritten


def test_no_file_is_empty(run):
    got = decisions.latest(run)
    assert got.empty and list(got.columns) == ["id", "action", "new_label", "time", "evaluation"]


def test_truncated_last_line_is_ignored_and_next_append_is_safe(run):
    decisions.append(run, 10, "drop")
    decisions.append(run, 11, "keep")
    file = decisions.path_of(run)
    # A crash mid-write: the last line is cut short with no newline.
    file.write_bytes(file.read_bytes() + b'{"id": 12, "act')
    assert decisions.latest(run)["id"].tolist() == [10, 11]
    # The next decision must not be glued to the half line.
    decisions.append(run, 13, "drop")
    assert decisions.latest(run)["id"].tolist() == [10, 11, 13]


@pytest.mark.parametrize(
    "args",
    [
        (10, "delete"),  # unknown action
        (10, "relabel"),  # relabel without a label
        (10, "relabel", 3),  # label out of range
        (10, "drop", 1),  # a label with a non-relabel action
        (99, "drop"),  # unknown id
        ("10", "drop"),  # id of the wrong type
        (10, "relabel", 1.0),  # label of the wrong type
    ],
)
def test_bad_decision_rejected(run, args):
    with pytest.raises(InputError):
        decisions.append(run, *args)
    assert not decisions.path_of(run).exists()  # nothing half-recorded


def test_not_a_run(tmp_path):
    with pytest.raises(InputError, match="not a finished Winnow run"):
        decisions.append(tmp_path, 1, "keep")
