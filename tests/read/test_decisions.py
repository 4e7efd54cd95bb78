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


def test_bulk_action_lines_carry_its_id_and_single_decisions_none(run):
    decisions.append(run, 10, "keep")
    bulk = decisions.append_bulk(
        run, decisions.checked(run, [(11, "relabel", 2), (12, "drop", None)]), "csv"
    )
    lines = _lines(run)
    assert "bulk" not in lines[0] and "bulk_kind" not in lines[0]
    assert [(r["bulk"], r["bulk_kind"]) for r in lines[1:]] == [(bulk, "csv")] * 2
    assert decisions.append_bulk(run, [], "csv") is None  # nothing written, no id
    assert len(_lines(run)) == 3
    other = decisions.append_bulk(run, decisions.checked(run, [(13, "keep", None)]), "csv")
    assert other != bulk
    # The readers the rest of Winnow uses see the same columns as ever.
    assert list(decisions.latest(run).columns) == decisions.COLUMNS
    assert list(decisions.history(run).columns) == decisions.COLUMNS
    assert decisions.latest(run)["id"].tolist() == [10, 11, 12, 13]


def test_bulk_actions_lists_counts_and_what_is_still_in_force(run):
    first = decisions.append_bulk(
        run, decisions.checked(run, [(10, "relabel", 1), (11, "relabel", 2)]), "csv"
    )
    second = decisions.append_bulk(
        run,
        decisions.checked(run, [(12, "relabel", 0), (13, "drop", None)]),
        "mislabeled-accept",
        evaluation=True,
    )
    decisions.append(run, 11, "keep")  # decided again: no longer the first action's
    got = decisions.bulk_actions(run)
    assert got["bulk"].tolist() == [first, second]  # oldest first
    assert got["kind"].tolist() == ["csv", "mislabeled-accept"]
    assert got["actions"].tolist() == ["relabel 2", "relabel 1, drop 1"]
    assert got["decisions"].tolist() == [2, 2]
    assert got["in_force"].tolist() == [1, 2]
    assert got["undone"].tolist() == [False, False]
    assert all(t.endswith("+00:00") for t in got["time"])
    assert decisions.latest(run).set_index("id")["evaluation"].to_dict() == {
        10: False,
        12: True,
        13: True,
        11: False,
    }


def test_undo_bulk_withdraws_exactly_what_is_still_in_force(run):
    decisions.append(run, 13, "keep")  # before the action, untouched by it
    bulk = decisions.append_bulk(
        run,
        decisions.checked(run, [(10, "relabel", 1), (11, "relabel", 2), (12, "drop", None)]),
        "accept-suggestions",
    )
    decisions.append(run, 11, "relabel", new_label=0)  # the user changed their mind since
    assert decisions.undo_bulk(run, bulk) == 2
    undo = _lines(run)[-2:]
    assert [(r["id"], r["action"], r["undoes"]) for r in undo] == [
        (10, "clear", bulk),
        (12, "clear", bulk),
    ]
    assert all("bulk" not in r for r in undo)  # an undo is not itself an action to undo
    current = decisions.latest(run).set_index("id")
    assert sorted(current.index) == [11, 13]
    assert (current.loc[11, "action"], current.loc[11, "new_label"]) == ("relabel", 0)
    assert current.loc[13, "action"] == "keep"
    listed = decisions.bulk_actions(run).iloc[0]
    assert (listed["in_force"], listed["undone"]) == (0, True)
    # Twice: nothing left to undo, nothing written.
    size = decisions.path_of(run).stat().st_size
    assert decisions.undo_bulk(run, bulk) == 0
    assert decisions.path_of(run).stat().st_size == size


def test_undo_bulk_puts_back_the_decision_it_replaced(run):
    """A CSV may override earlier decisions: undo restores them rather than dropping them."""
    decisions.append(run, 10, "relabel", new_label=2)
    decisions.append(run, 11, "drop")
    bulk = decisions.append_bulk(
        run, decisions.checked(run, [(10, "keep", None), (11, "clear", None)]), "csv"
    )
    assert decisions.latest(run)["id"].tolist() == [10]
    assert decisions.undo_bulk(run, bulk) == 2
    current = decisions.latest(run).set_index("id")
    assert (current.loc[10, "action"], current.loc[10, "new_label"]) == ("relabel", 2)
    assert current.loc[11, "action"] == "drop"


def test_undo_bulk_unknown_id_names_the_known_ones(run):
    with pytest.raises(InputError, match="its bulk actions are: none"):
        decisions.undo_bulk(run, "nope")
    bulk = decisions.append_bulk(run, decisions.checked(run, [(10, "drop", None)]), "csv")
    with pytest.raises(InputError, match=f"no bulk action 'nope' .* are: {bulk}"):
        decisions.undo_bulk(run, "nope")
    assert len(_lines(run)) == 1


def test_log_without_bulk_fields_still_reads(run):
    """A file from before bulk ids: every reader works, no bulk action is listed."""
    old = [
        {"id": 10, "action": "relabel", "new_label": 1, "time": "2025-01-01T00:00:00+00:00"},
        {"id": 11, "action": "drop", "new_label": None, "time": "2025-01-01T00:00:01+00:00"},
        {"id": 12, "action": "keep", "new_label": None, "bulk": 7},  # foreign value: ignored
    ]
    decisions.path_of(run).write_text("".join(json.dumps(r) + "\n" for r in old))
    assert decisions.latest(run)["id"].tolist() == [10, 11, 12]
    full = decisions.history(run, with_bulk=True)
    assert full[decisions.BULK_COLUMNS].isna().all().all()
    got = decisions.bulk_actions(run)
    assert got.empty and list(got.columns) == [
        "bulk",
        "time",
        "kind",
        "actions",
        "decisions",
        "in_force",
        "undone",
        "annotators",
    ]
