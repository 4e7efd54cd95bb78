"""Dropping duplicates and leaks: the `dedup` rule alone, the `drop_duplicates` / `drop_leaks`
pre-steps before another rule (by hand on a small frame), and the export's `--drop-duplicates`
/ `--drop-leaks` on a run with copies and leaks injected by hand."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.cli.common import selection_from_args
from scoring.cli.main import build_parser, main
from scoring.errors import InputError
from scoring.prune.export import export_selection, manifest_path
from scoring.prune.plan import plan_selection
from scoring.prune.select import SelectionConfig, select_indices
from scoring.prune.sweeps import SweepConfig, cached_trials, matching_trials, trial_key
from scoring.read.views import RunView
from tests.conftest import text_run
from tests.neighbour_run import injected

# Ten examples. Groups: {11, 14, 17} and {12, 19}; rows 13 and 18 leak test rows 500, 501.
TABLE = pd.DataFrame(
    {
        "id": np.arange(10, 20),
        "label": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
        "s": [0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6, 0.0, 0.4],
        "dup_group": [-1, 0, 1, -1, 0, -1, -1, 0, -1, 1],
        "leak_of": [-1, -1, -1, 500, -1, -1, -1, -1, 501, -1],
    }
)


def _view(table: pd.DataFrame = TABLE) -> RunView:
    return RunView(Path("run"), {}, {"scores": {"s": {"higher_is_harder": True}}}, table)


def _ids(plan) -> list[int]:
    return TABLE["id"].to_numpy()[plan.positions].tolist()


def _decisions(*rows: tuple[int, str]) -> pd.DataFrame:
    ids, actions = zip(*rows, strict=True)
    return pd.DataFrame(
        {"id": ids, "action": actions, "new_label": pd.array([None] * len(ids), "Int64")}
    )


# --- the planner, by hand ---------------------------------------------------------------------


def test_dedup_alone_keeps_every_ungrouped_row_and_the_lowest_id_per_group():
    plan = plan_selection(_view(), SelectionConfig("dedup", 1.0))
    # Group {11, 14, 17} keeps 11, group {12, 19} keeps 12; 14, 17, 19 go.
    assert _ids(plan) == [10, 11, 12, 13, 15, 16, 18]
    assert plan.n_duplicates_dropped == 3 and plan.n_leaks_dropped == 0
    # The switch on rule `all` is the same selection.
    same = plan_selection(_view(), SelectionConfig("all", 1.0, drop_duplicates=True))
    assert _ids(same) == _ids(plan)
    with pytest.raises(InputError, match="fraction is 1"):
        plan_selection(_view(), SelectionConfig("dedup", 0.5))


def test_drop_duplicates_first_then_the_rule_on_what_is_left():
    config = SelectionConfig("hardest", 0.5, score="s", drop_duplicates=True)
    plan = plan_selection(_view(), config)
    left = [0, 1, 2, 3, 5, 6, 8]  # rows of ids 10, 11, 12, 13, 15, 16, 18
    assert plan.rows.tolist() == left
    # round(0.5 * 7) = 4 hardest of what is left: s = 0.9 (11), 0.8 (15), 0.7 (13), 0.5 (10)
    assert _ids(plan) == [10, 11, 13, 15]
    alone = select_indices(TABLE["s"].to_numpy()[left], TABLE["label"].to_numpy()[left], config)
    assert plan.positions.tolist() == np.asarray(left)[alone].tolist()
    # Without the switch the rule sees all ten rows (and keeps 14, a duplicate of 11).
    plain = plan_selection(_view(), dataclasses.replace(config, drop_duplicates=False))
    assert _ids(plain) == [10, 11, 13, 15, 17]  # s 0.5, 0.9, 0.7, 0.8, 0.6
    assert 14 not in _ids(plan)


def test_decisions_come_before_the_survivor_is_chosen():
    # Dropping id 11 by decision: its group's survivor becomes 14, not nobody.
    plan = plan_selection(_view(), SelectionConfig("dedup", 1.0), _decisions((11, "drop")))
    assert _ids(plan) == [10, 12, 13, 14, 15, 16, 18]
    assert plan.n_dropped == 1 and plan.n_duplicates_dropped == 2


def test_leaks_go_before_duplicates():
    table = TABLE.assign(leak_of=[-1, 500, -1, 501, -1, -1, -1, -1, -1, -1])  # 11 leaks
    config = SelectionConfig("all", 1.0, drop_duplicates=True, drop_leaks=True)
    plan = plan_selection(_view(table), config)
    # 11 and 13 leak and go first; group {11, 14, 17} then keeps 14.
    assert _ids(plan) == [10, 12, 14, 15, 16, 18]
    assert plan.n_leaks_dropped == 2 and plan.n_duplicates_dropped == 2
    only_leaks = plan_selection(_view(), SelectionConfig("all", 1.0, drop_leaks=True))
    assert _ids(only_leaks) == [10, 11, 12, 14, 15, 16, 17, 19]


def test_a_run_without_the_columns_is_refused_with_the_fix():
    bare = TABLE.drop(columns=["dup_group", "leak_of"])
    for config in (
        SelectionConfig("dedup", 1.0),
        SelectionConfig("random", 0.5, drop_duplicates=True),
        SelectionConfig("all", 1.0, drop_leaks=True),
    ):
        with pytest.raises(InputError, match="rescore with near_dup/leakage"):
            plan_selection(_view(bare), config)
    # Off, nothing needs them.
    assert plan_selection(_view(bare), SelectionConfig("all", 1.0)).n_kept == 10


# --- the switches as a selection: flags, keys, trials -----------------------------------------


def test_switches_round_trip_through_the_cli_and_leave_old_keys_alone():
    config = SelectionConfig("hardest", 0.3, score="s", drop_duplicates=True, drop_leaks=True)
    assert config.cli_args()[-2:] == ["--drop-duplicates", "--drop-leaks"]
    args = build_parser().parse_args(["sweep", *SweepConfig(config, (0.3,), 1).cli_args("r")])
    assert selection_from_args(args, fraction=0.3, seed=0) == config
    # Off, the dict (and so every trial and sweep key) is what it was before the switches.
    off = dataclasses.replace(config, drop_duplicates=False, drop_leaks=False)
    assert "drop_duplicates" not in off.to_dict() and "drop_leaks" not in off.to_dict()
    assert config.to_dict()["drop_duplicates"] is True
    assert SelectionConfig.from_dict(config.to_dict()) == config
    sweep = SweepConfig(off, (0.3,), 1)
    assert trial_key("k", config, sweep) != trial_key("k", off, sweep)
    with pytest.raises(InputError, match="true or false"):
        plan_selection(_view(), SelectionConfig("all", 1.0, drop_leaks="yes"))  # type: ignore[arg-type]


def test_trials_with_the_switch_are_told_apart(tmp_path):
    run = tmp_path / "run"
    on = SelectionConfig("random", 0.5, drop_duplicates=True)
    off = SelectionConfig("random", 0.5)
    folder = store.RunDir(run).trials_dir
    folder.mkdir(parents=True)
    from scoring.prune.sweeps import TRIAL_FORMAT

    for name, sel in (("a", on), ("b", off)):
        record = {
            "format": TRIAL_FORMAT,
            "selection": sel.to_dict(),
            "rule": sel.rule,
            "score": None,
            "fraction": 0.5,
            "seed": 0,
            "accuracy": 0.5,
            "val_accuracy": 0.5,
            "n_kept": 5 if sel.drop_duplicates else 7,
            "steps": 1,
            "schedule": "steps",
            "test_correct": "",
            "n_test": 0,
            "val_correct": "",
            "n_val": 0,
            "per_class_accuracy": [0.5],
        }
        (folder / f"{name}.json").write_text(json.dumps(record))
    trials = cached_trials(run, ["x"])
    assert len(trials) == 2
    for sel, n in ((on, 5), (off, 7)):
        matched = matching_trials(trials, sel, schedule="steps", apply_decisions=False)
        assert matched["n_kept"].tolist() == [n]


def test_sweeping_dedup_is_refused(capsys):
    assert main(["sweep", "--run", "r", "--rule", "dedup", "--fractions", "1"]) == 2
    assert "rule dedup keeps every row" in capsys.readouterr().err


# --- the export, on a run with copies and leaks injected by hand ------------------------------


@pytest.fixture(scope="module")
def run(neighbour_cache) -> Path:
    (path,) = list(store.iter_run_dirs(neighbour_cache))
    return path


def _export(run: Path, out: Path, *flags: str) -> dict:
    assert main(["export", "--run", str(run), "--rule", "all", *flags]
                + ["--format", "parquet", "--out", str(out)]) == 0  # fmt: skip
    return json.loads(manifest_path(out, "parquet").read_text())


def test_export_drop_duplicates_and_leaks_by_hand(run, tmp_path, capsys):
    frame = pd.read_parquet(run / "scores.parquet")
    groups, leak = frame["dup_group"].to_numpy(), frame["leak_of"].to_numpy()
    ids = frame["id"].to_numpy()
    # By hand: the lowest id of each group, every ungrouped row; then the leaked rows out.
    lowest = {g: ids[groups == g].min() for g in set(groups[groups >= 0])}
    dedup = {int(i) for i, g in zip(ids, groups, strict=True) if g < 0 or lowest[g] == i}
    leaked = {int(i) for i in ids[leak >= 0]}
    assert {c for _, c in injected()["copies"]} <= set(ids) - dedup  # every injected copy goes
    assert {t for t, _ in injected()["leaks"]} <= leaked

    plain = _export(run, tmp_path / "all.parquet")
    assert plain["rows"] == len(ids) and plain["pre_steps"]["duplicates_dropped"] == 0

    manifest = _export(run, tmp_path / "dedup.parquet", "--drop-duplicates")
    written = set(pd.read_parquet(tmp_path / "dedup.parquet")["id"])
    assert written == dedup and manifest["rows"] == len(dedup)
    assert manifest["pre_steps"]["duplicates_dropped"] == len(ids) - len(dedup)
    assert manifest["pre_steps"]["drop_duplicates"] and not manifest["pre_steps"]["drop_leaks"]
    assert "--drop-duplicates" in manifest["reproduce"]
    assert "4 duplicate(s) and 0 leaked row(s) dropped" in capsys.readouterr().err

    manifest = _export(run, tmp_path / "leaks.parquet", "--drop-leaks")
    written = set(pd.read_parquet(tmp_path / "leaks.parquet")["id"])
    assert written == set(ids.tolist()) - leaked
    assert manifest["pre_steps"]["leaks_dropped"] == len(leaked)

    manifest = _export(run, tmp_path / "both.parquet", "--drop-duplicates", "--drop-leaks")
    written = set(pd.read_parquet(tmp_path / "both.parquet")["id"])
    assert written == dedup - leaked  # no leaked row is a group's lowest id here
    assert manifest["rows"] == len(dedup - leaked)
    # The rule `dedup` writes what --drop-duplicates on `all` writes.
    export_selection(run, SelectionConfig("dedup", 1.0), fmt="parquet", out=tmp_path / "r.pq")
    assert set(pd.read_parquet(tmp_path / "r.pq")["id"]) == dedup


def test_export_without_the_columns_exits_2_with_the_fix(app_cache, tmp_path, capsys):
    args = ["export", "--run", str(text_run(app_cache)), "--rule", "all", "--drop-leaks"]
    assert main([*args, "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "rescore with near_dup/leakage" in err
    assert not (tmp_path / "x.csv").exists()
