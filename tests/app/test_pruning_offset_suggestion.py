"""Pruning page on a noisy run: the offset rule with auto is suggested, and the preview says
how many of cleanlab's flagged suspects a selection keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.prune.plan import select_run
from scoring.prune.select import SelectionConfig
from scoring.read.views import load_run
from tests.app.pages import open_page, page_text, shown
from tests.conftest import digits_run, text_run

PAGE = "pruning.py"


def _flagged_kept(run, **cfg) -> tuple[int, int]:
    view = load_run(run)
    flagged = view.table["cl_issue"].to_numpy() > 0.5
    kept = np.zeros(len(flagged), bool)
    kept[select_run(view, SelectionConfig(**cfg))] = True
    return int((flagged & kept).sum()), int(flagged.sum())


def test_noisy_run_suggests_offset_auto_and_counts_flagged_suspects_kept(app_cache):
    run = digits_run(app_cache)
    share = (pd.read_parquet(run / "scores.parquet")["cl_issue"] > 0.5).mean()
    assert share >= 0.02
    at = open_page(PAGE, run, prune_rule="hardest", prune_fraction=0.5, score="el2n")
    assert not at.exception
    text = shown(page_text(at))
    assert f"cleanlab flags **{share:.1%}**" in text
    kept, flagged = _flagged_kept(run, rule="hardest", fraction=0.5, score="el2n")
    assert f"keeps **{kept:,}** of the {flagged:,} training rows cleanlab flags" in text
    assert "of this run's training rows as likely mislabeled" in text  # says which rows
    assert kept > flagged // 2  # keep-hardest keeps most likely label errors: the trap

    at.button(key="prune_use_offset").click().run()
    assert not at.exception
    assert at.selectbox(key="w_prune_rule").value == "offset"
    assert at.checkbox(key="w_prune_auto_offset").value
    # Ranked by the run's default detector, not the el2n chosen before.
    assert at.selectbox(key="w_score").value == "consensus"
    assert not [b for b in at.button if b.key == "prune_use_offset"]  # followed: no suggestion
    kept_auto, _ = _flagged_kept(
        run, rule="offset", fraction=0.5, score="consensus", offset=float(share)
    )
    assert f"keeps **{kept_auto:,}** of the {flagged:,}" in shown(page_text(at))
    assert kept_auto < kept


def test_no_suggestion_without_cl_issue(app_cache):
    run = text_run(app_cache)
    assert "cl_issue" not in load_run(run).table.columns  # the fixture scores cl_quality only
    at = open_page(PAGE, run)
    assert not at.exception
    assert not [b for b in at.button if b.key == "prune_use_offset"]
    assert "cleanlab flags" not in page_text(at)
