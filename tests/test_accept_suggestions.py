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
    # Run again: every candidate is decided now, nothing more is written.
    assert main(["decide", "--run", str(run), "--accept-suggestions"]) == 0
    assert capsys.readouterr().err.startswith("0 example(s)")


def test_min_precision_is_checked(tmp_path, capsys):
    run = _scored(tmp_path, 3)
    assert (
        main(["decide", "--run", str(run), "--accept-suggestions", "--min-precision", "0.4"]) == 2
    )
    assert "min precision must be in (0.5, 1]" in capsys.readouterr().err
    assert main(["decide", "--run", str(run), "--id", "1", "--drop", "--min-precision", "0.9"]) == 2
    assert decisions.history(run).empty
