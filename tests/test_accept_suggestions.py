"""`winnow decide --accept-suggestions`: a bulk relabel that cannot make the labels worse.

It relabels only at a confidence threshold where the models' held-out accuracy reaches the
minimum precision (`suspects.safe_threshold`), and refuses when none does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import store
from scoring.cli.main import main
from scoring.read import decisions, suspects
from scoring.read.views import load_run
from tests.conftest import digits_config


def _scored(root: Path, epochs: int) -> Path:
    from scoring.training.pipeline import score

    score(
        digits_config(400, epochs=epochs, noise_fraction=0.2, noise_seed=3),
        root,
        show_progress=False,
    )
    (run,) = [r.path for r in store.list_runs(root)]
    return run


def _wrong(run: Path) -> int:
    """How many training labels differ from the truth once the decisions in force apply."""
    table = pd.read_parquet(run / "scores.parquet", columns=["id", "label", "true_label"])
    labels = table.set_index("id")["label"].copy()
    relabels = decisions.latest(run)
    relabels = relabels[relabels["action"] == "relabel"]
    train = relabels[relabels["id"].isin(labels.index)]
    labels.loc[train["id"].to_numpy()] = train["new_label"].to_numpy(np.int64)
    return int((labels.to_numpy() != table.set_index("id")["true_label"].to_numpy()).sum())


@pytest.mark.parametrize("epochs", [3, 10])  # 3: too weak for any safe threshold
def test_accepting_the_default_never_adds_wrong_labels(tmp_path, capsys, epochs):
    run = _scored(tmp_path, epochs)
    before = _wrong(run)
    assert before > 0  # 20% of the labels were flipped
    safe = suspects.safe_threshold(load_run(run))
    code = main(["decide", "--run", str(run), "--accept-suggestions"])
    err = capsys.readouterr().err
    if safe is None:
        assert code == 2 and "no confidence threshold is safe" in err
        assert len(err.strip().splitlines()) == 1
        assert decisions.history(run).empty
        return
    assert code == 0 and f">= {safe:.2f}" in err and "estimated precision" in err
    n = int(err.split()[0])
    assert n == len(decisions.latest(run)) > 0
    assert _wrong(run) <= before
    # It is one bulk action, and says how to undo it.
    (bulk,) = decisions.bulk_actions(run)["bulk"]
    assert f"undo with: winnow decide --run {run} --undo-bulk {bulk}" in err
    # Run again: every candidate is decided now, nothing more is written.
    assert main(["decide", "--run", str(run), "--accept-suggestions"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("0 example(s)") and "undo" not in err
    assert main(["decide", "--run", str(run), "--undo-bulk", bulk]) == 0
    assert f"{n} of its {n} decision(s) withdrawn" in capsys.readouterr().err
    assert decisions.latest(run).empty and _wrong(run) == before


def test_min_precision_is_checked(tmp_path, capsys):
    run = _scored(tmp_path, 3)
    assert (
        main(["decide", "--run", str(run), "--accept-suggestions", "--min-precision", "0.4"]) == 2
    )
    assert "min precision must be in (0.5, 1]" in capsys.readouterr().err
    assert main(["decide", "--run", str(run), "--id", "1", "--drop", "--min-precision", "0.9"]) == 2
    assert decisions.history(run).empty


def test_bulk_from_csv_is_listed_and_undone_in_a_later_call(tmp_path, capsys):
    """`--from` is one bulk action: `--list-bulk` shows it, `--undo-bulk` withdraws what is
    still its own and leaves a decision made since alone."""
    run = _scored(tmp_path, 3)
    ids = pd.read_parquet(run / "scores.parquet", columns=["id"])["id"].head(3).tolist()
    assert main(["decide", "--run", str(run), "--list-bulk"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "no bulk actions" in out.err
    csv = tmp_path / "bulk.csv"
    csv.write_text("id,action,label\n" + "".join(f"{i},drop,\n" for i in ids))
    assert main(["decide", "--run", str(run), "--from", str(csv)]) == 0
    err = capsys.readouterr().err
    (bulk,) = decisions.bulk_actions(run)["bulk"]
    assert err.startswith("3 decision(s) recorded")
    assert f"--undo-bulk {bulk}" in err
    assert main(["decide", "--run", str(run), "--id", str(ids[0]), "--keep"]) == 0
    capsys.readouterr()

    assert main(["decide", "--run", str(run), "--list-bulk"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == ["id", "time", "kind", "actions", "decisions", "in", "force", "undone"]
    assert line.split()[0] == bulk and line.split()[2:] == ["csv", "drop", "3", "3", "2", "False"]

    assert main(["decide", "--run", str(run), "--undo-bulk", bulk]) == 0
    err = capsys.readouterr().err
    assert "2 of its 3 decision(s) withdrawn" in err and "decided again since" in err
    assert decisions.latest(run)[["id", "action"]].values.tolist() == [[ids[0], "keep"]]
    assert main(["decide", "--run", str(run), "--list-bulk"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-2:] == ["0", "True"]
    # Again: nothing left to undo, nothing written.
    lines = (run / "decisions.jsonl").read_text()
    assert main(["decide", "--run", str(run), "--undo-bulk", bulk]) == 0
    assert "0 of its 3" in capsys.readouterr().err
    assert (run / "decisions.jsonl").read_text() == lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--undo-bulk", "x", "--id", "1", "--drop"], "--undo-bulk ID goes alone: drop --id, the"),
        (["--undo-bulk", "x", "--accept-suggestions"], "drop --accept-suggestions"),
        (["--list-bulk", "--from", "f.csv"], "--list-bulk goes alone: drop --from"),
        (["--list-bulk", "--undo-bulk", "x"], "--list-bulk goes alone: drop --undo-bulk"),
        (["--undo-bulk", "nope"], "no bulk action 'nope' in"),
    ],
)
def test_bulk_flags_go_alone_and_ids_are_checked(tmp_path, capsys, args, message):
    run = tmp_path / "run"  # enough of a run for the decisions file
    run.mkdir()
    (run / "config.json").write_text('{"dataset": {"label_names": ["a", "b"]}}')
    pd.DataFrame({"id": [1, 2], "label": [0, 1]}).to_parquet(run / "scores.parquet")
    assert main(["decide", "--run", str(run), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (run / "decisions.jsonl").exists()
